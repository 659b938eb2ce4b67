"""spec.compute: where materialization (and, for Ray, offline retrieval) runs.

``local`` keeps Feast's default: everything inside the materialization pod. The others hand the
work to a distributed engine Feast 0.67 ships (``feast/infra/compute_engines/``); the operator
renders the engine's ``batch_engine`` block and provisions what the engine needs (identity, RBAC,
a staging location inside the store's own bucket or volume). Only typed knobs are exposed: free-form
engine configuration (Spark conf, Ray task options) could redirect identities or namespaces, and
every spec field is input from a namespace editor.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from .base import ApiModel
from .kubetypes import ImageRef, ResourceRequirements


class ComputeEngine(str, Enum):
    """Which engine materializes feature views."""

    LOCAL = "local"
    KUBERNETES = "kubernetes"
    RAY = "ray"
    SPARK_APPLICATION = "sparkApplication"


class KubernetesEngineSpec(ApiModel):
    """Feast's ``k8s`` engine: the materialization pod exports the rows to the staging location, then
    one indexed Job per feature view writes them to the online store, one pod per exported file."""

    max_parallelism: int = Field(default=10, ge=1, le=100)
    """Pods of one Job running at the same time."""
    mini_batch_size: int = Field(default=1000, ge=1, le=100000)
    """Rows per online-store write in each worker pod."""
    retry_limit: int = Field(default=2, ge=0, le=10)
    """Retries of a failed worker pod (the Job's backoffLimit)."""
    active_deadline_seconds: int = Field(default=86400, ge=60, le=604800)
    """Kill a worker Job that runs longer than this."""
    resources: ResourceRequirements | None = None
    """Resources of each worker pod."""
    image: ImageRef | None = None
    """Worker image (Feast with the k8s extra and Feast's worker main.py in its working directory).
    Default: the store's Feast image."""


#: Oldest Ray with token authentication (``RAY_AUTH_MODE=token``): the store's RayCluster always
#: turns it on (render/compute.py), so older Ray versions are refused.
RAY_TOKEN_AUTH_SINCE = (2, 52, 0)


def _token_auth_capable(version: str) -> str:
    if tuple(int(p) for p in version.split(".")) < RAY_TOKEN_AUTH_SINCE:
        since = ".".join(map(str, RAY_TOKEN_AUTH_SINCE))
        raise ValueError(
            f"Ray {version} has no token authentication (Ray >= {since}); the store's RayCluster always "
            f"runs with it: use rayVersion {since} or newer (and a matching image)"
        )
    return version


RayVersion = Annotated[str, StringConstraints(pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$"), AfterValidator(_token_auth_capable)]


class KubeRaySpec(ApiModel):
    """A RayCluster (KubeRay, ray.io/v1) owned by the store; materialization connects to its head."""

    workers: int = Field(default=2, ge=1, le=100)
    """Ray worker pods."""
    worker_resources: ResourceRequirements = Field(
        default_factory=lambda: ResourceRequirements(
            requests={"cpu": "1", "memory": "2Gi"}, limits={"cpu": "1", "memory": "2Gi"}
        )
    )
    """Resources of each worker pod (Ray schedules by the CPU limit)."""
    head_resources: ResourceRequirements = Field(
        default_factory=lambda: ResourceRequirements(
            requests={"cpu": "500m", "memory": "2Gi"}, limits={"cpu": "1", "memory": "2Gi"}
        )
    )
    """Resources of the head pod."""
    image: ImageRef | None = None
    """Image of the Ray pods (Ray and Feast of the same versions as the materialization image).
    Default: the store's Feast image."""
    ray_version: RayVersion = "2.60.0"
    """Ray version the image runs (KubeRay's spec.rayVersion); at least 2.52.0, the first with token
    authentication, which the store's RayCluster always enables (needs KubeRay >= 1.5.1)."""


_LABEL = r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?"
#: ``SERVICE.NAMESPACE.svc[.cluster.local]:PORT`` of a Ray cluster's GCS (6379 on the head), or the same
#: after ``ray://`` for its Ray Client server. Only a Service name: no IP (pod, node or metadata server),
#: no outside host, no userinfo or path; a bare name is refused too, because the pod's resolver walks
#: its search path on to the node's domains (``metadata`` -> metadata.google.internal on GKE).
#: The namespace must be the store's own (:func:`address_problem`, checked with the object's metadata).
RAY_ADDRESS_PATTERN = rf"^(ray://)?{_LABEL}\.{_LABEL}\.svc(\.cluster\.local)?:[1-9][0-9]{{0,4}}$"
RayAddress = Annotated[str, StringConstraints(pattern=RAY_ADDRESS_PATTERN, max_length=253)]


def address_problem(address: str, namespace: str) -> str | None:
    """Why ``address`` (already of :data:`RAY_ADDRESS_PATTERN`) may not be used by a store in
    ``namespace``, or None: it must name a Service of that namespace on a valid port."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    service_namespace = host.split(".")[1]
    if service_namespace != namespace:
        return (
            f"{address!r} names a Service in namespace {service_namespace!r}; a store may only use a Ray "
            f"cluster in its own namespace ({namespace}): SERVICE.{namespace}.svc.cluster.local:PORT"
        )
    if not 1 <= int(port) <= 65535:
        return f"{address!r}: port {port} is not between 1 and 65535"
    return None


class RayEngineSpec(ApiModel):
    """Feast's ``ray.engine`` plus the ``ray`` offline store (materialization and historical
    retrieval on Ray). Without address or kubeRay Ray runs inside the materialization pod."""

    address: RayAddress | None = None
    """An existing Ray cluster in the store's own namespace: SERVICE.NAMESPACE.svc.cluster.local:PORT
    of its GCS when the materialization runs on one of its nodes, or ray://SERVICE.NAMESPACE.svc:10001
    (Ray Client). Feast 0.67's Ray engine reads with Ray Data, which does not work
    through Ray Client (ray-project/ray#48682): the Materialization condition says so; use kubeRay. Its workers must
    reach the store's data."""
    kube_ray: KubeRaySpec | None = None
    """Run a RayCluster owned by the store instead (needs the KubeRay operator and offlineStore.gcs): each
    materialization run is a Ray job submitted to its head."""
    max_workers: int | None = Field(default=None, ge=1, le=1024)
    """Ray tasks used for reads, joins and transformations. Default: every CPU of the cluster."""
    write_concurrency: int | None = Field(default=None, ge=1, le=256)
    """Parallel writers to the online store (Redis takes many). Default: maxWorkers, else 1."""
    target_partition_size_mb: int = Field(default=64, ge=1, le=4096)
    """Target size of a Ray data partition."""

    @model_validator(mode="after")
    def _one_cluster(self) -> RayEngineSpec:
        if self.address and self.kube_ray:
            raise ValueError("set at most one of address or kubeRay")
        return self


SparkMemory = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{0,5}[kmgt]$")]


class SparkDriverSpec(ApiModel):
    """Size of the Spark driver pod."""

    cores: int = Field(default=1, ge=1, le=64)
    """CPU cores."""
    memory: SparkMemory = "1g"
    """JVM memory in Spark's notation, e.g. 512m, 2g."""


class SparkExecutorSpec(ApiModel):
    """Size and count of the Spark executor pods."""

    instances: int = Field(default=2, ge=1, le=1000)
    """Executor pods."""
    cores: int = Field(default=1, ge=1, le=64)
    """CPU cores per executor."""
    memory: SparkMemory = "2g"
    """JVM memory per executor in Spark's notation, e.g. 512m, 2g."""


class SparkApplicationEngineSpec(ApiModel):
    """Feast's ``spark_application`` engine: one SparkApplication (Kubeflow Spark Operator) per run."""

    image: ImageRef | None = None
    """Spark image with Feast and Feast's driver at /opt/feast/main.py (Feast's
    spark_application Dockerfile). Default: the store's Feast image."""
    spark_version: Annotated[str, StringConstraints(pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$")] = "4.0.1"
    """Spark version of the image."""
    driver: SparkDriverSpec = Field(default_factory=SparkDriverSpec)
    """Driver pod."""
    executor: SparkExecutorSpec = Field(default_factory=SparkExecutorSpec)
    """Executor pods."""
    concurrency: int = Field(default=1, ge=1, le=16)
    """Feature views materialized at the same time inside one application."""
    job_timeout_seconds: int = Field(default=3600, ge=60, le=604800)
    """Give up on an application that has not finished after this long."""


class ComputeSpec(ApiModel):
    """The engine materialization runs on, and its settings (only the chosen engine's block)."""

    engine: ComputeEngine = ComputeEngine.LOCAL
    """local (inside the materialization pod), kubernetes (parallel Jobs), ray, or sparkApplication."""
    kubernetes: KubernetesEngineSpec | None = None
    """Settings of engine kubernetes."""
    ray: RayEngineSpec | None = None
    """Settings of engine ray."""
    spark_application: SparkApplicationEngineSpec | None = None
    """Settings of engine sparkApplication."""

    @model_validator(mode="after")
    def _only_the_chosen_engine(self) -> ComputeSpec:
        blocks = {"kubernetes": self.kubernetes, "ray": self.ray, "sparkApplication": self.spark_application}
        other = [name for name, block in blocks.items() if block is not None and name != self.engine.value]
        if other:
            raise ValueError(f"engine is {self.engine.value}: remove {', '.join(other)} (settings of another engine)")
        # the chosen engine's settings are always present (its defaults when the block is omitted)
        if self.engine is ComputeEngine.KUBERNETES and self.kubernetes is None:
            self.kubernetes = KubernetesEngineSpec()
        elif self.engine is ComputeEngine.RAY and self.ray is None:
            self.ray = RayEngineSpec()
        elif self.engine is ComputeEngine.SPARK_APPLICATION and self.spark_application is None:
            self.spark_application = SparkApplicationEngineSpec()
        return self
