"""Where each kind the operator owns lives in the API: group, plural, whether namespaced."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    #: API group; "" is the core group.
    group: str

    def path(self, api_version: str, namespace: str | None, name: str | None = None, sub: str | None = None) -> str:
        base = f"/api/{api_version}" if not self.group else f"/apis/{api_version}"
        out = base + (f"/namespaces/{namespace}" if namespace else "") + f"/{self.plural}"
        if name:
            out += f"/{name}"
        if sub:
            out += f"/{sub}"
        return out


KINDS: dict[str, Kind] = {
    k.kind: k
    for k in [
        Kind("ServiceAccount", "serviceaccounts", ""),
        Kind("ConfigMap", "configmaps", ""),
        Kind("Secret", "secrets", ""),
        Kind("Service", "services", ""),
        Kind("PersistentVolumeClaim", "persistentvolumeclaims", ""),
        Kind("Deployment", "deployments", "apps"),
        Kind("StatefulSet", "statefulsets", "apps"),
        Kind("Job", "jobs", "batch"),
        Kind("CronJob", "cronjobs", "batch"),
        Kind("HorizontalPodAutoscaler", "horizontalpodautoscalers", "autoscaling"),
        Kind("PodDisruptionBudget", "poddisruptionbudgets", "policy"),
        Kind("NetworkPolicy", "networkpolicies", "networking.k8s.io"),
        Kind("Role", "roles", "rbac.authorization.k8s.io"),
        Kind("RoleBinding", "rolebindings", "rbac.authorization.k8s.io"),
        Kind("PodDefault", "poddefaults", "kubeflow.org"),
        Kind("AuthorizationPolicy", "authorizationpolicies", "security.istio.io"),
        Kind("FeatureStore", "featurestores", "featurestore.kubeflow.org"),
    ]
}

#: Kinds whose objects the operator owns (watched, applied, pruned). Order = apply order.
OWNED_KINDS = [
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "PersistentVolumeClaim",
    "Service",
    "StatefulSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "CronJob",
    "Job",
    "PodDefault",
    "Role",
    "RoleBinding",
    "AuthorizationPolicy",
    "NetworkPolicy",
]


def kind_of(obj: dict) -> Kind:
    return KINDS[obj["kind"]]


def key(obj: dict) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return obj["kind"], meta.get("namespace", ""), meta["name"]
