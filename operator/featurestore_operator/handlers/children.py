"""Watches of the objects the operator owns: they feed the observed-state cache and wake the owning
FeatureStore's worker when a child drifts, disappears or changes status."""

from __future__ import annotations

from typing import Any

import kopf

from ..reconcile.applier import ObservedCache
from ..reconcile.kinds import key
from ..render.names import MANAGED_BY, MANAGED_BY_LABEL, OWNER_LABEL
from .runtime import Runtime

OURS = {MANAGED_BY_LABEL: MANAGED_BY}

# (group, plural) without versions: kopf watches the version the cluster prefers, so the
# same code works on 1.20 (batch/v1beta1 CronJobs) and current clusters. Absent optional
# CRDs (PodDefault, AuthorizationPolicy) are watched once they are installed.
WATCHED = [
    ("v1", "serviceaccounts"),
    ("v1", "secrets"),
    ("v1", "configmaps"),
    ("v1", "services"),
    ("v1", "persistentvolumeclaims"),
    ("apps", "deployments"),
    ("apps", "statefulsets"),
    ("batch", "jobs"),
    ("autoscaling", "horizontalpodautoscalers"),
    ("policy", "poddisruptionbudgets"),
    ("networking.k8s.io", "networkpolicies"),
    # PodDefault with its version: kopf resolves a version-less selector in the group's preferred
    # version only, and in Kubeflow that is kubeflow.org/v1 (Profiles) - no PodDefaults there.
    ("kubeflow.org/v1alpha1", "poddefaults"),
    ("security.istio.io", "authorizationpolicies"),
]


def on_child_event(cache: ObservedCache, memo: Runtime, event: dict[str, Any]) -> None:
    obj = event.get("object") or {}
    if not obj.get("kind") or not obj.get("metadata"):
        return
    owner = (obj["metadata"].get("labels") or {}).get(OWNER_LABEL)
    if event["type"] == "DELETED":
        relevant = cache.forget(key(obj))
    else:
        drifted = cache.observe(obj)
        # status of workloads matters for conditions; other kinds only when they drifted
        relevant = drifted or obj["kind"] in ("Deployment", "StatefulSet", "CronJob", "Job")
    if owner and relevant:
        memo.poke(obj["metadata"]["namespace"], owner)


async def child_event(event: dict[str, Any], memo: Runtime, **_: Any) -> None:
    on_child_event(memo.cache, memo, event)


for _group, _plural in WATCHED:
    kopf.on.event(_group, _plural, labels=OURS, id=f"watch-{_plural}")(child_event)


def _cronjobs(resource: kopf.Resource) -> bool:
    """CronJobs in whichever version is served: 1.20 serves them only in the non-preferred
    batch/v1beta1, which a plain ("batch", "cronjobs") selector would skip."""
    return resource.group == "batch" and resource.plural == "cronjobs" and resource.version in ("v1", "v1beta1")


kopf.on.event(_cronjobs, labels=OURS, id="watch-cronjobs")(child_event)
