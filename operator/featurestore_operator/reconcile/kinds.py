"""The one table of kinds the operator touches: where each lives in the API, which versions it may be
served in, the order children are applied in, whether it is watched, and the RBAC it needs.

Everything that lists kinds derives from :data:`KINDS`: the watches (``handlers.watches``), the apply
order and prune (``reconcile.applier``), discovery of served versions (``reconcile.discovery``) and
the chart's RBAC test (``tests/controlplane/test_chart_rbac_table.py``: the chart grants the operator
no more than these verbs, plus a short list of subresource and by-name rules, each with its reason).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Key = tuple[str, str, str]  # (kind, namespace, name)


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    #: API group; "" is the core group.
    group: str
    #: Versions in order of preference; discovery picks the first one the cluster serves.
    versions: tuple[str, ...]
    #: Position in the apply order of children (None: not a child). Policies come before the
    #: workloads they protect; identities and config before the pods that mount them.
    apply_order: int | None = None
    #: Watched (with a server-side label selector) to keep the observed cache and wake owners.
    watched: bool = False
    #: A CRD that may be absent (a condition says so; never a crash).
    optional: bool = False
    #: Verbs the operator needs (the chart's RBAC grants no more: tests/controlplane/test_chart_rbac_table.py).
    #: Children: list/watch (the cache), create+patch (server-side apply), delete (prune); `get` only
    #: where a single object is read by name.
    verbs: tuple[str, ...] = ("list", "watch", "create", "patch", "delete")
    namespaced: bool = True

    def api_versions(self) -> list[str]:
        return [f"{self.group}/{v}" if self.group else v for v in self.versions]


KINDS: dict[str, Kind] = {
    k.kind: k
    for k in [
        # policies first: nothing runs unprotected for a moment
        Kind("NetworkPolicy", "networkpolicies", "networking.k8s.io", ("v1",), 0, True),
        Kind("AuthorizationPolicy", "authorizationpolicies", "security.istio.io", ("v1", "v1beta1"), 1, True, True),
        Kind("ServiceAccount", "serviceaccounts", "", ("v1",), 2, True),
        Kind("Role", "roles", "rbac.authorization.k8s.io", ("v1",), 3, True),
        Kind("RoleBinding", "rolebindings", "rbac.authorization.k8s.io", ("v1",), 4, True),
        # NOT watched: a cluster-wide list/watch of Secrets would let a leaked operator token read every
        # Secret of the cluster. The store's own Secrets have names derived from it (render.names,
        # render.tls): read by name each pass (Applier.refresh), so drift, deletion and pruning are
        # seen at the next pass; cert-manager renewals wake the store through its watched Certificate.
        Kind("Secret", "secrets", "", ("v1",), 5, False, verbs=("get", "create", "patch", "delete")),
        # spec.tls with the admin's cert-manager issuer (FSO_TLS_ISSUER): the servers' Certificate
        Kind("Certificate", "certificates", "cert-manager.io", ("v1",), 5, True, True),
        # get: the user's feature repo ConfigMap (spec.featureRepo.configMap), onboarding's marker
        Kind(
            "ConfigMap", "configmaps", "", ("v1",), 6, True, verbs=("get", "list", "watch", "create", "patch", "delete")
        ),
        Kind("PersistentVolumeClaim", "persistentvolumeclaims", "", ("v1",), 7, True),
        Kind("Service", "services", "", ("v1",), 8, True),
        Kind("StatefulSet", "statefulsets", "apps", ("v1",), 9, True),
        Kind("Deployment", "deployments", "apps", ("v1",), 10, True),
        Kind("HorizontalPodAutoscaler", "horizontalpodautoscalers", "autoscaling", ("v2", "v2beta2"), 11, True),
        Kind("PodDisruptionBudget", "poddisruptionbudgets", "policy", ("v1", "v1beta1"), 12, True),
        Kind("CronJob", "cronjobs", "batch", ("v1", "v1beta1"), 13, True),
        Kind("Job", "jobs", "batch", ("v1",), 14, True),
        Kind("PodDefault", "poddefaults", "kubeflow.org", ("v1alpha1",), 15, True, True),
        # spec.compute with kubeRay: the store's RayCluster (KubeRay operator)
        Kind("RayCluster", "rayclusters", "ray.io", ("v1",), 16, True, True),
        # not children
        Kind(
            "FeatureStore",
            "featurestores",
            "featurestore.kubeflow.org",
            ("v1alpha1",),
            verbs=("get", "list", "watch", "patch"),
        ),
        Kind("Event", "events", "", ("v1",), verbs=("create",)),
        # materialization runs' pods: their termination message (feature view freshness), with compute.enabled
        Kind("Pod", "pods", "", ("v1",), verbs=("list",)),
        Kind("Lease", "leases", "coordination.k8s.io", ("v1",), verbs=("get", "create", "update")),
        # get: kube-system only (the cluster id); list/watch: kopf's namespace matching, onboarding
        Kind("Namespace", "namespaces", "", ("v1",), verbs=("get", "list", "watch"), namespaced=False),
        # the chart's token reviewers binding (handlers/token_reviewers.py): its subjects only
        Kind(
            "ClusterRoleBinding",
            "clusterrolebindings",
            "rbac.authorization.k8s.io",
            ("v1",),
            verbs=("get", "patch"),
            namespaced=False,
        ),
        # the chart's ValidatingWebhookConfiguration (handlers/admission.py): its caBundle only
        Kind(
            "ValidatingWebhookConfiguration",
            "validatingwebhookconfigurations",
            "admissionregistration.k8s.io",
            ("v1",),
            verbs=("get", "patch"),
            namespaced=False,
        ),
        Kind(
            "Profile",
            "profiles",
            "kubeflow.org",
            ("v1",),
            optional=True,
            verbs=("list", "watch"),
            namespaced=False,
        ),
        # spec.compute engine sparkApplication: Feast creates these; discovered for the condition only
        Kind("SparkApplication", "sparkapplications", "sparkoperator.k8s.io", ("v1beta2",), optional=True, verbs=()),
        Kind(
            "CustomResourceDefinition",
            "customresourcedefinitions",
            "apiextensions.k8s.io",
            ("v1",),
            verbs=("list", "watch"),
            namespaced=False,
        ),
    ]
}

#: Children in apply order.
OWNED_KINDS: list[str] = [
    k.kind for k in sorted((k for k in KINDS.values() if k.apply_order is not None), key=lambda k: k.apply_order or 0)
]
APPLY_ORDER: dict[str, int] = {name: i for i, name in enumerate(OWNED_KINDS)}


def kind_of(obj: dict[str, Any]) -> Kind:
    return KINDS[obj["kind"]]


def key(obj: dict[str, Any]) -> Key:
    meta = obj["metadata"]
    return obj["kind"], meta.get("namespace", ""), meta["name"]


def in_apply_order(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Children sorted by :data:`APPLY_ORDER` (stable: the render order within one kind is kept)."""
    return sorted(objects, key=lambda o: APPLY_ORDER.get(o["kind"], len(APPLY_ORDER)))
