"""spec.compute rendered: Feast's ``batch_engine`` (and the offline store an engine needs) for the
materialization Job's feature_store.yaml, and the objects the engine needs in the store's namespace.

Config keys are Feast 0.67's (``feast/infra/compute_engines/*/config.py``, ``k8s_engine.py``,
``offline_stores/contrib/ray_offline_store/ray.py``). What each engine needs, from Feast's code:

* ``k8s``: the materialization pod exports the rows with the offline store's ``to_remote_storage``
  (the file store has none; the ``ray`` offline store writes parquet to its ``storage_path``), then
  creates a ConfigMap and an indexed Job per feature view; worker pods read the export and the
  registry themselves, so both must be on the bucket (a volume cannot be mounted into Feast's Jobs).
* ``ray.engine`` + ``ray`` offline store: in-process Ray, an existing cluster (``ray_address``) or a
  RayCluster the operator owns (KubeRay), where each run is a Ray job submitted through the head's
  Jobs API (render/rayjob.py): the driver runs on the head, a Ray node, with ``RAY_ADDRESS`` set by
  Ray, so the config names no address.
* ``spark_application``: a ConfigMap + SparkApplication per run; refuses file offline stores and
  file registries (gs:// included), so it reads through the ``spark`` offline store (SparkSource
  feature views) and the registry server.

RBAC: the engine's rights come from fixed ClusterRoles the Helm chart installs
(``compute.enabled``); the operator only binds them in the store's namespace (``bind`` on exactly
those names), so it never needs the rights itself and a store can never get more than they grant.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..api import FeatureStore
from ..api.compute import ComputeEngine
from ..api.spec import ResourceRequirements
from . import feast_config
from .hardening import container_security, empty_dir, needs_api_token, pod_security
from .inputs import ApiVersions, Endpoints, OfflineEndpoint
from .names import INSTANCE_LABEL, PART_OF, Names, labels, meta

#: ClusterRoles the chart installs (charts/featurestore-operator/templates/compute-rbac.yaml).
CLUSTER_ROLES = {
    ComputeEngine.KUBERNETES: "featurestore-compute-kubernetes",
    ComputeEngine.SPARK_APPLICATION: "featurestore-compute-spark-application",
}
#: Label on the ConfigMaps, Jobs and SparkApplications Feast creates for a store (not the owner
#: label: those objects are Feast's, never pruned by the operator).
COMPUTE_LABEL = "featurestore.kubeflow.org/compute-of"
#: The job feature_store.yaml lives next to the server's in the same ConfigMap.
JOB_CONFIG_KEY = "materialize.yaml"
#: Ray pods stay out of the mesh: Ray's nodes connect to each other's pod IPs on ports chosen at run
#: time (object manager, workers), which an Istio sidecar only carries with per-cluster mesh
#: configuration (headless Services, FQDN node addresses); and the materialization pod that calls the
#: head has no sidecar either (Redis has no mTLS identity to match). The store's NetworkPolicy fences
#: them instead (render/policies.py: the store's own pods only, in and out), and Ray's token
#: authentication (RAY_AUTH_MODE=token, Ray >= 2.52) guards every Ray API.
NO_SIDECAR = {"sidecar.istio.io/inject": "false"}
#: Optional CRDs an engine needs, with the operator that provides them.
ENGINE_CRDS = {
    "SparkApplication": "the Kubeflow Spark Operator (sparkoperator.k8s.io/v1beta2 SparkApplication)",
    "RayCluster": "the KubeRay operator (ray.io/v1 RayCluster)",
}


#: Engines whose Feast code copies the materialization pod's whole loaded config into a ConfigMap its
#: own pods read: ``k8s_engine._create_configuration_map`` and ``spark_application`` ``_create_configmap``
#: dump ``repo_config.model_dump()``, and Feast loads feature_store.yaml through ``os.path.expandvars``
#: (feast/repo_config.py), so every ``${VAR}`` of the file - the Redis AUTH string - lands there as its
#: value. Their worker mains read that ConfigMap with plain yaml.safe_load (no expansion), so the secret
#: cannot be handed over another way either.
COPIES_CONFIG = frozenset({ComputeEngine.KUBERNETES, ComputeEngine.SPARK_APPLICATION})
#: What os.path.expandvars expands: $NAME and ${NAME}.
ENV_REFERENCE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")


def secret_exposure(fs: FeatureStore, job_config: dict[str, Any] | None) -> str | None:
    """Why the engine may not run with ``job_config`` (the materialization Job's feature_store.yaml),
    or None: an engine of :data:`COPIES_CONFIG` would write the value of every environment reference
    in it (a Secret's, as ``${REDIS_PASSWORD}``) into a ConfigMap that namespace viewers can read.
    Render then runs no materialization at all (fail closed); the Materialization condition says why."""
    e = engine(fs)
    if e not in COPIES_CONFIG or not job_config:
        return None
    refs = sorted(set(ENV_REFERENCE.findall(json.dumps(job_config))))
    if not refs:
        return None
    what = ", ".join(f"${{{r}}}" for r in refs)
    return (
        f"spec.compute.engine {e.value}: Feast's {e.value} engine copies the materialization config, with "
        f"{what} expanded (the online store's AUTH string), into a ConfigMap its pods read, where anyone who "
        "may read ConfigMaps in this namespace would see it; the operator does not run it. Use engine ray or "
        "local, or an online store without AUTH"
    )


def resources(req: ResourceRequirements | None) -> dict[str, Any]:
    """core/v1 ResourceRequirements (as ``pods.resources``)."""
    return {k: {n: str(q) for n, q in v.items()} for k, v in (req.wire() if req else {}).items()}


def engine(fs: FeatureStore) -> ComputeEngine:
    return fs.spec.compute.engine


def staging_location(offline: OfflineEndpoint) -> str:
    """Where engines write intermediate parquet: inside the store's own bucket or volume."""
    return f"gs://{offline.bucket}/staging" if offline.bucket else f"{offline.data_root.rsplit('/', 1)[0]}/staging"


def compute_service_account(fs: FeatureStore) -> str:
    """The KSA of the materialization pod when an engine creates Kubernetes objects."""
    return f"{fs.metadata.name}-feast-compute"


def ray_cluster_name(fs: FeatureStore) -> str:
    return f"{fs.metadata.name}-ray"


def materialization_service_account(fs: FeatureStore, enabled: bool) -> str:
    """Service account the materialization CronJob runs as: the compute KSA when the engine creates
    objects (it holds the engine's RoleBinding; rendered only when ``enabled``), else the store's Feast KSA."""
    return compute_service_account(fs) if enabled and engine(fs) in CLUSTER_ROLES else Names(fs).service_account


def workload_identity_service_accounts(fs: FeatureStore, enabled: bool) -> list[str]:
    """Every KSA that needs the store's GSA through Workload Identity (the binding's members);
    the compute KSA only when it is rendered (``enabled``: compute_enabled)."""
    names = [Names(fs).service_account]
    if enabled and engine(fs) in CLUSTER_ROLES:
        names.append(compute_service_account(fs))
    return names


def ray_head_host(fs: FeatureStore) -> str:
    """The in-namespace DNS name of the store's RayCluster head Service (KubeRay's ``<name>-head-svc``)."""
    return Names(fs).svc_host(ray_cluster_name(fs) + "-head-svc")


def submits_ray_job(fs: FeatureStore) -> bool:
    """Whether each run is a Ray job on the store's RayCluster (render/rayjob.py)."""
    ray = fs.spec.compute.ray
    return engine(fs) is ComputeEngine.RAY and ray is not None and ray.kube_ray is not None


def _ray_address(fs: FeatureStore) -> str | None:
    ray = fs.spec.compute.ray
    if ray is None or ray.kube_ray:  # kubeRay: the driver is a Ray node (RAY_ADDRESS from Ray's job)
        return None
    return ray.address


def _compute_labels(fs: FeatureStore) -> dict[str, str]:
    """Labels of everything Feast's engines create, their pods included: the instance and part-of
    labels put the pods under the store's NetworkPolicy (render/policies.py ``store_pods``)."""
    return {COMPUTE_LABEL: fs.metadata.name, INSTANCE_LABEL: fs.metadata.name, "app.kubernetes.io/part-of": PART_OF}


def _spark_pod_labels(fs: FeatureStore) -> dict[str, str]:
    """The SparkApplication's labels on its driver and executor pods too (Spark's own pod label conf)."""
    return {
        f"spark.kubernetes.{role}.label.{k}": v
        for role in ("driver", "executor")
        for k, v in _compute_labels(fs).items()
    }


def _kubernetes_engine(fs: FeatureStore) -> dict[str, Any]:
    k = fs.spec.compute.kubernetes
    assert k is not None
    return {
        "type": "k8s",
        "namespace": fs.metadata.namespace,
        "image": k.image or fs.spec.images.feast,
        # workers only read the export and write Redis: the store's data identity, no RBAC
        "service_account_name": Names(fs).service_account,
        "resources": resources(k.resources),
        "max_parallelism": k.max_parallelism,
        "mini_batch_size": k.mini_batch_size,
        "retry_limit": k.retry_limit,
        "active_deadline_seconds": k.active_deadline_seconds,
        # wait for the Jobs: the run (and the registry's materialization record) ends when the
        # rows are in Redis, and Feast deletes its ConfigMap after each batch
        "synchronous": True,
        "include_security_context_capabilities": False,
        "labels": _compute_labels(fs),
        "annotations": NO_SIDECAR,
    }


def _ray_engine(fs: FeatureStore, staging: str) -> dict[str, Any]:
    r = fs.spec.compute.ray
    assert r is not None
    out: dict[str, Any] = {"type": "ray.engine", "staging_location": staging}
    address = _ray_address(fs)
    if address:
        out["ray_address"] = address
    if r.max_workers is not None:
        out["max_workers"] = r.max_workers
    if r.write_concurrency is not None:
        out["write_concurrency"] = r.write_concurrency
    out["target_partition_size_mb"] = r.target_partition_size_mb
    return out


def _spark_engine(fs: FeatureStore) -> dict[str, Any]:
    s = fs.spec.compute.spark_application
    assert s is not None
    return {
        "type": "spark_application",
        "namespace": fs.metadata.namespace,
        "image": s.image or fs.spec.images.feast,
        "service_account": compute_service_account(fs),
        "spark_version": s.spark_version,
        "driver_cores": s.driver.cores,
        "driver_memory": s.driver.memory,
        "executor_instances": s.executor.instances,
        "executor_cores": s.executor.cores,
        "executor_memory": s.executor.memory,
        "concurrency": s.concurrency,
        "job_timeout_seconds": s.job_timeout_seconds,
        "labels": _compute_labels(fs),
        "spark_conf": _spark_pod_labels(fs),
    }


def job_overrides(fs: FeatureStore, endpoints: Endpoints, registry_server: str | None) -> dict[str, Any]:
    """Top-level feature_store.yaml keys the materialization Job's config replaces (empty: local).

    ``registry_server`` is ``host:port`` of the store's registry server when it runs."""
    e = engine(fs)
    if e is ComputeEngine.LOCAL or endpoints.offline is None:
        return {}
    staging = staging_location(endpoints.offline)
    if e is ComputeEngine.RAY:
        offline: dict[str, Any] = {"type": "ray", "storage_path": staging}
        address = _ray_address(fs)
        if address:
            offline["ray_address"] = address
        return {"batch_engine": _ray_engine(fs, staging), "offline_store": offline}
    if e is ComputeEngine.KUBERNETES:
        # Ray in-process only for the export (to_remote_storage), into the staging location
        return {"batch_engine": _kubernetes_engine(fs), "offline_store": {"type": "ray", "storage_path": staging}}
    out: dict[str, Any] = {
        "batch_engine": _spark_engine(fs),
        "offline_store": {"type": "spark", "staging_location": staging},
    }
    if registry_server:
        out["registry"] = {"registry_type": "remote", "path": registry_server}
    return out


#: Feast minors whose KubernetesComputeEngine cannot be instantiated: it does not implement the
#: abstract ``update``/``teardown_infra`` of ComputeEngine, so every materialization fails with a
#: TypeError before creating anything (tests/controlplane/test_compute_rbac.py shows it).
K8S_ENGINE_BROKEN_IN = ("0.67.",)


def job_config(fs: FeatureStore, endpoints: Endpoints) -> dict[str, Any] | None:
    """feature_store.yaml of the materialization Job when spec.compute picks an engine (None: the
    server's config serves). Only that Job gets the engine: `feast apply` and the servers keep the
    local engine (Feast builds the engine on apply, and some engines refuse the file registry)."""
    names = Names(fs)
    registry_server = None
    if fs.spec.registry.server.enabled:
        registry_server = f"{names.svc_host(names.registry_server)}:{feast_config.REGISTRY_SERVER_PORT}"
    overrides = job_overrides(fs, endpoints, registry_server)
    return {**feast_config.server_config(fs, endpoints), **overrides} if overrides else None


def chart_rbac_missing(fs: FeatureStore, enabled: bool) -> str | None:
    """Why the engine cannot run without the RBAC the chart installs only with compute.enabled (its
    RoleBinding to a compute ClusterRole, or its RayCluster), or None."""
    e, ray = engine(fs), fs.spec.compute.ray
    if enabled or not (e in CLUSTER_ROLES or (e is ComputeEngine.RAY and ray is not None and ray.kube_ray)):
        return None
    what = "spec.compute.ray.kubeRay" if e is ComputeEngine.RAY else f"spec.compute.engine {e.value}"
    return (
        f"{what} needs the RBAC the operator's Helm chart installs with the value compute.enabled=true "
        "(FSO_COMPUTE_ENABLED), which this installation does not have; ask the cluster admin to set it, or use "
        "engine local or ray without kubeRay"
    )


def problem(
    fs: FeatureStore, endpoints: Endpoints, versions: ApiVersions, feast_version: str, enabled: bool
) -> str | None:
    """Why the chosen engine cannot run here (for the Materialization condition), or None.
    ``enabled``: the operator's compute_enabled (the chart installed the engines' RBAC).

    Core: ``if (msg := compute.problem(fs, endpoints, versions, config.feast_version, enabled)):
    Part(MATERIALIZATION, "False", "ComputeEngineUnavailable", msg, event="Warning")``."""
    e = engine(fs)
    if e is ComputeEngine.LOCAL:
        return None
    missing_rbac = chart_rbac_missing(fs, enabled)
    if missing_rbac:
        return missing_rbac
    exposure = secret_exposure(fs, job_config(fs, endpoints))
    if exposure:
        return exposure
    if e is ComputeEngine.KUBERNETES and feast_version.startswith(K8S_ENGINE_BROKEN_IN):
        return (
            f"spec.compute.engine kubernetes: Feast {feast_version}'s k8s engine cannot start (its "
            "KubernetesComputeEngine lacks the abstract update/teardown_infra methods, a Feast bug); use engine "
            "ray or local, or a Feast image where it is fixed"
        )
    ray = fs.spec.compute.ray
    if e is ComputeEngine.RAY and ray is not None and (ray.address or "").startswith("ray://"):
        return (
            "spec.compute.ray.address: Feast 0.67's Ray engine reads with Ray Data, which does not run through Ray "
            "Client (ray://, ray-project/ray#48682), and the materialization pod is not a Ray node; use kubeRay "
            "(each run is a Ray job on the store's RayCluster), a GCS address from a Ray node, or in-pod Ray "
            "(no address)"
        )
    kube_ray = _kube_ray_problem(fs, endpoints)
    if kube_ray:
        return kube_ray
    missing = [kind for kind in _needed_crds(fs) if kind not in versions.optional_kinds]
    if missing:
        return (
            f"spec.compute.engine {e.value} needs "
            + " and ".join(ENGINE_CRDS[k] for k in missing)
            + ", which is not installed; install it (picked up automatically) or choose another engine"
        )
    offline = endpoints.offline
    if e in (ComputeEngine.KUBERNETES, ComputeEngine.SPARK_APPLICATION) and offline is not None and not offline.bucket:
        return (
            f"spec.compute.engine {e.value} runs workers in their own pods, which cannot mount the store's "
            "volume: it needs offlineStore.gcs (provider gcp); use engine ray or local with inCluster storage"
        )
    online = endpoints.online
    if e is ComputeEngine.KUBERNETES and online is not None and online.tls and online.ca:
        return (
            "spec.compute.engine kubernetes: Feast 0.67's worker Jobs mount no volumes, so they cannot verify "
            "the online store's TLS certificate (its CA file); use engine ray, or an online store without TLS"
        )
    if e is ComputeEngine.SPARK_APPLICATION and not fs.spec.registry.server.enabled:
        return (
            "spec.compute.engine sparkApplication reads the registry through the registry server (Feast 0.67 "
            "refuses file registries for it, gs:// included): set spec.registry.server.enabled: true"
        )
    return None


def _kube_ray_problem(fs: FeatureStore, endpoints: Endpoints) -> str | None:
    """Why the store's RayCluster cannot run the materialization job, or None: the driver and the
    workers run in the Ray pods, which do not mount the store's volume (the online store's CA
    travels with each job: render/rayjob.py)."""
    if not submits_ray_job(fs):
        return None
    if endpoints.offline is not None and not endpoints.offline.bucket:
        return (
            "spec.compute.ray.kubeRay runs each materialization on the RayCluster's pods, which cannot mount the "
            "store's volume: it needs offlineStore.gcs (provider gcp); use engine local, or ray without kubeRay"
        )
    return None


def _needed_crds(fs: FeatureStore) -> list[str]:
    e = engine(fs)
    if e is ComputeEngine.SPARK_APPLICATION:
        return ["SparkApplication"]
    if e is ComputeEngine.RAY and fs.spec.compute.ray and fs.spec.compute.ray.kube_ray:
        return ["RayCluster"]
    return []


def objects(fs: FeatureStore, versions: ApiVersions, enabled: bool) -> list[dict[str, Any]]:
    """The compute KSA and its RoleBinding (engines that create objects), or the RayCluster; none
    without the chart's compute RBAC (``enabled``: the API server would refuse them)."""
    e = engine(fs)
    if not enabled:
        return []
    if e in CLUSTER_ROLES:
        return _identity(fs, CLUSTER_ROLES[e])
    if e is ComputeEngine.RAY and fs.spec.compute.ray and fs.spec.compute.ray.kube_ray:
        return _ray_cluster(fs) if "RayCluster" in versions.optional_kinds else []
    return []


def _identity(fs: FeatureStore, cluster_role: str) -> list[dict[str, Any]]:
    name = compute_service_account(fs)
    extra: dict[str, Any] = {}
    if fs.spec.gcp.service_account:
        extra["annotations"] = {"iam.gke.io/gcp-service-account": fs.spec.gcp.service_account}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(fs, name, "compute", **extra)},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta(fs, name, "compute"),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": fs.metadata.namespace}],
        },
    ]


