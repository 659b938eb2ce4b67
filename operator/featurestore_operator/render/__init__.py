"""Pure rendering: (FeatureStore, backend endpoints, operator config, API versions) -> objects.

No I/O, no clients, no clock. The same function powers the operator and the `render` CLI.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from ..api import FeatureStore, OperatorConfig
from . import feast_config, incluster, jobs, kubeflow, servers
from .inputs import ApiVersions, Endpoints, OfflineEndpoint, OnlineEndpoint, RepoSource, SecretKey
from .names import Names, meta

__all__ = [
    "ApiVersions", "Endpoints", "OfflineEndpoint", "OnlineEndpoint", "Rendered", "RepoSource",
    "SecretKey", "render",
]


@dataclass(frozen=True)
class Rendered:
    server_yaml: str
    client_yaml: str
    config_hash: str
    objects: list[dict[str, Any]]


def _config_maps(fs: FeatureStore, server_yaml: str, client_yaml: str) -> list[dict[str, Any]]:
    names = Names(fs)
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(fs, names.server_config, "config"),
         "data": {feast_config.FEAST_CONFIG_FILE: server_yaml}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(fs, names.client_config, "client-config"),
         "data": {feast_config.FEAST_CONFIG_FILE: client_yaml}},
    ]


def _service_account(fs: FeatureStore) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if fs.spec.gcp.service_account:
        extra["annotations"] = {"iam.gke.io/gcp-service-account": fs.spec.gcp.service_account}
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(fs, Names(fs).service_account, "identity", **extra)}


def render(
    fs: FeatureStore,
    endpoints: Endpoints,
    config: OperatorConfig,
    versions: ApiVersions | None = None,
    repo: RepoSource | None = None,
) -> Rendered:
    """Every object one FeatureStore owns. ``fs.spec`` must be resolved (``api.resolve``).

    Workloads that need a backend are rendered only once its endpoint is known, so nothing starts
    with a config pointing nowhere; config maps show ``<pending>`` meanwhile.
    """
    versions = versions or ApiVersions()
    server = feast_config.to_yaml(feast_config.server_config(fs, endpoints))
    client = feast_config.to_yaml(feast_config.client_config(fs, endpoints))
    config_hash = hashlib.sha256(server.encode()).hexdigest()[:16]
    objects: list[dict[str, Any]] = [_service_account(fs), *_config_maps(fs, server, client)]
    objects += incluster.data_claim(fs) + incluster.redis(fs)
    if endpoints.online and endpoints.offline:
        objects += servers.feature_server(fs, endpoints, config_hash)
        objects += servers.optional_servers(fs, endpoints, config_hash)
        objects += servers.autoscaling(fs, versions)
        objects += jobs.materialization(fs, endpoints, config_hash, versions)
        objects += jobs.apply_job(fs, endpoints, repo)
    objects += kubeflow.pod_default(fs, versions)
    objects += kubeflow.client_config_reader(fs, versions, config)
    objects += kubeflow.access_policy(fs, versions, config.istio)
    return Rendered(server_yaml=server, client_yaml=client, config_hash=config_hash, objects=objects)
