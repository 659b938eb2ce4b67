"""Which API versions the cluster serves, for every kind in the table (``kinds.KINDS``)."""

from __future__ import annotations

import asyncio
import time

from ..render import ApiVersions
from .kinds import KINDS, Kind
from .kube import ApiError, Kube

#: kinds discovered besides the owned ones
DISCOVERED = frozenset({"FeatureStore", "SparkApplication"})


class Discovery:
    """Discovers served versions once and refreshes them after ``ttl`` seconds, or at once after
    :meth:`invalidate` (an optional CRD was installed or removed)."""

    def __init__(self, kube: Kube, ttl: float = 300.0, namespace: str | None = None):
        self.kube = kube
        #: where to probe namespaced kinds (a namespace-restricted operator may not list cluster-wide)
        self.namespace = namespace
        self.ttl = ttl
        self._cached: ApiVersions | None = None
        self._served: dict[str, str] = {}
        self._at = 0.0
        self._lock = asyncio.Lock()

    def _fresh(self) -> bool:
        return self._cached is not None and time.monotonic() - self._at < self.ttl

    async def versions(self) -> ApiVersions:
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
                if await self.kube.served(kind.kind, api_version, self.namespace):
                    return api_version
            except ApiError as err:
                if err.status != 403:
                    raise
                # RBAC is checked before the path is resolved: no answer. A kind the chart grants
                # is served; an optional one the operator may not read is treated as absent.
                return None if kind.optional else api_version
        return None

    async def _discover(self) -> None:
        served: dict[str, str] = {}
        for kind in KINDS.values():
            if kind.apply_order is None and kind.kind not in DISCOVERED:
                continue
            version = await self._first_served(kind)
            if version:
                served[kind.kind] = version
        # CronJob.spec.timeZone: batch/v1 CronJob on >= 1.25; older servers also serve batch/v1beta1.
        tz = served.get("CronJob") == "batch/v1" and not await self.kube.served(
            "CronJob", "batch/v1beta1", self.namespace
        )
        optional = frozenset(k.kind for k in KINDS.values() if k.optional and k.kind in served)
        self._served = served
        self._cached = ApiVersions(
            cronjob=served.get("CronJob", "batch/v1"),
            pdb=served.get("PodDisruptionBudget", "policy/v1"),
            hpa=served.get("HorizontalPodAutoscaler", "autoscaling/v2"),
            authorization_policy=served.get("AuthorizationPolicy", "security.istio.io/v1"),
            cronjob_time_zone=tz,
            optional_kinds=optional,
        )
        self._at = time.monotonic()

    def invalidate(self) -> None:
        self._cached = None
