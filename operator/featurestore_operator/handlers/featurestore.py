"""The watch of FeatureStores: a feed of the watch engine (``runtime.watches``) handing every body to
its worker (``runtime.workers``).

A restarted API server answers 404 for custom resources until it has loaded their CRDs (kopf 1.45
ended its watcher on that 404 without ending the operator, which then stayed deaf to FeatureStores
while /healthz said 200). The feed never ends on it: it retries (404 included) with a backoff, lists
again after any gap (stores deleted meanwhile are forgotten), and is required by /healthz. 401/403
end it, and the process: credentials or RBAC, the operator cannot work.
"""

from __future__ import annotations

import logging
from typing import Any

from ..api import API_VERSION
from ..api.bounds import shed
from ..reconcile import records
from ..runtime.watches import Feed
from .runtime import Runtime

log = logging.getLogger(__name__)
MAX_BACKOFF = 10.0
NOT_SERVED = "the FeatureStore resource is not served (CRD not installed, or the API server is starting)"


def featurestore_feeds(rt: Runtime, namespaces: list[str | None]) -> list[Feed]:
    """One feed per namespace scope (None: cluster-wide)."""
    return [_feed(rt, ns) for ns in namespaces]


def _feed(rt: Runtime, namespace: str | None) -> Feed:
    async def listed(items: list[dict[str, Any]]) -> None:
        keys = {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in items}
        for key in [k for k in rt.workers.bodies if (namespace is None or k[0] == namespace) and k not in keys]:
            rt.workers.forget(key)  # deleted while we were not watching
        for obj in items:
            rt.workers.observe("ADDED", obj)
        await _clean_up_recorded(rt, namespace, {o["metadata"].get("uid") for o in items})
        rt.token_reviewers.scope_listed(namespace)

    def event(event_type: str, body: dict[str, Any]) -> None:
        rt.workers.observe(event_type, body)
        rt.token_reviewers.observe(event_type, body)

    return Feed(
        "FeatureStore",
        namespace,
        listed,
        event,
        api_version=API_VERSION,
        # an oversized spec (past admission) is dropped as each object arrives: never all at once
        each=lambda o: shed(o, rt.controller.max_spec_bytes),
        fatal=frozenset({401, 403}),
        retry=1.0,
        max_retry=MAX_BACKOFF,
        required=True,
        absent=NOT_SERVED,
    )


async def _clean_up_recorded(rt: Runtime, namespace: str | None, live: set[str | None]) -> None:
    """Stores gone without their clean-up (e.g. deleted while the operator was down, past their
    finalizer): their clean-up records (``reconcile.records``, in the operator's own namespace) name
    them. A record whose store is live (its uid in this listing or known to a worker) does nothing;
    one the operator did not write does nothing but a log line."""
    home = rt.config.records_namespace
    live = live | {b["metadata"].get("uid") for b in rt.workers.bodies.values()}
    selector = {records.CLEANUP_RECORD: "true", **({records.STORE_NAMESPACE: namespace} if namespace else {})}
    for record in await rt.kube.list("ConfigMap", "v1", home, selector):
        try:
            body = records.read(record, home)
        except records.Refused as err:
            _ignore(rt, record, str(err))
            continue
        meta = body["metadata"]
        if meta["uid"] not in live and namespace in (None, meta["namespace"]):
            rt.workers.clean_up((meta["namespace"], meta["name"]), body)
    await _report_foreign_records(rt, namespace, home)


async def _report_foreign_records(rt: Runtime, namespace: str | None, home: str) -> None:
    """Records outside the operator's namespace (an older version's, or forged by a tenant): never
    acted on, never deleted; said once per record."""
    for record in await rt.kube.list("ConfigMap", "v1", namespace, {records.CLEANUP_RECORD: "true"}):
        if record["metadata"].get("namespace") != home:
            _ignore(rt, record, "outside the operator's namespace: not written by this operator version")


def _ignore(rt: Runtime, record: dict[str, Any], reason: str) -> None:
    meta = record.get("metadata") or {}
    if meta.get("uid") in rt.ignored_records:
        return
    rt.ignored_records.add(meta.get("uid"))
    log.warning(
        "ignoring clean-up record ConfigMap %s/%s (%s); nothing is deleted for it, and it may be deleted by hand",
        meta.get("namespace"),
        meta.get("name"),
        reason[:300],
    )
