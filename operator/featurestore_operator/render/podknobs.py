"""Per-component pod settings applied to a rendered pod template, in one place for every
component (feature server, registry/offline servers, UI, materialization, apply, Redis).

Layers, later wins: the operator's ``podDefaults.all``, its ``podDefaults.<component>``, the
FeatureStore's ``pod``. The operator's own labels, annotations and env vars always win over all of
them: the API models refuse reserved keys (api/pods.py), and this module drops any that get here
anyway (defense in depth: the same code then also guards the operator-level defaults).
"""

from __future__ import annotations

from typing import Any

from ..api import FeatureStore, OperatorConfig
from ..api.pods import Component, PodSettings, reserved_annotation, reserved_label
from .authz import SERVE_COMMAND
from .names import selector
from .pods import FEAST_CLI


def _spec_pod(fs: FeatureStore, component: Component) -> PodSettings | None:
    spec = fs.spec
    online = spec.online_store
    return {
        "featureServer": spec.feature_server.pod,
        "registryServer": spec.registry.server.pod,
        "offlineServer": spec.offline_server.pod,
        "ui": spec.ui.pod,
        "materialization": spec.materialization.pod,
        "apply": spec.feature_repo.pod if spec.feature_repo else None,
        "redis": online.in_cluster.pod if online and online.in_cluster else None,
    }[component]


def merge(layers: list[PodSettings]) -> PodSettings:
    """One PodSettings from several, later layers winning: maps merge key by key, env by name,
    lists of tolerations/envFrom/pull secrets add up, everything else is replaced."""
    env: dict[str, Any] = {}
    out: dict[str, Any] = {}
    for layer in layers:
        for var in layer.env or []:
            env[var.name] = var
        for key in ("node_selector", "annotations", "labels"):
            if getattr(layer, key):
                out[key] = {**out.get(key, {}), **getattr(layer, key)}
        for key in ("env_from", "tolerations", "image_pull_secrets"):
            for item in getattr(layer, key) or []:
                if item not in out.setdefault(key, []):
                    out[key].append(item)
        for key in ("affinity", "topology_spread_constraints", "priority_class_name", "log_level"):
            if getattr(layer, key) is not None:
                out[key] = getattr(layer, key)
    if env:
        out["env"] = list(env.values())
    return PodSettings.model_construct(**out)


def settings(fs: FeatureStore, config: OperatorConfig, component: Component) -> PodSettings:
    """The effective settings of one component of ``fs``."""
    layers = config.pod_defaults.for_component(component)
    own = _spec_pod(fs, component)
    return merge([*layers, *([own] if own else [])])


def log_level_args(pod: PodSettings) -> list[str]:
    """`feast` global options for the log level (before the subcommand)."""
    return ["--log-level", pod.log_level] if pod.log_level else []


def _wire(items: list[Any] | None) -> list[Any]:
    return [i.wire() for i in items or []]


def apply(
    template: dict[str, Any], pod: PodSettings, fs: FeatureStore, component: str, main: tuple[str, ...]
) -> dict[str, Any]:
    """Return ``template`` (a pod template: metadata + spec) with ``pod`` applied. ``main`` names
    the containers that get env/envFrom. The operator's labels, annotations and env win."""
    meta = dict(template.get("metadata") or {})
    labels = {k: v for k, v in (pod.labels or {}).items() if not reserved_label(k)}
    meta["labels"] = {**labels, **meta.get("labels", {})}
    annotations = {k: v for k, v in (pod.annotations or {}).items() if not reserved_annotation(k)}
    if annotations or meta.get("annotations"):
        meta["annotations"] = {**annotations, **meta.get("annotations", {})}
    spec = dict(template["spec"])
    spec["containers"] = [_container(c, pod) if c["name"] in main else c for c in spec["containers"]]
    if pod.node_selector:
        spec["nodeSelector"] = dict(pod.node_selector)
    if pod.tolerations:
        spec["tolerations"] = _wire(pod.tolerations)
    if pod.affinity:
        spec["affinity"] = pod.affinity.wire()
    if pod.topology_spread_constraints:
        spec["topologySpreadConstraints"] = [
            {"labelSelector": {"matchLabels": selector(fs, component)}, **c.wire()}
            for c in pod.topology_spread_constraints
        ]
    if pod.image_pull_secrets:
        spec["imagePullSecrets"] = _wire(pod.image_pull_secrets)
    if pod.priority_class_name:
        spec["priorityClassName"] = pod.priority_class_name
    return {**template, "metadata": meta, "spec": spec}


def _container(container: dict[str, Any], pod: PodSettings) -> dict[str, Any]:
    out = dict(container)
    ours = {e["name"] for e in out.get("env", [])}
    extra = [e.wire() for e in pod.env or [] if e.name not in ours]
    if extra:
        out["env"] = [*out.get("env", []), *extra]
    if pod.env_from:
        out["envFrom"] = _wire(pod.env_from)
    if pod.log_level and out.get("command") in (FEAST_CLI, SERVE_COMMAND):  # Feast's CLI arguments follow
        out["args"] = [*log_level_args(pod), *out.get("args", [])]
    return out
