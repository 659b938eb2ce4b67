"""Feast server Deployments and Services: feature server (always), registry/offline servers and UI
(when asked for), their HPAs (when autoscaled) and the feature server's PDB."""

from __future__ import annotations

from typing import Any

from ..api import FeatureStore, OperatorConfig
from ..api.pods import Component, PodSettings
from ..api.spec import AuthzType, AutoscalingSpec, OptionalServerSpec, RegistryServerSpec
from . import authz, offline, podknobs, tls
from .feast_config import FEATURE_SERVER_PORT, OFFLINE_SERVER_PORT, REGISTRY_SERVER_PORT, UI_PORT
from .inputs import ApiVersions, Endpoints
from .names import CONFIG_HASH_ANNOTATION, Names, labels, meta, selector
from .pods import FEAST_YAML, feast_container, pod_spec, workers_for

METRICS_PORT = 8000


def _deployment(
    fs: FeatureStore,
    name: str,
    component: str,
    replicas: int | None,
    pod: dict[str, Any],
    config_hash: str,
    knobs: PodSettings,
) -> dict[str, Any]:
    template = {
        "metadata": {"labels": labels(fs, component), "annotations": {CONFIG_HASH_ANNOTATION: config_hash}},
        "spec": pod,
    }
    spec: dict[str, Any] = {
        "selector": {"matchLabels": selector(fs, component)},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        "revisionHistoryLimit": 3,
        "template": podknobs.apply(template, knobs, fs, component, main=(component,)),
    }
    if replicas is not None:  # None: owned by an HPA, which must not be fought over
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(fs, name, component), "spec": spec}


def port_name(fs: FeatureStore, protocol: str, suffix: str = "") -> str:
    """A server port's name, which is also what Istio reads the protocol from (the name's prefix, or
    ``appProtocol``; istio.io/latest/docs/ops/configuration/traffic-management/protocol-selection/).
    With spec.tls the servers speak TLS, and a TLS port named ``http``/``grpc`` is parsed by the
    sidecar as plaintext and broken: ``https`` (HTTP over TLS) and ``tls`` (gRPC over TLS) are
    passed through as opaque TLS, inside the mesh's mTLS."""
    if tls.enabled(fs):
        protocol = "https" if protocol == "http" else "tls"
    return f"{protocol}-{suffix}" if suffix else protocol


def _service(fs: FeatureStore, name: str, component: str, ports: list[tuple[str, int]]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(fs, name, component),
        "spec": {
            "type": "ClusterIP",
            "selector": selector(fs, component),
            # Istio picks the protocol from appProtocol, else the port name prefix: both say it.
            "ports": [
                {"name": n, "port": p, "targetPort": n, "protocol": "TCP", "appProtocol": n.split("-")[0]}
                for n, p in ports
            ],
        },
    }


