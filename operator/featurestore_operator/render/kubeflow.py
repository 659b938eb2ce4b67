"""Kubeflow objects: the PodDefault that gives notebooks the client config, the Role that lets the
profile's notebook identity read it, and the policy that lets the profile's namespace (plus allowed
namespaces) call the feature server."""

from __future__ import annotations

from typing import Any

from ..api import FeatureStore, OperatorConfig
from .feast_config import FEAST_CONFIG_FILE, FEATURE_SERVER_PORT
from .inputs import ApiVersions
from .names import Names, meta, selector

CLIENT_MOUNT_ROOT = "/etc/feast"
#: The KSA Kubeflow runs a profile's notebooks, pipelines and KServe models as.
NOTEBOOK_SERVICE_ACCOUNT = "default-editor"


def client_config_path(fs: FeatureStore) -> str:
    return f"{CLIENT_MOUNT_ROOT}/{fs.metadata.name}/{FEAST_CONFIG_FILE}"


def pod_default(fs: FeatureStore, versions: ApiVersions) -> list[dict[str, Any]]:
    if not fs.spec.kubeflow.pod_default or "PodDefault" not in versions.optional_kinds:
        return []
    names = Names(fs)
    volume = f"feast-{fs.metadata.name}"
    return [
        {
            "apiVersion": "kubeflow.org/v1alpha1",
            "kind": "PodDefault",
            "metadata": meta(fs, names.pod_default, "kubeflow"),
            "spec": {
                "selector": {"matchLabels": {names.access_label: "true"}},
                "desc": f"Allow access to Feast ({fs.metadata.name})",
                "env": [{"name": "FEAST_FS_YAML_FILE_PATH", "value": client_config_path(fs)}],
                "volumes": [{"name": volume, "configMap": {"name": names.client_config}}],
                "volumeMounts": [
                    {"name": volume, "mountPath": f"{CLIENT_MOUNT_ROOT}/{fs.metadata.name}", "readOnly": True}
                ],
            },
        }
    ]


def client_config_reader(fs: FeatureStore, versions: ApiVersions, config: OperatorConfig) -> list[dict[str, Any]]:
    """Role + RoleBinding: the profile's ``default-editor`` may ``get`` this store's client config.

    Notebooks get the file through the PodDefault's volume (the kubelet mounts it; no RBAC involved);
    this grant is for code that reads it through the API (``kubectl get cm``, KFP components that
    fetch the config at run time) in namespaces where default-editor has no general ConfigMap read.
    Rendered in Kubeflow mode only - profile onboarding on and the PodDefault rendered - because the
    operator then needs RBAC on roles/rolebindings (the Helm chart grants it with onboarding). A
    Role may only grant what the operator holds itself (RBAC escalation check): it holds ``get``
    on configmaps."""
    if not config.onboarding_enabled or not pod_default(fs, versions):
        return []
    names = Names(fs)
    name = f"{fs.metadata.name}-feast-client-reader"
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta(fs, name, "kubeflow"),
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["configmaps"],
                    "resourceNames": [names.client_config],
                    "verbs": ["get"],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta(fs, name, "kubeflow"),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [
                {"kind": "ServiceAccount", "name": NOTEBOOK_SERVICE_ACCOUNT, "namespace": fs.metadata.namespace}
            ],
        },
    ]


def access_policy(fs: FeatureStore, versions: ApiVersions, istio: bool) -> list[dict[str, Any]]:
    """Istio AuthorizationPolicy when Istio is used and installed, else a NetworkPolicy."""
    names = Names(fs)
    namespaces = [
        fs.metadata.namespace,
        *[n for n in fs.spec.kubeflow.allowed_namespaces if n != fs.metadata.namespace],
    ]
    if istio and "AuthorizationPolicy" in versions.optional_kinds:
        return [
            {
                "apiVersion": "security.istio.io/v1beta1",
                "kind": "AuthorizationPolicy",
                "metadata": meta(fs, names.feature_server, "feature-server"),
                "spec": {
                    "selector": {"matchLabels": selector(fs, "feature-server")},
                    "action": "ALLOW",
                    "rules": [{"from": [{"source": {"namespaces": namespaces}}]}],
                },
            }
        ]
    if istio:
        return []  # Istio wanted but not installed: reported in the Kubeflow condition
    return [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": meta(fs, names.feature_server, "feature-server"),
            "spec": {
                "podSelector": {"matchLabels": selector(fs, "feature-server")},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [
                            {
                                "namespaceSelector": {
                                    "matchExpressions": [
                                        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": namespaces}
                                    ]
                                }
                            }
                        ],
                        "ports": [{"port": FEATURE_SERVER_PORT, "protocol": "TCP"}],
                    }
                ],
            },
        }
    ]
