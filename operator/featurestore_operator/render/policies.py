"""Network fences: one NetworkPolicy per component with a Service, plus an Istio AuthorizationPolicy
per component when Istio is used and installed. Each admits exactly the callers the component has:

================  =========================================================================
feature server    pods of the store's namespace and of kubeflow.allowedNamespaces
registry server   the same (a remote Feast client resolves feature references through it)
offline server    pods of the store's namespace
UI                pods of the store's namespace
Redis             this store's own Feast pods only (NetworkPolicy only: the Jobs that use it
                  run without an Istio sidecar, so there is no mTLS identity to match)
================  =========================================================================

:func:`fenced_components` names what must be fenced; a unit test fails when a Service is
rendered for a component that is not in it. Reconcile applies policies before workloads.
"""

from __future__ import annotations

from typing import Any

from ..api import FeatureStore
from .feast_config import FEATURE_SERVER_PORT, OFFLINE_SERVER_PORT, REGISTRY_SERVER_PORT, UI_PORT
from .incluster import REDIS_PORT
from .inputs import ApiVersions
from .names import COMPONENT_LABEL, INSTANCE_LABEL, OWNER_LABEL, Names, meta, selector

METRICS_PORT = 8000
#: Components whose pods talk to Redis (Feast servers and jobs).
FEAST_COMPONENTS = ["feature-server", "registry-server", "offline-server", "ui", "materialization", "feature-repo"]
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def _namespaces(fs: FeatureStore, remote: bool) -> list[str]:
    ns = fs.metadata.namespace
    extra = [n for n in fs.spec.kubeflow.allowed_namespaces if n != ns] if remote else []
    return [ns, *extra]


def fenced_components(fs: FeatureStore) -> dict[str, tuple[str, list[int], bool]]:
    """component -> (object name, ports, whether kubeflow.allowedNamespaces may call it)."""
    names = Names(fs)
    serve_ports = [FEATURE_SERVER_PORT] + ([METRICS_PORT] if fs.spec.feature_server.metrics.enabled else [])
    return {
        "feature-server": (names.feature_server, serve_ports, True),
        "registry-server": (names.registry_server, [REGISTRY_SERVER_PORT], True),
        "offline-server": (names.offline_server, [OFFLINE_SERVER_PORT], False),
        "ui": (names.ui, [UI_PORT], False),
        "online-store": (names.redis, [REDIS_PORT], False),
    }


def _store_pods(fs: FeatureStore) -> dict[str, Any]:
    return {
        "matchLabels": {INSTANCE_LABEL: fs.metadata.name, OWNER_LABEL: fs.metadata.name},
        "matchExpressions": [{"key": COMPONENT_LABEL, "operator": "In", "values": FEAST_COMPONENTS}],
    }


def _peers(fs: FeatureStore, component: str, remote: bool) -> list[dict[str, Any]]:
    if component == "online-store":
        return [{"podSelector": _store_pods(fs)}]
    values = _namespaces(fs, remote)
    return [
        {"namespaceSelector": {"matchExpressions": [{"key": NAMESPACE_NAME_LABEL, "operator": "In", "values": values}]}}
    ]


def network_policy(fs: FeatureStore, component: str) -> dict[str, Any]:
    name, ports, remote = fenced_components(fs)[component]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta(fs, name, component),
        "spec": {
            "podSelector": {"matchLabels": selector(fs, component)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {"from": _peers(fs, component, remote), "ports": [{"port": p, "protocol": "TCP"} for p in ports]}
            ],
        },
    }


def authorization_policy(fs: FeatureStore, component: str) -> dict[str, Any]:
    name, ports, remote = fenced_components(fs)[component]
    return {
        "apiVersion": "security.istio.io/v1beta1",
        "kind": "AuthorizationPolicy",
        "metadata": meta(fs, name, component),
        "spec": {
            "selector": {"matchLabels": selector(fs, component)},
            "action": "ALLOW",
            "rules": [
                {
                    "from": [{"source": {"namespaces": _namespaces(fs, remote)}}],
                    "to": [{"operation": {"ports": [str(p) for p in ports]}}],
                }
            ],
        },
    }


def policies(fs: FeatureStore, components: set[str], versions: ApiVersions, istio: bool) -> list[dict[str, Any]]:
    """Policies for the given rendered components (those with a workload or Service)."""
    out: list[dict[str, Any]] = []
    with_istio = istio and "AuthorizationPolicy" in versions.optional_kinds
    for component in fenced_components(fs):
        if component not in components:
            continue
        out.append(network_policy(fs, component))
        # Redis gets none: the Jobs that use it run without a sidecar (no mTLS identity to match).
        if with_istio and component != "online-store":
            out.append(authorization_policy(fs, component))
    return out
