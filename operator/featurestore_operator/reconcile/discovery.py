"""Which API versions the cluster serves: CronJob, PDB, HPA, CronJob.timeZone, optional CRDs."""

from __future__ import annotations

import asyncio
import time

from ..render import ApiVersions
from .kube import Kube

_CANDIDATES = {
    "cronjob": ("CronJob", ["batch/v1", "batch/v1beta1"]),
    "pdb": ("PodDisruptionBudget", ["policy/v1", "policy/v1beta1"]),
    "hpa": ("HorizontalPodAutoscaler", ["autoscaling/v2", "autoscaling/v2beta2"]),
}
_OPTIONAL = {"PodDefault": "kubeflow.org/v1alpha1", "AuthorizationPolicy": "security.istio.io/v1beta1"}


class Discovery:
    """Discovers served versions once and refreshes them after ``ttl`` seconds (CRDs installed
    later are picked up without a restart)."""

    def __init__(self, kube: Kube, ttl: float = 300.0):
        self.kube = kube
        self.ttl = ttl
        self._cached: ApiVersions | None = None
        self._at = 0.0
        self._lock = asyncio.Lock()

    def _fresh(self) -> bool:
        return self._cached is not None and time.monotonic() - self._at < self.ttl

    async def versions(self) -> ApiVersions:
        if self._fresh():
            assert self._cached is not None
            return self._cached
        # Single flight: when many FeatureStores are reconciled at once (operator start, a burst of
        # new stores) they all find the cache empty; one of them asks the API server, the others
        # wait for its answer instead of sending the same 6-7 discovery requests each (measured
        # by bench/reconcile.py: 344 discovery GETs for 50 new stores without this lock, 7 with it).
        async with self._lock:
            if self._fresh():
                assert self._cached is not None
                return self._cached
            return await self._discover()

    async def _discover(self) -> ApiVersions:
        served: dict[str, set[str]] = {}

        async def kinds(gv: str) -> set[str]:
            if gv not in served:
                served[gv] = await self.kube.served(gv)
            return served[gv]

        chosen: dict[str, str] = {}
        for field, (kind, versions) in _CANDIDATES.items():
            for gv in versions:
                if kind in await kinds(gv):
                    chosen[field] = gv
                    break
            else:
                chosen[field] = versions[0]
        optional = frozenset([k for k, gv in _OPTIONAL.items() if k in await kinds(gv)])
        # CronJob.spec.timeZone: batch/v1 CronJob on >= 1.25; servers older than that serve
        # batch/v1beta1 as well (removed in 1.25), so "v1 only" means timeZone is known.
        tz = chosen["cronjob"] == "batch/v1" and "CronJob" not in await kinds("batch/v1beta1")
        self._cached = ApiVersions(
            cronjob=chosen["cronjob"],
            pdb=chosen["pdb"],
            hpa=chosen["hpa"],
            cronjob_time_zone=tz,
            optional_kinds=optional,
        )
        self._at = time.monotonic()
        return self._cached

    def invalidate(self) -> None:
        self._cached = None
