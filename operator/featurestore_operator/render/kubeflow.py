"""Kubeflow objects: the PodDefault that gives notebooks the client config, and the policy that lets
the profile's namespace (plus allowed namespaces) call the feature server."""

from __future__ import annotations

from typing import Any

from ..api import FeatureStore
from .feast_config import FEAST_CONFIG_FILE, FEATURE_SERVER_PORT
from .inputs import ApiVersions
from .names import Names, meta, selector

CLIENT_MOUNT_ROOT = "/etc/feast"


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
                "volumeMounts": [{"name": volume, "mountPath": f"{CLIENT_MOUNT_ROOT}/{fs.metadata.name}", "readOnly": True}],
            },
        }
    ]


def access_policy(fs: FeatureStore, versions: ApiVersions, istio: bool) -> list[dict[str, Any]]:
    """Istio AuthorizationPolicy when Istio is used and installed, else a NetworkPolicy."""
    names = Names(fs)
    namespaces = [fs.metadata.namespace, *[n for n in fs.spec.kubeflow.allowed_namespaces if n != fs.metadata.namespace]]
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
                            {"namespaceSelector": {"matchExpressions": [
                                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": namespaces}
                            ]}}
                        ],
                        "ports": [{"port": FEATURE_SERVER_PORT, "protocol": "TCP"}],
                    }
                ],
            },
        }
    ]
