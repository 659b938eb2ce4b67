"""Which API versions the cluster serves, for every kind in the table (``kinds.KINDS``) that is a
child or named in ``also``. What a controller makes of them (e.g. the FeatureStore's
``render.ApiVersions``) is built by the ``build`` function it hands in."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Generic, TypeVar

from .kinds import KINDS, Kind
from .kube import ApiError, Kube

T = TypeVar("T")
#: whether the cluster serves (kind, apiVersion) (one probe)
Probe = Callable[[str, str], Awaitable[bool]]
#: (kind -> served apiVersion, probe) -> what the controller reads
Build = Callable[[Mapping[str, str], Probe], Awaitable[T]]


class Discovery(Generic[T]):
    """Discovers served versions once and refreshes them after ``ttl`` seconds, or at once after
    :meth:`invalidate` (an optional CRD was installed or removed). An :meth:`invalidate` during a
    discovery makes its answer stale at once: the next caller asks again (a CRD installed while
    discovery ran is never hidden for ``ttl``)."""

    def __init__(
        self,
        kube: Kube,
        build: Build[T],
        ttl: float = 300.0,
        namespace: str | None = None,
        also: frozenset[str] = frozenset(),
    ):
        self.kube = kube
        self.build = build
        #: where to probe namespaced kinds (a namespace-restricted operator may not list cluster-wide)
        self.namespace = namespace
        self.ttl = ttl
        #: kinds discovered besides the children
        self.also = also
        self._cached: T | None = None
        self._served: dict[str, str] = {}
        self._at = 0.0
        self._epoch = 0
        self._lock = asyncio.Lock()

    def _fresh(self) -> bool:
        return self._cached is not None and time.monotonic() - self._at < self.ttl

    async def versions(self) -> T:
        if self._fresh():
            assert self._cached is not None
            return self._cached
        # Single flight: when many FeatureStores are reconciled at once they all find the cache
        # empty; one of them asks the API server, the others wait for its answer.
        async with self._lock:
            if not self._fresh():
                await self._discover()
            assert self._cached is not None
            return self._cached

    def served_version(self, kind: str) -> str | None:
        """The apiVersion ``kind`` is served in, as of the last discovery (None: not served)."""
        return self._served.get(kind)

    async def _first_served(self, kind: Kind) -> str | None:
        for api_version in kind.api_versions():
            try:
                if await self._probe(kind.kind, api_version):
                    return api_version
            except ApiError as err:
                if err.status != 403:
                    raise
                # RBAC is checked before the path is resolved: no answer. A kind the chart grants
                # is served; an optional one the operator may not read is treated as absent.
                return None if kind.optional else api_version
        return None

    async def _probe(self, kind: str, api_version: str) -> bool:
        return await self.kube.served(kind, api_version, self.namespace if KINDS[kind].namespaced else None)

    async def _discover(self) -> None:
        epoch = self._epoch
        served: dict[str, str] = {}
        for kind in KINDS.values():
            if kind.apply_order is None and kind.kind not in self.also:
                continue
            version = await self._first_served(kind)
            if version:
                served[kind.kind] = version
        self._cached = await self.build(served, self._probe)
        self._served = served
        self._at = time.monotonic() if epoch == self._epoch else 0.0

    def invalidate(self) -> None:
        self._cached = None
        self._epoch += 1
