"""An existing Redis the operator does not manage (``spec.onlineStore.external``).

The user's Secret (in the FeatureStore's namespace) holds ``host``, ``port`` and optionally
``password`` and ``ca.crt``. Feast pods read ``password``/``ca.crt`` straight from that Secret
(``OnlineEndpoint.password``/``ca`` name it), so the outcome carries no Secret data of its own
and the operator never copies the user's credentials. Nothing to clean up on deletion.
"""

from __future__ import annotations

import re

from ..api import FeatureStore
from ..render import OnlineEndpoint, SecretKey
from .base import BackendContext, Deleted, Failed, Ready

#: A DNS name or an IPv4 address. Feast's Redis connection string is "host:port,opt=...,": a
#: comma, colon or whitespace in the host would inject options, so those are refused.
_HOST = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$"
)
FIELD = "spec.onlineStore.external.secretRef.name"


class ExternalRedisBackend:
    """``Backend[OnlineEndpoint]`` for ``spec.onlineStore.external``."""

    async def ensure(self, fs: FeatureStore, ctx: BackendContext) -> Ready[OnlineEndpoint] | Failed:
        ext = fs.spec.online_store.external if fs.spec.online_store else None
        if ext is None:
            return Failed("InvalidSpec", "ExternalRedisBackend needs spec.onlineStore.external")
        name = ext.secret_ref.name
        ns = fs.metadata.namespace
        data = await ctx.get_secret(name)
        if data is None:
            return Failed(
                "SecretNotFound",
                f"{FIELD}: Secret {name!r} not found; it must be in the FeatureStore's namespace {ns} and hold the keys "
                f"host, port and optionally password and ca.crt",
                retryable=True,
                retry_after=30,
            )
        bad = f"{FIELD}: Secret {ns}/{name}"
        host = (data.get("host") or "").strip()
        if not host:
            return Failed(
                "InvalidSecret",
                f"{bad} has no key 'host' (the Redis host name or IP address)",
                retryable=True,
                retry_after=30,
            )
        if not _HOST.match(host):
            return Failed(
                "InvalidSecret",
                f"{bad}: key 'host' must be a DNS name or an IPv4 address (no scheme, port, comma or whitespace)",
                retryable=True,
                retry_after=30,
            )
        raw_port = (data.get("port") or "").strip()
        if not raw_port:
            return Failed("InvalidSecret", f"{bad} has no key 'port' (e.g. 6379)", retryable=True, retry_after=30)
        if not raw_port.isdigit() or not 1 <= int(raw_port) <= 65535:
            return Failed(
                "InvalidSecret", f"{bad}: key 'port' must be a number from 1 to 65535", retryable=True, retry_after=30
            )
        password = SecretKey(name, "password") if data.get("password") else None
        ca = SecretKey(name, "ca.crt") if ext.tls and data.get("ca.crt") else None
        endpoint = OnlineEndpoint(host=host, port=int(raw_port), tls=ext.tls, password=password, ca=ca)
        detail = ", TLS" + (" verified against ca.crt" if ca else " verified against the system CAs") if ext.tls else ""
        return Ready(endpoint, f"external Redis at {endpoint.address}{detail}" + ("" if password else ", no password"))

    async def delete(self, fs: FeatureStore, ctx: BackendContext) -> Deleted:
        return Deleted(True)

    def needs_cleanup(self, fs: FeatureStore) -> bool:
        return False
