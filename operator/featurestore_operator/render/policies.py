"""Network fences: one NetworkPolicy per component with a Service, plus an Istio AuthorizationPolicy
per component when Istio is used and installed. Each admits exactly the callers the component has:

================  =========================================================================
feature server    pods of the store's namespace and of kubeflow.allowedNamespaces
registry server   the same (a remote Feast client resolves feature references through it)
offline server    pods of the store's namespace
UI                pods of the store's namespace
Redis             this store's own Feast pods only (NetworkPolicy); its namespace by mTLS identity
                  (AuthorizationPolicy) where Jobs join the mesh (native sidecars), none else
every store pod   :func:`store_policy`: ingress from the store's own pods only, egress to the
                  store's own pods, DNS and the few outside services Feast needs (below)
Ray pods          :func:`ray_policy` instead (kubeRay): ingress from each other (Ray's nodes
                  connect on ports chosen at run time) and from the materialization pods on
                  the head's Jobs API port only (render/rayjob.py); the same egress
================  =========================================================================

Every pod the store runs - servers, Jobs, Redis, the RayCluster's head and workers, and the pods
Feast's engines create (render/compute.py labels them) - carries the store's instance and part-of
labels, so :func:`store_policy` selects it for Ingress AND Egress: a pod without an allow rule is
closed both ways (the Ray head's dashboard/Jobs API, GCS and client ports included); the Ray pods are
selected by :func:`ray_policy` instead, which admits the other store pods on no Ray port but the Jobs
API, and that from the materialization pods only.

Namespaces: the store's own is selected as ``podSelector: {}`` without a namespaceSelector (the
policy's namespace: no namespace label needed; Kubernetes 1.20 sets ``kubernetes.io/metadata.name``
on no namespace). Other namespaces (kubeflow.allowedNamespaces) are selected by that label, which
Kubernetes >= 1.21 sets itself; on 1.20 the admin labels those namespaces so (docs/security/compute-engines.md).

:func:`fenced_components` names what must be fenced; a unit test fails when a Service is
rendered for a component that is not in it. Reconcile applies policies before workloads.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from ..api import FeatureStore
from .compute import submits_ray_job
from .feast_config import FEATURE_SERVER_PORT, OFFLINE_SERVER_PORT, REGISTRY_SERVER_PORT, UI_PORT
from .incluster import REDIS_PORT
from .inputs import ApiVersions, Endpoints
from .names import COMPONENT_LABEL, INSTANCE_LABEL, OWNER_LABEL, PART_OF, Names, meta, selector
from .rayjob import DASHBOARD_PORT

METRICS_PORT = 8000
#: Components whose pods talk to Redis (Feast servers and jobs; Ray's nodes write a Ray job's rows).
FEAST_COMPONENTS = [
    "feature-server",
    "registry-server",
    "offline-server",
    "ui",
    "materialization",
    "feature-repo",
    "ray",
]
#: The RayCluster's pods (render/compute.py ``_ray_group``): fenced by :func:`ray_policy`.
RAY_COMPONENT = "ray"
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


def store_pods(fs: FeatureStore) -> dict[str, Any]:
    """Every pod of the store: the operator's (labels()) and those Feast's engines create."""
    return {"matchLabels": {INSTANCE_LABEL: fs.metadata.name, "app.kubernetes.io/part-of": PART_OF}}


def _peers(fs: FeatureStore, component: str, remote: bool) -> list[dict[str, Any]]:
    if component == "online-store":
        return [{"podSelector": _store_pods(fs)}]
    peers: list[dict[str, Any]] = [{"podSelector": {}}]  # the policy's (store's) namespace, on every version
    others = _namespaces(fs, remote)[1:]
    if others:
        expr = {"key": NAMESPACE_NAME_LABEL, "operator": "In", "values": others}
        peers.append({"namespaceSelector": {"matchExpressions": [expr]}})
    return peers


#: GKE's metadata server (Workload Identity tokens): 169.254.169.254:80, and :988 on Dataplane V2.
METADATA_SERVERS = (("169.254.169.254/32", 80), ("169.254.169.252/32", 988))
#: Ports of outside services a store's pods call: HTTPS (Google APIs: GCS, IAM credentials; git over
#: https; OIDC discovery; the Kubernetes API through its Service), 6443 (the API server's own port,
#: which CNIs that filter after DNAT see), 15012 (istiod: a sidecar's configuration and certificates).
OUTSIDE_PORTS = (443, 6443, 15012)


def _port(url: str, default: int) -> int:
    host = urlsplit(url if "://" in url else f"ssh://{url}").netloc.rpartition("@")[2]
    tail = host.rpartition(":")[2] if ":" in host else ""
    return int(tail) if tail.isdigit() and 0 < int(tail) < 65536 else default


def _egress(fs: FeatureStore, endpoints: Endpoints | None) -> list[dict[str, Any]]:
    def tcp(*ports: int) -> list[dict[str, Any]]:
        return [{"port": p, "protocol": "TCP"} for p in sorted(set(ports))]

    ports = list(OUTSIDE_PORTS)
    git = fs.spec.feature_repo.git if fs.spec.feature_repo else None
    if git is not None:  # https or ssh (git@host:path is ssh, port 22)
        ports.append(_port(git.url, 443 if git.url.startswith("https://") else 22))
    if fs.spec.authz.oidc is not None:
        ports.append(_port(fs.spec.authz.oidc.issuer, 443))
    rules: list[dict[str, Any]] = [
        {"to": [{"podSelector": store_pods(fs)}]},
        {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]},
        {"ports": tcp(*ports)},
        *({"to": [{"ipBlock": {"cidr": cidr}}], "ports": tcp(port)} for cidr, port in METADATA_SERVERS),
    ]
    online = endpoints.online if endpoints else None
    if online is not None:  # Memorystore (an IP) or an external Redis (an IP or a name)
        try:
            ip = ipaddress.ip_address(online.host)
            to: list[dict[str, Any]] = [{"ipBlock": {"cidr": f"{ip}/{ip.max_prefixlen}"}}]
        except ValueError:
            to = []  # a DNS name: the port alone (an in-cluster Redis is one of the store's pods)
        rules.append({**({"to": to} if to else {}), "ports": tcp(online.port)})
    return rules


def store_policy(fs: FeatureStore, endpoints: Endpoints | None) -> dict[str, Any]:
    """The fence of every pod of the store but Ray's, both ways (see the module docstring). NotIn
    also matches pods without the component label (those Feast's engines create)."""
    pods = store_pods(fs)
    if submits_ray_job(fs):  # the RayCluster's pods have their own fence
        pods["matchExpressions"] = [{"key": COMPONENT_LABEL, "operator": "NotIn", "values": [RAY_COMPONENT]}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta(fs, f"{fs.metadata.name}-feast-pods", "network"),
        "spec": {
            "podSelector": pods,
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [{"podSelector": store_pods(fs)}]}],
            "egress": _egress(fs, endpoints),
        },
    }


