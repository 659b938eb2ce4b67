"""The watch of FeatureStores: list + watch, handing every body to its worker (``runtime.workers``).

The operator watches FeatureStores itself rather than through kopf: a restarted API server answers
404 for custom resources until it has loaded their CRDs, and kopf 1.45 ends its watcher on a 404
without ending the operator, which then stays deaf to FeatureStores while /healthz says 200. This
loop never ends: it retries (404 included) with a backoff, lists again after any gap (stores deleted
meanwhile are forgotten), and tells /healthz whether FeatureStores are being watched.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..api import API_VERSION
from ..api.bounds import shed
from ..reconcile import records
from ..runtime.kube import ApiError
from .runtime import Runtime

log = logging.getLogger(__name__)
MAX_BACKOFF = 10.0


async def watch_featurestores(rt: Runtime, namespace: str | None) -> None:
    backoff = 1.0
    while True:
        try:
            await _list_and_watch(rt, namespace)
            backoff = 1.0
        except asyncio.CancelledError:
            raise
        except ApiError as err:
            if err.status in (401, 403):
                raise  # credentials or RBAC: the operator cannot work; let the process fail
            _not_watching(
                rt,
                f"FeatureStores: {err}"
                if err.status != 404
                else "the FeatureStore resource is not served (CRD not installed, or the API server is starting)",
            )
        except Exception as err:  # noqa: BLE001 - connection errors: try again
            _not_watching(rt, f"FeatureStores: {type(err).__name__}: {err}")
        if not rt.health.watching:
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)


def _not_watching(rt: Runtime, reason: str) -> None:
    if rt.health.watching or rt.health.reason != reason:
        log.warning("not watching FeatureStores: %s", reason)
    rt.health.watching = False
    rt.health.reason = reason


async def _list_and_watch(rt: Runtime, namespace: str | None) -> None:
    # an oversized spec (past admission) is dropped as each object arrives: never all of them at once
    items, version = await rt.kube.list_with_version(
        "FeatureStore", API_VERSION, namespace, each=lambda o: shed(o, rt.controller.max_spec_bytes)
    )
    if version is None:
        raise ApiError(404, "NotFound", "the FeatureStore resource is not served")
    listed = {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in items}
    for key in [k for k in rt.workers.bodies if (namespace is None or k[0] == namespace) and k not in listed]:
        rt.workers.forget(key)  # deleted while we were not watching
    for obj in items:
        rt.workers.observe("ADDED", _typed(obj))
    await _clean_up_recorded(rt, namespace, {o["metadata"].get("uid") for o in items})
    rt.health.watching = True
    rt.health.reason = "watching FeatureStores"
    rt.token_reviewers.scope_listed(namespace)
    async for event_type, obj in rt.kube.watch("FeatureStore", API_VERSION, namespace, None, version):
        body = _typed(obj)
        rt.workers.observe(event_type, body)
        rt.token_reviewers.observe(event_type, body)


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


def _typed(obj: dict[str, Any]) -> dict[str, Any]:
    obj.setdefault("apiVersion", API_VERSION)
    obj.setdefault("kind", "FeatureStore")
    return obj