def _http_probes(port: str, path: str = "/health", scheme: str = "HTTP") -> dict[str, Any]:
    get = {"httpGet": {"path": path, "port": port, "scheme": scheme}}
    return {
        "startupProbe": {**get, "periodSeconds": 2, "failureThreshold": 60},
        "readinessProbe": {**get, "periodSeconds": 5, "timeoutSeconds": 3, "failureThreshold": 3},
        "livenessProbe": {**get, "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 6},
    }


def _tcp_probes(port: str) -> dict[str, Any]:
    tcp = {"tcpSocket": {"port": port}}
    return {
        "startupProbe": {**tcp, "periodSeconds": 2, "failureThreshold": 60},
        "readinessProbe": {**tcp, "periodSeconds": 5},
        "livenessProbe": {**tcp, "periodSeconds": 10, "failureThreshold": 6},
    }


def feature_server(
    fs: FeatureStore, endpoints: Endpoints, config_hash: str, config: OperatorConfig
) -> list[dict[str, Any]]:
    spec = fs.spec.feature_server
    names = Names(fs)
    workers = spec.workers or workers_for(spec.resources)
    args = [
        "-f",
        FEAST_YAML,
        "serve",
        "--host",
        "0.0.0.0",
        "--port",
        str(FEATURE_SERVER_PORT),
        "--workers",
        str(workers),
        "--keep-alive-timeout",
        str(spec.keep_alive_timeout),
        "--registry_ttl_sec",
        str(fs.spec.registry.cache_ttl_seconds),
        "--no-access-log",
        "--max-requests",
        str(spec.max_requests if spec.max_requests is not None else (0 if workers == 1 else 1000)),
    ]
    http = port_name(fs, "http")
    ports = [{"name": http, "containerPort": FEATURE_SERVER_PORT, "protocol": "TCP"}]
    svc_ports = [(http, FEATURE_SERVER_PORT)]
    if spec.metrics.enabled:
        args.append("--metrics")
        ports.append({"name": "http-metrics", "containerPort": METRICS_PORT, "protocol": "TCP"})
        svc_ports.append(("http-metrics", METRICS_PORT))
    container = _server_container(
        fs,
        endpoints,
        "feature-server",
        args,
        spec.resources,
        ports,
        _http_probes(http, scheme=tls.scheme(fs).upper()),
    )
    pod = _server_pod(fs, endpoints, container, terminationGracePeriodSeconds=30)
    replicas = None if spec.autoscaling else spec.replicas
    return [
        _deployment(
            fs,
            names.feature_server,
            "feature-server",
            replicas,
            pod,
            config_hash,
            podknobs.settings(fs, config, "featureServer"),
        ),
        _service(fs, names.feature_server, "feature-server", svc_ports),
    ]


def _server_container(
    fs: FeatureStore,
    endpoints: Endpoints,
    name: str,
    args: list[str],
    req: Any,
    ports: list[dict[str, Any]],
    probes: dict[str, Any],
) -> dict[str, Any]:
    """A Feast server: the authz shim in front of Feast's CLI, TLS flags and key pair."""
    container = feast_container(fs, endpoints, name, [*args, *tls.server_args(fs)], req, ports=ports, **probes)
    container["command"] = authz.server_command(fs) or container["command"]
    container["env"] = [*container["env"], *authz.server_env(fs)]
    container["volumeMounts"] = [*container["volumeMounts"], *tls.volume(fs, endpoints)[1]]
    return container


def _server_pod(fs: FeatureStore, endpoints: Endpoints, container: dict[str, Any], **extra: Any) -> dict[str, Any]:
    pod = pod_spec(fs, endpoints, [container], **extra)
    pod["volumes"] = [*pod["volumes"], *tls.volume(fs, endpoints)[0]]
    if fs.spec.authz.type is AuthzType.KUBERNETES:
        pod["automountServiceAccountToken"] = True  # Feast reviews callers' tokens with it
    return pod


def _optional_server(
    fs: FeatureStore,
    endpoints: Endpoints,
    config_hash: str,
    config: OperatorConfig,
    spec: OptionalServerSpec | RegistryServerSpec,
    knob: Component,
    name: str,
    component: str,
    args: list[str],
    port_name: str,
    port: int,
    probes: dict[str, Any],
    adapt: bool = False,
) -> list[dict[str, Any]]:
    """``adapt``: the offline server (render/offline.py: its engine's config, env and volumes)."""
    container = _server_container(
        fs,
        endpoints,
        component,
        ["-f", FEAST_YAML, *args],
        spec.resources,
        [{"name": port_name, "containerPort": port, "protocol": "TCP"}],
        probes,
    )
    pod = _server_pod(fs, endpoints, container)
    if adapt:
        offline.adapt_container(fs, container)
        offline.adapt_pod(fs, pod)
    replicas = None if spec.autoscaling else spec.replicas
    return [
        _deployment(
            fs,
            name,
            component,
            replicas,
            pod,
            config_hash,
            podknobs.settings(fs, config, knob),
        ),
        _service(fs, name, component, [(port_name, port)]),
    ]


def optional_servers(
    fs: FeatureStore, endpoints: Endpoints, config_hash: str, config: OperatorConfig, offline_hash: str | None = None
) -> list[dict[str, Any]]:
    """``offline_hash``: the offline server's config hash when it has its own file (render/offline.py)."""
    names = Names(fs)
    spec = fs.spec
    out: list[dict[str, Any]] = []
    if spec.registry.server.enabled:
        out += _optional_server(
            fs,
            endpoints,
            config_hash,
            config,
            spec.registry.server,
            "registryServer",
            names.registry_server,
            "registry-server",
            ["serve_registry", "--port", str(REGISTRY_SERVER_PORT)],
            port_name(fs, "grpc"),
            REGISTRY_SERVER_PORT,
            _tcp_probes(port_name(fs, "grpc")),
        )
    if spec.offline_server.enabled:
        out += _optional_server(
            fs,
            endpoints,
            offline_hash or config_hash,
            config,
            spec.offline_server,
            "offlineServer",
            names.offline_server,
            "offline-server",
            ["serve_offline", "--host", "0.0.0.0", "--port", str(OFFLINE_SERVER_PORT)],
            port_name(fs, "grpc", "flight"),
            OFFLINE_SERVER_PORT,
            _tcp_probes(port_name(fs, "grpc", "flight")),
            adapt=True,
        )
    if spec.ui.enabled:
        out += _optional_server(
            fs,
            endpoints,
            config_hash,
            config,
            spec.ui,
            "ui",
            names.ui,
            "ui",
            ["ui", "--host", "0.0.0.0", "--port", str(UI_PORT)],
            port_name(fs, "http"),
            UI_PORT,
            _tcp_probes(port_name(fs, "http")),
        )
    return out


def _hpa(fs: FeatureStore, versions: ApiVersions, name: str, component: str, a: AutoscalingSpec) -> dict[str, Any]:
    return {
        "apiVersion": versions.hpa,
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta(fs, name, component),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": a.min_replicas,
            "maxReplicas": a.max_replicas,
            # Same shape in autoscaling/v2 and v2beta2.
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": a.target_cpu_utilization_percentage},
                    },
                }
            ],
        },
    }


def autoscaling(fs: FeatureStore, versions: ApiVersions) -> list[dict[str, Any]]:
    spec = fs.spec.feature_server
    names = Names(fs)
    scaled: list[tuple[str, str, AutoscalingSpec | None]] = [
        (names.feature_server, "feature-server", spec.autoscaling),
        (
            names.registry_server,
            "registry-server",
            fs.spec.registry.server.autoscaling if fs.spec.registry.server.enabled else None,
        ),
        (
            names.offline_server,
            "offline-server",
            fs.spec.offline_server.autoscaling if fs.spec.offline_server.enabled else None,
        ),
        (names.ui, "ui", fs.spec.ui.autoscaling if fs.spec.ui.enabled else None),
    ]
    out = [_hpa(fs, versions, name, component, a) for name, component, a in scaled if a]
    if spec.pod_disruption_budget.enabled:
        out.append(
            {
                "apiVersion": versions.pdb,
                "kind": "PodDisruptionBudget",
                "metadata": meta(fs, names.feature_server, "feature-server"),
                "spec": {
                    "maxUnavailable": spec.pod_disruption_budget.max_unavailable,
                    "selector": {"matchLabels": selector(fs, "feature-server")},
                },
            }
        )
    return out
