"""The endpoints backends will report, as far as they are known without asking anyone. Pure.

Used by the `render` CLI to show every object a manifest creates; unknown parts are `<pending>`.
"""

from __future__ import annotations

from ..api import FeatureStore, OperatorConfig
from ..render import Endpoints, OfflineEndpoint, OnlineEndpoint, SecretKey, ServingTls
from ..render.feast_config import PENDING
from ..render.incluster import REDIS_PORT
from ..render.names import Names
from ..render.tls import secret_name as tls_secret_name
from .naming import bucket_name

MEMORYSTORE_TLS_PORT = 6378
MEMORYSTORE_PORT = 6379


def planned_endpoints(fs: FeatureStore, config: OperatorConfig | None = None) -> Endpoints:
    """``config``: the operator's settings (which Secret the servers mount: cert-manager's when an
    issuer is configured); default: the operator's defaults."""
    names = Names(fs)
    online_store = fs.spec.online_store
    offline_store = fs.spec.offline_store
    assert online_store and offline_store, "resolve() the spec first"
    secret = names.online_secret
    if online_store.memorystore:
        ms = online_store.memorystore
        online = OnlineEndpoint(
            host=PENDING,
            port=MEMORYSTORE_TLS_PORT if ms.transit_encryption else MEMORYSTORE_PORT,
            tls=ms.transit_encryption,
            password=SecretKey(secret, "password") if ms.auth_enabled else None,
            ca=SecretKey(secret, "ca.crt") if ms.transit_encryption else None,
        )
    elif online_store.in_cluster:
        online = OnlineEndpoint(
            host=names.svc_host(names.redis), port=REDIS_PORT, password=SecretKey(secret, "password")
        )
    else:
        ext = online_store.external
        assert ext is not None
        online = OnlineEndpoint(
            host=f"<host from Secret {ext.secret_ref.name}>",
            port=0,
            tls=ext.tls,
            password=SecretKey(ext.secret_ref.name, "password"),
            ca=SecretKey(ext.secret_ref.name, "ca.crt") if ext.tls else None,
        )
    offline = OfflineEndpoint(bucket=bucket_name(fs)) if offline_store.gcs else OfflineEndpoint(claim=names.data_claim)
    serving_tls = ServingTls(tls_secret_name(fs, config or OperatorConfig()), PENDING) if fs.spec.tls.enabled else None
    return Endpoints(online=online, offline=offline, serving_tls=serving_tls)
