"""Pure rendering: (FeatureStore, backend endpoints, operator config, API versions) -> objects.

No I/O, no clients, no clock. The same function powers the operator and the `render` CLI.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from ..api import FeatureStore, OperatorConfig
from . import (
    authz,
    compute,
    feast_config,
    gitref,
    hardening,
    incluster,
    jobs,
    kubeflow,
    offline,
    policies,
    rotation,
    servers,
    tls,
)
from .inputs import (
    ApiVersions,
    Endpoints,
    NotebookAccess,
    OfflineEndpoint,
    OnlineEndpoint,
    RepoSource,
    SecretHashes,
    SecretKey,
    ServingTls,
    secret_hash,
)
from .names import COMPONENT_LABEL, Names, meta

__all__ = [
    "ApiVersions",
    "Endpoints",
    "NotebookAccess",
    "OfflineEndpoint",
    "OnlineEndpoint",
    "Rendered",
    "RepoSource",
    "SecretHashes",
    "SecretKey",
    "ServingTls",
    "render",
    "secret_hash",
]


@dataclass(frozen=True)
class Rendered:
    server_yaml: str
    client_yaml: str
    config_hash: str
    objects: list[dict[str, Any]]


def _config_maps(
    fs: FeatureStore,
    endpoints: Endpoints,
    server_yaml: str,
    client_yaml: str,
    job_yaml: str | None,
    offline_yaml: str | None,
) -> list[dict[str, Any]]:
    names = Names(fs)
    server = {feast_config.FEAST_CONFIG_FILE: server_yaml}
    if job_yaml is not None:
        server[compute.JOB_CONFIG_KEY] = job_yaml
    if offline_yaml is not None:
        server[offline.OFFLINE_CONFIG_KEY] = offline_yaml
    if authz.enabled(fs):
        server[authz.PERMISSIONS_FILE] = authz.permissions_source(fs)
    client = {feast_config.FEAST_CONFIG_FILE: client_yaml, **tls.client_config_data(fs, endpoints)}
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(fs, names.server_config, "config"), "data": server},
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta(fs, names.client_config, "client-config"),
            "data": client,
        },
    ]


def _components(objects: list[dict[str, Any]]) -> set[str]:
    return {
        o["metadata"]["labels"][COMPONENT_LABEL]
        for o in objects
        if o["kind"] in ("Service", "Deployment", "StatefulSet")
    }


def _service_account(fs: FeatureStore) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if fs.spec.gcp.service_account:
        extra["annotations"] = {"iam.gke.io/gcp-service-account": fs.spec.gcp.service_account}
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": meta(fs, Names(fs).service_account, "identity", **extra),
    }


def render(
    fs: FeatureStore,
    endpoints: Endpoints,
    config: OperatorConfig,
    versions: ApiVersions | None = None,
    repo: RepoSource | None = None,
    secrets: SecretHashes | None = None,
    access: NotebookAccess | None = None,
) -> Rendered:
    """Every object one FeatureStore owns. ``fs.spec`` must be resolved (``api.resolve``).

    Workloads that need a backend are rendered only once its endpoint is known, so nothing starts
    with a config pointing nowhere; config maps show ``<pending>`` meanwhile. With TLS on, servers
    also wait for ``endpoints.serving_tls``. Policies come first in the list (reconcile applies
    them before the workloads they protect).
    """
    versions = versions or ApiVersions()
    server = feast_config.to_yaml(feast_config.server_config(fs, endpoints))
    client = feast_config.to_yaml(feast_config.client_config(fs, endpoints))
    job_config = compute.job_config(fs, endpoints)
    job = feast_config.to_yaml(job_config) if job_config else None
    offline_config = offline.server_config(fs, endpoints)
    offline_yaml = feast_config.to_yaml(offline_config) if offline_config else None
    config_hash = hashlib.sha256(server.encode()).hexdigest()[:16]
    objects: list[dict[str, Any]] = [
        _service_account(fs),
        *_config_maps(fs, endpoints, server, client, job, offline_yaml),
    ]
    objects += authz.rbac(fs)
    objects += tls.certificate(fs, config, versions)
    objects += compute.objects(fs, versions, config.compute_enabled)
    objects += incluster.data_claim(fs) + incluster.redis(fs, config)
    tls_ready = not tls.enabled(fs) or endpoints.serving_tls is not None
    if endpoints.online and endpoints.offline and tls_ready:
        objects += servers.feature_server(fs, endpoints, config_hash, config)
        offline_hash = offline.config_hash(server, offline_yaml)
        objects += servers.optional_servers(fs, endpoints, config_hash, config, offline_hash)
        objects += servers.autoscaling(fs, versions)
        if not compute.secret_exposure(fs, job_config):  # fail closed: no engine run that leaks a Secret
            objects += jobs.materialization(fs, endpoints, config_hash, versions, config)
        objects += jobs.apply_job(fs, endpoints, config_hash, repo, config)
    objects += gitref.resolver_objects(fs, repo, versions)  # needs no backend: resolves meanwhile
    objects += kubeflow.pod_default(fs, versions, access)
    objects += kubeflow.client_config_reader(fs, versions, config)
    rotation.annotate(objects, secrets or SecretHashes())
    in_mesh = not hardening.mesh_annotations(config)
    fences = policies.policies(fs, _components(objects), versions, config.istio, endpoints, in_mesh)
    return Rendered(server_yaml=server, client_yaml=client, config_hash=config_hash, objects=[*fences, *objects])