def _ray_group(fs: FeatureStore, image: str, req: ResourceRequirements, start: dict[str, str]) -> dict[str, Any]:
    """A Ray pod template hardened like the servers: non-root, no privilege escalation, no
    capabilities, RuntimeDefault seccomp, read-only root with bounded scratch: /tmp (Ray's session
    directory) and /dev/shm (the object store; memory-backed, bounded by the pod's memory limit)."""
    res = resources(req)
    shm = res.get("limits", {}).get("memory") or res.get("requests", {}).get("memory") or "1Gi"
    container = {
        "name": "ray",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "env": [{"name": "HOME", "value": "/tmp"}, {"name": "RAY_USAGE_STATS_ENABLED", "value": "0"}],
        "resources": res,
        "securityContext": container_security(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, {"name": "shm", "mountPath": "/dev/shm"}],
    }
    return {
        "rayStartParams": start,
        "template": {
            "metadata": {"labels": labels(fs, "ray"), "annotations": NO_SIDECAR},
            "spec": {
                "serviceAccountName": Names(fs).service_account,
                # Workload Identity (reading the bucket) is the one reason to mount the token
                "automountServiceAccountToken": needs_api_token(bool(fs.spec.gcp.service_account)),
                "securityContext": pod_security(),
                "containers": [container],
                "volumes": [empty_dir("tmp"), empty_dir("shm", shm, medium="Memory")],
            },
        },
    }


def _ray_cluster(fs: FeatureStore) -> list[dict[str, Any]]:
    r = fs.spec.compute.ray
    assert r is not None and r.kube_ray is not None
    k = r.kube_ray
    image = k.image or fs.spec.images.feast
    assert image is not None
    head = _ray_group(fs, image, k.head_resources, {"dashboard-host": "0.0.0.0", "num-cpus": "0"})
    worker = _ray_group(fs, image, k.worker_resources, {})
    worker.update(groupName="workers", replicas=k.workers, minReplicas=k.workers, maxReplicas=k.workers)
    return [
        {
            "apiVersion": "ray.io/v1",
            "kind": "RayCluster",
            "metadata": meta(fs, ray_cluster_name(fs), "ray"),
            "spec": {
                "rayVersion": k.ray_version,
                # Ray's token authentication on the dashboard/Jobs API, GCS and client server
                # (api/compute.py: rayVersion >= RAY_TOKEN_AUTH_SINCE; KubeRay >= 1.5.1
                # generates the token Secret and sets RAY_AUTH_MODE/RAY_AUTH_TOKEN on every Ray container)
                "authOptions": {"mode": "token"},
                "headGroupSpec": head,
                "workerGroupSpecs": [worker],
            },
        }
    ]
