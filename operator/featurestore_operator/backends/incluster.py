"""In-cluster stores (provider local): the Redis StatefulSet and the shared data volume.

The objects themselves are rendered (``render.incluster``) and applied by reconcile, which also
judges the StatefulSet's readiness. What is not pure lives here: the Redis password. It is
generated once and then read back from the FeatureStore's online-store Secret on every pass, so
it never changes under a running Redis. Everything is owned by the FeatureStore and garbage
collected with it: no finalizer is needed.
"""

from __future__ import annotations

import secrets

from ..api import FeatureStore
from ..render import OfflineEndpoint, OnlineEndpoint, SecretKey
from ..render.incluster import REDIS_PORT
from ..render.names import Names
from .base import BackendContext, Deleted, Ready

PASSWORD_KEY = "password"


def new_password() -> str:
    """48 hex characters (192 bits): safe in a redis-py connection string and in ``--requirepass``."""
    return secrets.token_hex(24)


class InClusterRedisBackend:
    """``Backend[OnlineEndpoint]`` for ``spec.onlineStore.inCluster``."""

    async def ensure(self, fs: FeatureStore, ctx: BackendContext) -> Ready[OnlineEndpoint]:
        names = Names(fs)
        current = await ctx.get_secret(names.online_secret)
        password = (current or {}).get(PASSWORD_KEY) or new_password()
        endpoint = OnlineEndpoint(
            host=names.svc_host(names.redis),
            port=REDIS_PORT,
            password=SecretKey(names.online_secret, PASSWORD_KEY),
        )
        return Ready(endpoint, f"in-cluster Redis at {endpoint.address}", secret={PASSWORD_KEY: password})

    async def delete(self, fs: FeatureStore, ctx: BackendContext) -> Deleted:
        return Deleted(True)

    def needs_cleanup(self, fs: FeatureStore) -> bool:
        return False


class InClusterOfflineBackend:
    """``Backend[OfflineEndpoint]`` for ``spec.offlineStore.inCluster``: the data claim (rendered by
    ``render.incluster.data_claim``) holds the file registry and the offline data."""

    async def ensure(self, fs: FeatureStore, ctx: BackendContext) -> Ready[OfflineEndpoint]:
        endpoint = OfflineEndpoint(claim=Names(fs).data_claim)
        return Ready(endpoint, f"volume claim {endpoint.claim}; registry {endpoint.registry_path}")

    async def delete(self, fs: FeatureStore, ctx: BackendContext) -> Deleted:
        return Deleted(True)

    def needs_cleanup(self, fs: FeatureStore) -> bool:
        return False
