"""Which rendered workloads a policy fences: a refused NetworkPolicy or AuthorizationPolicy holds
back every workload whose pods it selects (reconcile/applier.py), so no pod starts unfenced."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

POLICY_KINDS = frozenset({"NetworkPolicy", "AuthorizationPolicy"})


def pod_labels(node: Any) -> Iterator[dict[str, str]]:
    """Labels of every pod template anywhere in an object (Deployment, StatefulSet, Job, CronJob,
    RayCluster groups, or any kind added later): a mapping with metadata and a spec with containers."""
    if isinstance(node, dict):
        spec = node.get("spec")
        if isinstance(spec, dict) and "containers" in spec and isinstance(node.get("metadata"), dict):
            yield node["metadata"].get("labels") or {}
        for value in node.values():
            yield from pod_labels(value)
    elif isinstance(node, list):
        for value in node:
            yield from pod_labels(value)


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Kubernetes label selector semantics (matchLabels and matchExpressions)."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        ok = {
            "In": present and labels.get(key) in values,
            "NotIn": not present or labels.get(key) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }.get(op, False)
        if not ok:
            return False
    return True


def _selector(policy: dict[str, Any]) -> dict[str, Any]:
    spec = policy.get("spec") or {}
    if policy["kind"] == "NetworkPolicy":
        return spec.get("podSelector") or {}
    return {"matchLabels": (spec.get("selector") or {}).get("matchLabels") or {}}  # none: the whole namespace


def fences(policy: dict[str, Any], obj: dict[str, Any]) -> bool:
    """Whether ``policy`` selects any pod ``obj`` would run (in the same namespace)."""
    if policy["kind"] not in POLICY_KINDS or obj["kind"] in POLICY_KINDS:
        return False
    if policy["metadata"].get("namespace") != obj["metadata"].get("namespace"):
        return False
    selector = _selector(policy)
    return any(selects(selector, labels) for labels in pod_labels(obj))
