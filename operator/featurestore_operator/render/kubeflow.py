"""Kubeflow objects: the PodDefault that gives notebooks the client config and the Role that lets the
profile's notebook identity read it. (Network policies: ``render.policies``.)

PodDefaults of several stores compose: Kubeflow's PodDefault webhook (kubeflow/dashboard
components/poddefaults-webhooks/main.go, ``mergeEnv``/``mergeVolumes``/``mergeVolumeMounts``) merges
every PodDefault a pod selects and REFUSES the pod when two set one env var, volume or mount (name or
path) differently. So everything a store's PodDefault sets is named after the store
(``FEAST_<NAME>_FS_YAML_FILE_PATH``, volume ``feast-<name>``, ``/etc/feast/<name>``), and the shared
``FEAST_FS_YAML_FILE_PATH`` comes from at most one store per namespace: :func:`default_store`."""

from __future__ import annotations

from typing import Any

from ..api import FeatureStore, OperatorConfig
from . import authz
from .authz import NOTEBOOK_SERVICE_ACCOUNT
from .feast_config import FEAST_CONFIG_FILE
from .inputs import ApiVersions, NotebookAccess
from .names import Names, meta

CLIENT_MOUNT_ROOT = "/etc/feast"


def client_config_path(fs: FeatureStore) -> str:
    return f"{CLIENT_MOUNT_ROOT}/{fs.metadata.name}/{FEAST_CONFIG_FILE}"


#: The variable a bare ``FeatureStore()`` reads (Feast's FEAST_FS_YAML_FILE_PATH_ENV_NAME).
DEFAULT_STORE_ENV = "FEAST_FS_YAML_FILE_PATH"

StoreKey = tuple[str, str]  # (creationTimestamp, name): RFC 3339 strings sort by time


def store_config_env(name: str) -> str:
    """The per-store variable every PodDefault sets: ``FEAST_<NAME>_FS_YAML_FILE_PATH``."""
    return f"FEAST_{authz.env_part(name)}_FS_YAML_FILE_PATH"


def default_store(stores: list[StoreKey], marked: dict[str, bool | None]) -> str | None:
    """The namespace's default store, the one whose PodDefault sets ``FEAST_FS_YAML_FILE_PATH``:
    the oldest store with ``spec.kubeflow.defaultStore: true``; else the only store, unless it says
    false; else none. ``stores``: every store of the namespace; ``marked``: name -> its defaultStore."""
    chosen = sorted(s for s in stores if marked.get(s[1]) is True)
    if chosen:
        return chosen[0][1]
    if len(stores) == 1 and marked.get(stores[0][1]) is not False:
        return stores[0][1]
    return None


def pod_default(fs: FeatureStore, versions: ApiVersions, access: NotebookAccess | None = None) -> list[dict[str, Any]]:
    if not fs.spec.kubeflow.pod_default or "PodDefault" not in versions.optional_kinds:
        return []
    path = client_config_path(fs)
    env = [{"name": store_config_env(fs.metadata.name), "value": path}]
    if (access or NotebookAccess()).default:
        env.insert(0, {"name": DEFAULT_STORE_ENV, "value": path})
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
                "env": [*env, *authz.client_env(fs)],
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