def ray_policy(fs: FeatureStore, endpoints: Endpoints | None) -> dict[str, Any]:
    """The fence of the store's RayCluster pods: each other on any port, the materialization pods on
    the head's Jobs API port (they submit the runs), nothing else; egress as every store pod."""
    ray = {"matchLabels": selector(fs, RAY_COMPONENT)}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta(fs, f"{fs.metadata.name}-ray-pods", "network"),
        "spec": {
            "podSelector": ray,
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {"from": [{"podSelector": ray}]},
                {
                    "from": [{"podSelector": {"matchLabels": selector(fs, "materialization")}}],
                    "ports": [{"port": DASHBOARD_PORT, "protocol": "TCP"}],
                },
            ],
            "egress": _egress(fs, endpoints),
        },
    }


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


def authorization_policy(fs: FeatureStore, component: str, api_version: str) -> dict[str, Any]:
    name, ports, remote = fenced_components(fs)[component]
    return {
        "apiVersion": api_version,
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


def policies(
    fs: FeatureStore,
    components: set[str],
    versions: ApiVersions,
    istio: bool,
    endpoints: Endpoints | None = None,
    redis_in_mesh: bool = True,
) -> list[dict[str, Any]]:
    """The store's fence (:func:`store_policy`) and the policies of the given rendered components
    (those with a workload or Service). ``redis_in_mesh``: the in-cluster Redis and the Jobs writing
    to it run sidecars (hardening.mesh_annotations), so under Kubeflow's global-deny-all Redis needs
    an ALLOW policy too."""
    out: list[dict[str, Any]] = [store_policy(fs, endpoints)]
    if submits_ray_job(fs):
        out.append(ray_policy(fs, endpoints))
    with_istio = istio and "AuthorizationPolicy" in versions.optional_kinds
    for component in fenced_components(fs):
        if component not in components:
            continue
        out.append(network_policy(fs, component))
        # Redis out of the mesh (no native sidecars) gets none: its out-of-mesh callers have no mTLS identity.
        if with_istio and (component != "online-store" or redis_in_mesh):
            out.append(authorization_policy(fs, component, versions.authorization_policy))
    return out
