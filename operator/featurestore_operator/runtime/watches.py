"""Watches of the objects the operator owns: list + watch per kind of the table (``kinds.KINDS``,
``watched``), selected server-side by our ``app.kubernetes.io/managed-by`` label, in the operator's
namespaces. They feed the observed-state cache and wake the owning FeatureStore's worker when a child
drifts, disappears or changes status.

Server-side selection means the API server sends only objects carrying our label: the operator
neither receives nor parses the rest of the cluster's ConfigMaps, Jobs... Objects a user labels as
ours are kept only as :func:`applier.slim` copies, so they cannot grow the operator's memory by their
size. Secrets are never listed or watched (no such RBAC right: see ``kinds.KINDS``). Optional CRDs
(PodDefault, AuthorizationPolicy) are watched once discovery finds them served.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from ..api.labels import MANAGED_BY, MANAGED_BY_LABEL, OWNER_LABEL
from ..metrics import WATCHED
from .cache import ObservedCache
from .discovery import Discovery
from .kinds import KINDS, Kind, key
from .kube import ApiError, Kube

log = logging.getLogger(__name__)
OURS = {MANAGED_BY_LABEL: MANAGED_BY}
#: Kinds whose status feeds conditions: any change of theirs wakes the owner. A Certificate's status
#: changes when cert-manager has written a renewed key pair into its Secret (Secrets are not watched):
#: the servers roll at once, not at the next resync.
STATUS_KINDS = frozenset({"Deployment", "StatefulSet", "CronJob", "Job", "Certificate"})
#: seconds before a watch RBAC forbids is tried again
FORBIDDEN_RETRY = 300.0
Wake = Callable[[str, str], None]  # (namespace, FeatureStore name)


class Watches:
    """One list+watch loop per watched kind (and per namespace when the operator is restricted)."""

    def __init__(
        self,
        kube: Kube,
        discovery: Discovery,
        cache: ObservedCache,
        wake: Wake,
        namespaces: list[str] | None = None,
        retry_after: float = 5.0,
    ):
        self.kube = kube
        self.discovery = discovery
        self.cache = cache
        self.wake = wake
        self.namespaces: list[str | None] = list(namespaces) if namespaces else [None]
        self.retry_after = retry_after
        #: kinds whose initial listing is done, per namespace scope (readiness)
        self.synced: set[tuple[str, str | None]] = set()
        self._changed = asyncio.Event()

    def kinds_changed(self) -> None:
        """An optional CRD came or went: loops of absent kinds look again now."""
        self._changed.set()

    async def run(self) -> None:
        loops = [self._loop(kind, ns) for kind in KINDS.values() if kind.watched for ns in self.namespaces]
        await asyncio.gather(*loops)

    async def _loop(self, kind: Kind, namespace: str | None) -> None:
        forbidden = 0  # 403s in a row
        while True:
            try:
                await self._list_and_watch(kind, namespace)
                forbidden = 0
            except asyncio.CancelledError:
                raise
            except ApiError as err:
                if err.status != 410:  # 410 Gone: our resourceVersion is too old; relist at once
                    # 403: RBAC does not grant this kind (a chart that leaves a feature out), or not
                    # yet: a restarted API server refuses for a moment until its RBAC caches are
                    # filled. Back off from the usual retry up to FORBIDDEN_RETRY.
                    wait = self.retry_after
                    if err.status == 403:
                        wait, forbidden = min(FORBIDDEN_RETRY, self.retry_after * 2**forbidden), forbidden + 1
                    else:
                        forbidden = 0
                    log.warning("watch of %s failed: %s; retrying in %.0fs", kind.plural, err, wait)
                    await asyncio.sleep(wait)
            except Exception as err:  # noqa: BLE001 - connection errors; never end a watch loop
                log.warning(
                    "watch of %s failed: %s: %s; retrying in %.0fs",
                    kind.plural,
                    type(err).__name__,
                    err,
                    self.retry_after,
                )
                await asyncio.sleep(self.retry_after)

    async def _api_version(self, kind: Kind) -> str:
        """The served version; waits (for a CRD to be installed) while the kind is not served."""
        while True:
            await self.discovery.versions()
            version = self.discovery.served_version(kind.kind)
            if version:
                return version
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=self.discovery.ttl)
            except TimeoutError:
                pass

    async def _list_and_watch(self, kind: Kind, namespace: str | None) -> None:
        api_version = await self._api_version(kind)
        items, version = await self.kube.list_with_version(kind.kind, api_version, namespace, OURS)
        if version is None:  # not served any more (CRD removed)
            self.discovery.invalidate()
            await asyncio.sleep(self.retry_after)
            return
        self._resync(kind.kind, namespace, items)
        self.synced.add((kind.kind, namespace))
        async for event_type, obj in self.kube.watch(kind.kind, api_version, namespace, OURS, version):
            self.on_event(event_type, obj)

    def _resync(self, kind: str, namespace: str | None, items: list[dict[str, Any]]) -> None:
        """A fresh listing: record every object, forget the ones that went while we were not watching."""
        listed = {key(_with_kind(o, kind)) for o in items}
        for k in [k for k in self.cache.objects if k[0] == kind and (namespace is None or k[1] == namespace)]:
            if k not in listed:
                self.on_event("DELETED", self.cache.objects[k])
        for obj in items:
            self.on_event("ADDED", _with_kind(obj, kind))

    def on_event(self, event_type: str, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        if not obj.get("kind") or not meta.get("name"):
            return
        if event_type == "DELETED":
            relevant = self.cache.forget(key(obj))
        else:
            relevant = self.cache.observe(obj) or obj["kind"] in STATUS_KINDS
        WATCHED.labels(obj["kind"]).set(self.cache.counts[obj["kind"]])
        owner = (meta.get("labels") or {}).get(OWNER_LABEL)
        if owner and relevant:
            self.wake(meta.get("namespace", ""), owner)


def _with_kind(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    """List items carry no kind/apiVersion; the watch's events do."""
    if not obj.get("kind"):
        obj["kind"] = kind
    return obj
