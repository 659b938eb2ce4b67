"""TLS on the Feast servers (``spec.tls``): the server key pair mounted from a Secret, Feast's
``--key/--cert`` flags, HTTPS probes, and the client config's https URLs + CA path.

The CA certificate is public: it travels in the client ConfigMap (key ``ca.crt``), which the
PodDefault mounts next to feature_store.yaml, so notebooks verify the servers without any Secret.
"""

from __future__ import annotations

from typing import Any

from ..api import FeatureStore
from .inputs import Endpoints

TLS_DIR = "/etc/feast/tls"
CA_KEY = "ca.crt"
CERT_KEY = "tls.crt"
KEY_KEY = "tls.key"


def enabled(fs: FeatureStore) -> bool:
    return fs.spec.tls.enabled


def server_args(fs: FeatureStore) -> list[str]:
    if not enabled(fs):
        return []
    return ["--key", f"{TLS_DIR}/{KEY_KEY}", "--cert", f"{TLS_DIR}/{CERT_KEY}"]


def scheme(fs: FeatureStore) -> str:
    return "https" if enabled(fs) else "http"


def volume(fs: FeatureStore, endpoints: Endpoints) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(volumes, mounts) of the server key pair; only server pods get it."""
    if not enabled(fs) or endpoints.serving_tls is None:
        return [], []
    items = [{"key": k, "path": k} for k in (CERT_KEY, KEY_KEY)]
    volumes = [
        {
            "name": "serving-tls",
            "secret": {"secretName": endpoints.serving_tls.secret, "items": items, "defaultMode": 0o440},
        }
    ]
    return volumes, [{"name": "serving-tls", "mountPath": TLS_DIR, "readOnly": True}]


def client_ca_path(config_dir: str) -> str:
    return f"{config_dir}/{CA_KEY}"


def client_config_data(fs: FeatureStore, endpoints: Endpoints) -> dict[str, str]:
    """Extra keys of the client ConfigMap: the CA certificate when TLS is on."""
    if not enabled(fs) or endpoints.serving_tls is None:
        return {}
    return {CA_KEY: endpoints.serving_tls.ca_pem}
