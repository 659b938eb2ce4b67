"""The operator's one watch engine: list + watch per watched resource (a :class:`Feed`), with a
relist after every gap, backoff on errors, server-side label selection, a metric and a health state
per feed. Everything the operator watches goes through it: FeatureStores (``handlers.featurestore``),
the owned kinds of the table (below), and Kubeflow onboarding's namespaces, Profiles, marker
ConfigMaps and the optional CRDs (``handlers.profiles``). (kopf's own watches were dropped: kopf 1.45
ends a watcher on a 404 without ending the operator, nolar/kopf#1145, #1077, and its state could be
neither counted nor seen by /healthz.)

Owned kinds (``kinds.KINDS``, ``watched``) are selected server-side by our
``app.kubernetes.io/managed-by`` label, in the operator's namespaces. They feed the observed-state
cache and wake the owning FeatureStore's worker when a child drifts, disappears or changes status.
Server-side selection means the API server sends only objects carrying our label: the operator
neither receives nor parses the rest of the cluster's ConfigMaps, Jobs... Objects a user labels as
ours are kept only as ``cache.slim`` copies, so they cannot grow the operator's memory by their
size. Secrets are never listed or watched (no such RBAC right: see ``kinds.KINDS``).

Optional CRDs (PodDefault, AuthorizationPolicy, Profile...) are watched once discovery finds them
served: a feed without a fixed apiVersion waits for discovery, woken at once by :meth:`kinds_changed`
(the CRD watch calls it when such a CRD comes or goes). It captures the wake-up before it asks
discovery, so a CRD installed while it asks is never missed (it would wait for the discovery TTL).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ..api.labels import MANAGED_BY, MANAGED_BY_LABEL, OWNER_LABEL
from ..metrics import WATCH_FAILURES, WATCH_UP, WATCHED
from .cache import ObservedCache
from .kinds import KINDS, key
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
Obj = dict[str, Any]
WATCHING = "watching"


class Served(Protocol):
    """What the engine reads of discovery (``runtime.discovery.Discovery``)."""

    ttl: float

    async def versions(self) -> Any: ...
    def served_version(self, kind: str) -> str | None: ...
    def invalidate(self) -> None: ...


@dataclass
class Feed:
    """One resource to list and watch, and where what is seen goes."""

    kind: str
    namespace: str | None
    #: a fresh listing (after start or any gap): every object as it is now
    listed: Callable[[list[Obj]], Awaitable[None] | None]
    #: a watch event (ADDED, MODIFIED, DELETED) after the listing
    event: Callable[[str, Obj], None]
    #: server-side label selection
    labels: Mapping[str, str] | None = None
    #: the version to watch; None: the one discovery finds served (waits while none is)
    api_version: str | None = None
    #: applied to each listed object as it arrives (what is not kept is dropped at once)
    each: Callable[[Obj], Obj] | None = None
    #: statuses that end the feed (and, through the task that runs it, the process)
    fatal: frozenset[int] = frozenset()
    #: first retry after an error, doubling up to max_retry (403: up to FORBIDDEN_RETRY)
    retry: float = 5.0
    max_retry: float = 5.0
    #: /healthz fails while this feed is not watching (``health.Health``)
    required: bool = False
    #: said when the resource is not served (404)
    absent: str = ""

    @property
    def name(self) -> str:
        """e.g. ``configmaps{app.kubernetes.io/managed-by=featurestore-operator}@team-a`` (``*``: all)."""
        selector = ",".join(f"{k}={v}" for k, v in (self.labels or {}).items())
        return KINDS[self.kind].plural + (f"{{{selector}}}" if selector else "") + f"@{self.namespace or '*'}"


class Watches:
    """Runs every :class:`Feed`: the owned kinds' (one per watched kind and namespace scope) and the
    ones added with :meth:`add` before :meth:`run`."""

    def __init__(
        self,
        kube: Kube,
        discovery: Served,
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
        #: per feed: "watching", or why not
        self.states: dict[str, str] = {}
        self.feeds: list[Feed] = [
            self.owned(kind.kind, ns) for kind in KINDS.values() if kind.watched for ns in self.namespaces
        ]
        self._changed = asyncio.Event()

    def owned(self, kind: str, namespace: str | None) -> Feed:
        def listed(items: list[Obj]) -> None:
            self._resync(kind, namespace, items)

        return Feed(kind, namespace, listed, self.on_event, OURS, retry=self.retry_after, max_retry=self.retry_after)

    def add(self, feeds: Iterable[Feed]) -> None:
        self.feeds += feeds

    def kinds_changed(self) -> None:
        """An optional CRD came or went: feeds of absent kinds look again now."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def failing(self, required_only: bool = True) -> dict[str, str]:
        """Feeds not watching (required ones only, or all), with the reason."""
        return {
            f.name: self.states.get(f.name, "starting")
            for f in self.feeds
            if (f.required or not required_only) and self.states.get(f.name) != WATCHING
        }

    async def run(self) -> None:
        await asyncio.gather(*(self.follow(feed) for feed in self.feeds))

    # -- the engine -----------------------------------------------------------------------------
    async def follow(self, feed: Feed) -> None:
        """List and watch ``feed`` forever (until a ``fatal`` status)."""
        failures = 0
        while True:
            try:
                await self._list_and_watch(feed)
                failures = 0
                continue
            except asyncio.CancelledError:
                raise
            except ApiError as err:
                if err.status in feed.fatal:
                    self._state(feed, f"{err}")
                    raise
                if err.status == 410:  # Gone: our resourceVersion is too old; relist at once
                    continue
                # 403: RBAC does not grant this kind (a chart that leaves a feature out), or not
                # yet: a restarted API server refuses for a moment until its RBAC caches are filled.
                limit = FORBIDDEN_RETRY if err.status == 403 else feed.max_retry
                reason = feed.absent if err.status == 404 and feed.absent else f"{err}"
            except Exception as err:  # noqa: BLE001 - connection errors; never end a watch loop
                limit, reason = feed.max_retry, f"{type(err).__name__}: {err}"
            wait = min(limit, feed.retry * 2**failures)
            failures += 1
            self._state(feed, reason, wait)
            await asyncio.sleep(wait)

    def _state(self, feed: Feed, reason: str, retry: float | None = None) -> None:
        up = reason == WATCHING
        if not up and (self.states.get(feed.name) != reason or retry is None):
            WATCH_FAILURES.labels(feed.kind).inc()
            log.warning("watch of %s failed: %s%s", feed.name, reason, f"; retrying in {retry:.0f}s" if retry else "")
        self.states[feed.name] = reason
        WATCH_UP.labels(feed.name).set(1 if up else 0)

    async def _api_version(self, feed: Feed) -> str:
        """The version to watch; waits (for a CRD to be installed) while the kind is not served."""
        if feed.api_version:
            return feed.api_version
        while True:
            changed = self._changed  # before asking: a change while discovery runs wakes us at once
            await self.discovery.versions()
            version = self.discovery.served_version(feed.kind)
            if version:
                return version
            self.states[feed.name] = f"{feed.kind} is not served (CRD not installed)"
            WATCH_UP.labels(feed.name).set(0)
            try:
                await asyncio.wait_for(changed.wait(), timeout=self.discovery.ttl)
            except TimeoutError:
                pass

    async def _list_and_watch(self, feed: Feed) -> None:
        api_version = await self._api_version(feed)
        items, version = await self.kube.list_with_version(
            feed.kind, api_version, feed.namespace, feed.labels, each=feed.each
        )
        if version is None:  # not served (any more: CRD removed)
            if feed.api_version is None:
                self.discovery.invalidate()
            raise ApiError(404, "NotFound", f"{KINDS[feed.kind].plural} ({api_version}) is not served")
        items = [_with_kind(o, feed.kind, api_version) for o in items]
        done = feed.listed(items)
        if inspect.isawaitable(done):
            await done
        self.synced.add((feed.kind, feed.namespace))
        self._state(feed, WATCHING)
        async for event_type, obj in self.kube.watch(feed.kind, api_version, feed.namespace, feed.labels, version):
            feed.event(event_type, _with_kind(obj, feed.kind, api_version))

    # -- the owned kinds ------------------------------------------------------------------------
    def _resync(self, kind: str, namespace: str | None, items: list[Obj]) -> None:
        """A fresh listing: record every object, forget the ones that went while we were not watching."""
        listed = {key(o) for o in items}
        for k in [k for k in self.cache.objects if k[0] == kind and (namespace is None or k[1] == namespace)]:
            if k not in listed:
                self.on_event("DELETED", self.cache.objects[k])
        for obj in items:
            self.on_event("ADDED", obj)

    def on_event(self, event_type: str, obj: Obj) -> None:
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


def _with_kind(obj: Obj, kind: str, api_version: str) -> Obj:
    """List items carry no kind/apiVersion; the watch's events do."""
    obj.setdefault("kind", kind)
    obj.setdefault("apiVersion", api_version)
    return obj
