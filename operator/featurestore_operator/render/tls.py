"""TLS on the Feast servers (``spec.tls``): the server key pair mounted from a Secret, Feast's
``--key/--cert`` flags, HTTPS probes, and the client config's https URLs + CA path.

The key pair comes from the operator's per-store CA (Secret ``<fs>-feast-tls``, backends/tls.py: the
CA's key is used once and never stored, and the CA is name-constrained to the store's names) or,
when the admin configured a cert-manager issuer (``FSO_TLS_ISSUER``), from a cert-manager
``Certificate`` rendered here whose Secret ``<fs>-feast-cert`` cert-manager writes (tls.crt,
tls.key, ca.crt). Issuance cannot happen without cert-manager's CRDs: :func:`problem` says so.

The CA certificate is public: it travels in the client ConfigMap (key ``ca.crt``), which the
PodDefault mounts next to feature_store.yaml, so notebooks verify the servers without any Secret.
"""

from __future__ import annotations

from typing import Any

from ..api import FeatureStore, OperatorConfig
from .inputs import ApiVersions, Endpoints
from .names import Names, labels, meta

TLS_DIR = "/etc/feast/tls"
CA_KEY = "ca.crt"
CERT_KEY = "tls.crt"
KEY_KEY = "tls.key"


#: cert-manager Certificate: one year, renewed 30 days before expiry (as the operator's own CA does).
CERT_DURATION, CERT_RENEW_BEFORE = "8760h", "720h"


def enabled(fs: FeatureStore) -> bool:
    return fs.spec.tls.enabled


def _services(fs: FeatureStore) -> tuple[str, ...]:
    names = Names(fs)
    return (names.feature_server, names.registry_server, names.offline_server, names.ui)


def dns_names(fs: FeatureStore) -> list[str]:
    """Every name a client may use for any of the store's servers: ``<svc>.<ns>``, ``<svc>.<ns>.svc``
    and the FQDN. Not the bare ``<svc>``: no name constraint can permit it without permitting
    ``<anything>.<svc>``, which is how other namespaces' Services resolve when one is named ``<svc>``."""
    names = Names(fs)
    ns = fs.metadata.namespace
    out: list[str] = []
    for svc in _services(fs):
        out += [f"{svc}.{ns}", f"{svc}.{ns}.svc", names.svc_host(svc)]
    return out


def permitted_subtrees(fs: FeatureStore) -> list[str]:
    """The DNS subtrees the per-store CA may sign for (its X.509 name constraints): the store's
    namespace under ``svc`` and the cluster domain, and ``<svc>.<ns>`` of each of its Services.
    A certificate this CA signed for a name of another namespace fails verification."""
    ns = fs.metadata.namespace
    fqdn_suffix = Names(fs).svc_host("x").split(".", 1)[1]  # <ns>.svc.<cluster domain>
    return [f"{ns}.svc", fqdn_suffix, *(f"{svc}.{ns}" for svc in _services(fs))]


def ca_secret_name(fs: FeatureStore) -> str:
    """The Secret of the operator's per-store CA and server key pair (backends/tls.py writes it)."""
    return f"{fs.metadata.name}-feast-tls"


def secret_name(fs: FeatureStore, config: OperatorConfig) -> str:
    """The Secret the servers mount: cert-manager's (admin chose an issuer) or the operator's CA's."""
    return f"{fs.metadata.name}-feast-cert" if config.tls_issuer else ca_secret_name(fs)


def certificate(fs: FeatureStore, config: OperatorConfig, versions: ApiVersions) -> list[dict[str, Any]]:
    """The cert-manager Certificate of the servers (TLS on, an issuer configured, its CRD served)."""
    if not enabled(fs) or not config.tls_issuer or "Certificate" not in versions.optional_kinds:
        return []
    kind, name = config.tls_issuer.split("/", 1)
    return [
        {
            "apiVersion": "cert-manager.io/v1",
            "kind": "Certificate",
            "metadata": meta(fs, f"{fs.metadata.name}-feast-servers", "tls"),
            "spec": {
                "secretName": secret_name(fs, config),
                "dnsNames": dns_names(fs),
                "duration": CERT_DURATION,
                "renewBefore": CERT_RENEW_BEFORE,
                "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
                "usages": ["digital signature", "server auth"],
                "issuerRef": {"group": "cert-manager.io", "kind": kind, "name": name},
                # cert-manager labels the issued Secret with these: the operator watches it and
                # rolls the servers as soon as a renewal lands (not at the next resync)
                "secretTemplate": {"labels": labels(fs, "tls")},
            },
        }
    ]


def problem(
    fs: FeatureStore, config: OperatorConfig, versions: ApiVersions, endpoints: Endpoints
) -> tuple[str, str] | None:
    """(reason, message): why the servers have no certificate yet (None: they have, or TLS is off)."""
    if not enabled(fs) or not config.tls_issuer:
        return None
    if "Certificate" not in versions.optional_kinds:
        return "CertManagerNotInstalled", (
            f"the operator is configured to issue server certificates with cert-manager ({config.tls_issuer}) but "
            "cert-manager.io/v1 Certificate is not served: install cert-manager, or unset the chart value "
            "tls.issuer (FSO_TLS_ISSUER) to use a per-store CA"
        )
    if endpoints.serving_tls is None:
        return "CertificatePending", (
            f"waiting for cert-manager ({config.tls_issuer}) to issue Secret {secret_name(fs, config)} "
            f"(`kubectl describe certificate {fs.metadata.name}-feast-servers`)"
        )
    return None


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
