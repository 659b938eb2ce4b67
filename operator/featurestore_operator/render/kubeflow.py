"""Kubeflow objects: the PodDefault that gives notebooks the client config and the Role that lets the
profile's notebook identity read it. (Network policies: ``render.policies``.)"""

from __future__ import annotations

from typing import Any

from ..api import FeatureStore, OperatorConfig
from . import authz
from .authz import NOTEBOOK_SERVICE_ACCOUNT
from .feast_config import FEAST_CONFIG_FILE
from .inputs import ApiVersions
from .names import Names, meta

CLIENT_MOUNT_ROOT = "/etc/feast"


def client_config_path(fs: FeatureStore) -> str:
    return f"{CLIENT_MOUNT_ROOT}/{fs.metadata.name}/{FEAST_CONFIG_FILE}"


def pod_default(fs: FeatureStore, versions: ApiVersions) -> list[dict[str, Any]]:
    if not fs.spec.kubeflow.pod_default or "PodDefault" not in versions.optional_kinds:
        return []
    names = Names(fs)
    volume = f"feast-{fs.metadata.name}"
    token_volumes, token_mounts = authz.token_volume(fs)
    return [
        {
            "apiVersion": "kubeflow.org/v1alpha1",
            "kind": "PodDefault",
            "metadata": meta(fs, names.pod_default, "kubeflow"),
            "spec": {
                "selector": {"matchLabels": {names.access_label: "true"}},
                "desc": f"Allow access to Feast ({fs.metadata.name})",
                "env": [{"name": "FEAST_FS_YAML_FILE_PATH", "value": client_config_path(fs)}, *authz.client_env(fs)],
                "volumes": [{"name": volume, "configMap": {"name": names.client_config}}, *token_volumes],
                "volumeMounts": [
                    {"name": volume, "mountPath": f"{CLIENT_MOUNT_ROOT}/{fs.metadata.name}", "readOnly": True},
                    *token_mounts,
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
