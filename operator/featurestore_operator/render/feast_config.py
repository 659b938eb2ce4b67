"""Feast's feature_store.yaml for the servers (direct store access) and for clients (notebooks).

Secrets never appear here: the Redis password is the placeholder ``${REDIS_PASSWORD}``, which
Feast expands from the pod's environment (set from a Secret) when it loads the file.
"""

from __future__ import annotations

from typing import Any

import yaml

from ..api import FeatureStore
from . import authz, tls
from .inputs import Endpoints, OnlineEndpoint
from .names import Names

FEAST_CONFIG_DIR = "/etc/feast"
FEAST_CONFIG_FILE = "feature_store.yaml"
REDIS_TLS_DIR = "/etc/feast/redis-tls"
REDIS_PASSWORD_ENV = "REDIS_PASSWORD"
FEATURE_SERVER_PORT = 6566
REGISTRY_SERVER_PORT = 6570
OFFLINE_SERVER_PORT = 8815
UI_PORT = 8888
#: Feast 0.67's current entity key serialization (older versions are deprecated).
ENTITY_KEY_SERIALIZATION_VERSION = 3
PENDING = "<pending>"


def redis_connection_string(online: OnlineEndpoint | None) -> str:
    """Feast's Redis connection string; comma parts are passed to redis-py as keyword arguments."""
    if online is None:
        return PENDING
    parts = [online.address]
    if online.tls:
        parts.append("ssl=true")
        if online.ca:
            parts.append(f"ssl_ca_certs={REDIS_TLS_DIR}/{online.ca.key}")
    if online.password:
        parts.append(f"password=${{{REDIS_PASSWORD_ENV}}}")
    return ",".join(parts)


def server_config(fs: FeatureStore, endpoints: Endpoints) -> dict[str, Any]:
    """feature_store.yaml used by feast serve / apply / materialize inside the cluster.

    Feast's ``provider`` only picks defaults for stores left unset; every store is explicit here,
    so ``local`` is used on GCP too (it has no cloud side effects and needs no credentials at load).
    """
    spec = fs.spec
    offline = endpoints.offline
    auth = authz.server_auth(fs)
    return {
        **({"auth": auth} if auth else {}),
        "project": spec.project,
        "provider": "local",
        "registry": {
            "registry_type": "file",
            "path": offline.registry_path if offline else PENDING,
            "cache_ttl_seconds": spec.registry.cache_ttl_seconds,
        },
        "online_store": {"type": "redis", "connection_string": redis_connection_string(endpoints.online)},
        "offline_store": {"type": "file"},
        "entity_key_serialization_version": ENTITY_KEY_SERIALIZATION_VERSION,
        "materialization": {"online_write_batch_size": spec.materialization.write_batch_size},
    }


def client_config(fs: FeatureStore, endpoints: Endpoints) -> dict[str, Any]:
    """feature_store.yaml for notebooks and models in the cluster: everything through Feast servers
    where they run (no store credentials needed), the registry direct otherwise."""
    spec = fs.spec
    names = Names(fs)
    server = server_config(fs, endpoints)
    # With TLS every remote store verifies the servers against the CA mounted next to this file.
    verify = {"cert": tls.client_ca_path(client_config_dir(fs))} if tls.enabled(fs) else {}
    registry: dict[str, Any]
    if spec.registry.server.enabled:
        registry = {
            "registry_type": "remote",
            "path": f"{names.svc_host(names.registry_server)}:{REGISTRY_SERVER_PORT}",
            **({"is_tls": True, **verify} if verify else {}),
        }
    else:
        registry = server["registry"]
    offline: dict[str, Any]
    if spec.offline_server.enabled:
        offline = {
            "type": "remote",
            "host": names.svc_host(names.offline_server),
            "port": OFFLINE_SERVER_PORT,
            **({"scheme": "https", **verify} if verify else {}),
        }
    else:
        offline = {"type": "file"}
    online_url = f"{tls.scheme(fs)}://{names.svc_host(names.feature_server)}:{FEATURE_SERVER_PORT}"
    auth = authz.client_auth(fs)
    return {
        **({"auth": auth} if auth else {}),
        "project": spec.project,
        "provider": "local",
        "registry": registry,
        "online_store": {"type": "remote", "path": online_url, **verify},
        "offline_store": offline,
        "entity_key_serialization_version": ENTITY_KEY_SERIALIZATION_VERSION,
    }


def client_config_dir(fs: FeatureStore) -> str:
    """Where notebooks see the client ConfigMap (the PodDefault mounts it there)."""
    return f"{FEAST_CONFIG_DIR}/{fs.metadata.name}"


def to_yaml(config: dict[str, Any]) -> str:
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False)
