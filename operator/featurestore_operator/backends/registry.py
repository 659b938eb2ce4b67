"""Which backend serves which store kind. One instance per operator process (clients are cached)."""

from __future__ import annotations

from typing import Any

from ..api import ConditionType, FeatureStore, OperatorConfig
from .base import Backend


class DefaultBackends:
    """Picks the backend for a resolved spec. Cloud clients are created lazily, on first use."""

    def __init__(self, config: OperatorConfig):
        self.config = config
        self._cache: dict[str, Any] = {}

    def _get(self, name: str) -> Any:
        if name not in self._cache:
            if name in ("memorystore", "gcs", "workload_identity"):
                from . import gcp  # the cloud SDKs load with the first cloud store only

                gcp.configure(self.config)
            if name == "memorystore":
                from .memorystore import MemorystoreBackend

                self._cache[name] = MemorystoreBackend(self.config)
            elif name == "gcs":
                from .gcs import GcsBackend

                self._cache[name] = GcsBackend(self.config)
            elif name == "workload_identity":
                from .workload_identity import WorkloadIdentityBackend

                self._cache[name] = WorkloadIdentityBackend(self.config)
            elif name == "incluster_redis":
                from .incluster import InClusterRedisBackend

                self._cache[name] = InClusterRedisBackend()
            elif name == "incluster_offline":
                from .incluster import InClusterOfflineBackend

                self._cache[name] = InClusterOfflineBackend()
            elif name == "external":
                from .external import ExternalRedisBackend

                self._cache[name] = ExternalRedisBackend()
        return self._cache[name]

    def online(self, fs: FeatureStore) -> Backend[Any]:
        store = fs.spec.online_store
        assert store is not None
        if store.memorystore:
            return self._get("memorystore")
        if store.in_cluster:
            return self._get("incluster_redis")
        return self._get("external")

    def offline(self, fs: FeatureStore) -> Backend[Any]:
        store = fs.spec.offline_store
        assert store is not None
        return self._get("gcs") if store.gcs else self._get("incluster_offline")

    def extra(self, fs: FeatureStore) -> list[tuple[ConditionType, Backend[Any]]]:
        """Reported parts that do not gate Ready (see reconcile.conditions.READY_PARTS). Workload
        Identity: when the spec asks for a grant (never on provider local) or one is recorded in
        status (to revoke it after the serviceAccount changed or was removed)."""
        from .workload_identity import wants_grant

        if wants_grant(fs) or fs.status.cloud.service_account:
            return [(ConditionType.WORKLOAD_IDENTITY, self._get("workload_identity"))]
        return []
