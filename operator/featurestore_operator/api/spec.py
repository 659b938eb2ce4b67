"""The FeatureStore spec: what a user asks for.

Every field carries its description as an attribute docstring; the CRD's OpenAPI schema (and so
``kubectl explain``) is generated from this module. Defaults are explicit here and in the CRD.
Choices that depend on the operator's configuration (provider, GCP project/region/network and
which online/offline store a provider implies) are left unset in the manifest and filled in by
:meth:`FeatureStoreSpec.resolve`, which every consumer calls first.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, StringConstraints, field_validator, model_validator

from .base import ApiModel
from .compute import ComputeEngine, ComputeSpec
from .kubetypes import ImageRef, Quantity, ResourceRequirements
from .pods import PodSettings

# --- reusable constrained types -------------------------------------------------------------

DnsLabel = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63),
]
DnsSubdomain = Annotated[
    str,
    StringConstraints(
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
        max_length=253,
    ),
]
#: A VPC network: projects/PROJECT/global/networks/NAME.
GcpNetwork = Annotated[
    str,
    StringConstraints(pattern=r"^projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/global/networks/[a-z]([-a-z0-9]*[a-z0-9])?$"),
]


class Provider(str, Enum):
    """Where a FeatureStore's backends live."""

    GCP = "gcp"
    LOCAL = "local"


class DeletionPolicy(str, Enum):
    """What happens to a backend resource when its FeatureStore is deleted."""

    DELETE = "Delete"
    RETAIN = "Retain"


class LocalObjectRef(ApiModel):
    """A reference to an object in the FeatureStore's own namespace."""

    name: DnsSubdomain
    """Name of the object (must be in the FeatureStore's namespace)."""


# --- GCP -------------------------------------------------------------------------------------

GcpProjectId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")]
GcpRegion = Annotated[str, StringConstraints(pattern=r"^[a-z]+-[a-z]+[0-9]+$")]
#: A Google service account's email: its account id has 6-30 characters (GCP's limit).
GSA_EMAIL_PATTERN = r"^[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z][a-z0-9-]{4,28}[a-z0-9]\.iam\.gserviceaccount\.com$"
GsaEmail = Annotated[str, StringConstraints(pattern=GSA_EMAIL_PATTERN)]


class GcpSpec(ApiModel):
    """GCP placement and identity. Unset fields take the operator's defaults."""

    project: GcpProjectId | None = None
    """GCP project id that holds the Memorystore instance and bucket. Default: the operator's gcpProject."""
    region: GcpRegion | None = None
    """GCP region of the Memorystore instance, e.g. us-central1. Default: the operator's gcpRegion."""
    service_account: GsaEmail | None = None
    """Google service account (GSA) the Feast pods act as through Workload Identity, e.g.
    feast@my-project.iam.gserviceaccount.com. It gets objectAdmin on the bucket."""


# --- online store ----------------------------------------------------------------------------


class MemorystoreTier(str, Enum):
    BASIC = "BASIC"
    STANDARD_HA = "STANDARD_HA"


class ConnectMode(str, Enum):
    DIRECT_PEERING = "DIRECT_PEERING"
    PRIVATE_SERVICE_ACCESS = "PRIVATE_SERVICE_ACCESS"


class MemorystoreSpec(ApiModel):
    """A GCP Memorystore for Redis instance created and owned by the operator."""

    tier: MemorystoreTier = MemorystoreTier.BASIC
    """BASIC (single node) or STANDARD_HA (replicated)."""
    memory_size_gb: int = Field(default=1, ge=1, le=300)
    """Instance memory in GiB (1-300). Can be changed in place."""
    redis_version: Literal["REDIS_6_X", "REDIS_7_0", "REDIS_7_2"] = "REDIS_7_2"
    """Redis engine version."""
    network: GcpNetwork | None = None
    """Authorized VPC network, projects/PROJECT/global/networks/NAME. Default: the operator's
    gcpNetwork."""
    connect_mode: ConnectMode = ConnectMode.PRIVATE_SERVICE_ACCESS
    """How the instance attaches to the VPC."""
    auth_enabled: bool = True
    """Require the Redis AUTH string. The operator copies it into a Secret."""
    transit_encryption: bool = True
    """Serve TLS (SERVER_AUTHENTICATION). The CA certificates are copied into a Secret."""
    redis_configs: dict[str, str] | None = None
    """Redis configuration parameters, e.g. {maxmemory-policy: allkeys-lru}. Can be changed in place."""
    instance_id: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$")
    """Instance id to use instead of the generated one (1-40 chars, lowercase letters, digits,
    hyphens, starting with a letter)."""
    deletion_policy: DeletionPolicy = DeletionPolicy.DELETE
    """Delete (default: the online store is a cache that materialization rebuilds) or Retain."""
    existing_instance: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$")
    """Use this existing instance (id in spec.gcp.project/region, e.g. managed by Terraform or Config
    Connector) instead of creating one: read and verified, never modified or deleted. The other
    fields are then not used; authEnabled and transitEncryption are read from the instance."""

    @model_validator(mode="after")
    def _existing(self) -> MemorystoreSpec:
        if self.existing_instance and self.instance_id:
            raise ValueError("set either existingInstance (bring your own) or instanceId (created by the operator)")
        return self


class InClusterStorage(ApiModel):
    """A PersistentVolumeClaim for an in-cluster store."""

    size: Quantity = "1Gi"
    """Requested volume size."""
    storage_class_name: DnsSubdomain | None = None
    """StorageClass of the claim. Default: the cluster's default StorageClass."""


class InClusterRedisSpec(ApiModel):
    """A single Redis StatefulSet in the FeatureStore's namespace, with a generated password."""

    storage: InClusterStorage | None = None
    """Persist Redis data (AOF) on a volume claim. Default: none - the online store is a cache that
    materialization rebuilds, and an emptyDir leaves nothing behind when the store is deleted."""
    resources: ResourceRequirements = Field(
        default_factory=lambda: ResourceRequirements(
            requests={"cpu": "100m", "memory": "128Mi"}, limits={"memory": "512Mi"}
        )
    )
    """Resources of the Redis container."""
    pod: PodSettings | None = None
    """Pod settings of the Redis StatefulSet (logLevel does not apply)."""


class ExternalRedisSpec(ApiModel):
    """An existing Redis the operator does not manage, described by a Secret in the same namespace."""

    secret_ref: LocalObjectRef
    """Secret with keys host, port and optionally password and ca.crt (PEM) for TLS."""
    tls: bool = False
    """Connect with TLS; verifies the server against the Secret's ca.crt when present."""


class OnlineStoreSpec(ApiModel):
    """Exactly one online store kind. Omitted: Memorystore on provider gcp, in-cluster Redis on local."""

    model_config = {"json_schema_extra": {"minProperties": 1, "maxProperties": 1}}

    memorystore: MemorystoreSpec | None = None
    """A Memorystore for Redis instance created by the operator."""
    in_cluster: InClusterRedisSpec | None = None
    """A Redis StatefulSet in the FeatureStore's namespace."""
    external: ExternalRedisSpec | None = None
    """An existing Redis described by a Secret."""

    @model_validator(mode="after")
    def _exactly_one(self) -> OnlineStoreSpec:
        chosen = [n for n in ("memorystore", "in_cluster", "external") if getattr(self, n) is not None]
        if len(chosen) != 1:
            raise ValueError(
                "set exactly one of memorystore, inCluster or external"
                + (f" (got {', '.join(chosen)})" if chosen else "")
            )
        return self


# --- offline store ---------------------------------------------------------------------------


class LifecycleSpec(ApiModel):
    """Bucket object lifecycle."""

    delete_after_days: int | None = Field(default=None, ge=1, le=36500)
    """Delete objects older than this many days (the registry object is rewritten on every apply)."""


class GcsSpec(ApiModel):
    """A GCS bucket holding offline data and the Feast registry."""

    bucket: str | None = Field(
        default=None,
        min_length=3,
        max_length=63,
        pattern=r"^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$",
    )
    """Bucket name (3-63 chars: lowercase letters, digits, - and _). Default: a deterministic,
    globally unique name derived from project, namespace and name."""
    location: str = Field(default="US", pattern=r"^[A-Za-z0-9-]{2,32}$")
    """Bucket location (multi-region such as US or a region such as us-central1)."""
    lifecycle: LifecycleSpec | None = None
    """Optional lifecycle rule."""
    deletion_policy: DeletionPolicy = DeletionPolicy.RETAIN
    """Retain (default: the bucket holds data) or Delete."""
    force: bool = False
    """With deletionPolicy Delete: also delete a bucket that still holds objects."""
    existing_bucket: str | None = Field(
        default=None, min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9_.-]{1,61}[a-z0-9]$"
    )
    """Use this existing bucket (in spec.gcp.project, e.g. managed by Terraform or Config Connector)
    instead of creating one: read and verified, never modified or deleted (no IAM change either:
    grant the Feast service account access yourself)."""

    @model_validator(mode="after")
    def _existing(self) -> GcsSpec:
        if self.existing_bucket and (
            self.bucket or self.lifecycle or self.force or self.deletion_policy is DeletionPolicy.DELETE
        ):
            raise ValueError(
                "existingBucket is used as it is: do not set bucket, lifecycle, force or deletionPolicy Delete with it"
            )
        return self


class InClusterOfflineSpec(ApiModel):
    """A PersistentVolumeClaim holding the file offline store and the registry (local provider)."""

    storage: InClusterStorage = Field(default_factory=InClusterStorage)
    """The shared volume. On a single-node kind cluster ReadWriteOnce is enough for every pod."""


class OfflineStoreSpec(ApiModel):
    """Exactly one offline store kind. Omitted: GCS on provider gcp, in-cluster volume on local."""

    model_config = {"json_schema_extra": {"minProperties": 1, "maxProperties": 1}}

    gcs: GcsSpec | None = None
    """A GCS bucket created by the operator."""
    in_cluster: InClusterOfflineSpec | None = None
    """A PersistentVolumeClaim in the FeatureStore's namespace."""

    @model_validator(mode="after")
    def _exactly_one(self) -> OfflineStoreSpec:
        chosen = [n for n in ("gcs", "in_cluster") if getattr(self, n) is not None]
        if len(chosen) != 1:
            raise ValueError("set exactly one of gcs or inCluster")
        return self


# --- Feast workloads -------------------------------------------------------------------------


class AutoscalingSpec(ApiModel):
    """A HorizontalPodAutoscaler on a server Deployment (replaces its fixed replica count)."""

    min_replicas: int = Field(default=1, ge=1, le=100)
    """Lower bound of replicas."""
    max_replicas: int = Field(default=5, ge=1, le=100)
    """Upper bound of replicas."""
    target_cpu_utilization_percentage: int = Field(default=70, ge=1, le=100)
    """Average CPU utilization the autoscaler aims at."""

    @model_validator(mode="after")
    def _bounds(self) -> AutoscalingSpec:
        if self.max_replicas < self.min_replicas:
            raise ValueError("maxReplicas must be >= minReplicas")
        return self


class RegistryServerSpec(ApiModel):
    """`feast serve_registry` (gRPC 6570) as its own Deployment."""

    enabled: bool | None = None
    """Run a registry server; notebook clients then use a remote registry. Default: on for provider
    local (its file registry lives on a volume notebooks cannot mount), off on gcp (clients read
    gs:// directly)."""
    replicas: int = Field(default=1, ge=1, le=20)
    """Replicas of the registry server (ignored when autoscaling is set)."""
    autoscaling: AutoscalingSpec | None = None
    """Autoscale the registry server between minReplicas and maxReplicas instead."""
    resources: ResourceRequirements | None = None
    """Resources of the registry server container."""
    pod: PodSettings | None = None
    """Pod settings of the registry server."""


class RegistrySpec(ApiModel):
    """The Feast registry (registry.pb on the bucket or the in-cluster volume)."""

    cache_ttl_seconds: int = Field(default=60, ge=0, le=86400)
    """How long servers cache the registry before re-reading it (0: never refresh)."""
    server: RegistryServerSpec = Field(default_factory=RegistryServerSpec)
    """Optional registry server."""


class PodDisruptionBudgetSpec(ApiModel):
    """A PodDisruptionBudget on the feature server."""

    enabled: bool = False
    """Create a PDB."""
    max_unavailable: int = Field(default=1, ge=0, le=100)
    """Pods that may be voluntarily disrupted at once."""


class MetricsSpec(ApiModel):
    """Prometheus metrics of `feast serve --metrics` (Feast serves them on port 8000)."""

    enabled: bool = False
    """Expose metrics on port 8000 of the feature server (Service port `metrics`)."""


class FeatureServerSpec(ApiModel):
    """`feast serve` Deployment and Service (port 6566)."""

    replicas: int = Field(default=1, ge=0, le=100)
    """Fixed replica count (ignored when autoscaling is set)."""
    autoscaling: AutoscalingSpec | None = None
    """Autoscale between minReplicas and maxReplicas instead."""
    resources: ResourceRequirements = Field(
        default_factory=lambda: ResourceRequirements(
            requests={"cpu": "500m", "memory": "512Mi"}, limits={"cpu": "1", "memory": "2Gi"}
        )
    )
    """Resources of the feature server container. The default request fits a store (with Istio
    sidecars) into Kubeflow's sample profile quota (docs/notebooks.md#what-a-store-costs); Feast's
    server with one worker holds about 190 MiB after import."""
    workers: int | None = Field(default=None, ge=1, le=64)
    """Gunicorn workers. Default: the whole CPUs of the CPU limit (at least 1)."""
    keep_alive_timeout: int = Field(default=30, ge=1, le=3600)
    """Seconds to keep idle HTTP connections open."""
    max_requests: int | None = Field(default=None, ge=0, le=1000000)
    """Requests after which a worker is recycled (0: never). Default: 0 with a single worker -
    recycling the only worker stalls every request for 1-4 s - else Feast's 1000 (one worker
    restarts while the others serve)."""
    pod_disruption_budget: PodDisruptionBudgetSpec = Field(default_factory=PodDisruptionBudgetSpec)
    """PodDisruptionBudget of the feature server."""
    metrics: MetricsSpec = Field(default_factory=MetricsSpec)
    """Prometheus metrics."""
    pod: PodSettings | None = None
    """Pod settings of the feature server."""


class OptionalServerSpec(ApiModel):
    """An optional Feast server Deployment."""

    enabled: bool = False
    """Run it."""
    replicas: int = Field(default=1, ge=1, le=20)
    """Replicas (ignored when autoscaling is set)."""
    autoscaling: AutoscalingSpec | None = None
    """Autoscale between minReplicas and maxReplicas instead."""
    resources: ResourceRequirements | None = None
    """Resources of its container."""
    pod: PodSettings | None = None
    """Pod settings."""


_CRON_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
#: Kubernetes' cron grammar (robfig/cron's standard parser): per field its range and names
_CRON_FIELDS = [
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day-of-month", 1, 31, {}),
    (
        "month",
        1,
        12,
        {
            m: i
            for i, m in enumerate(
                ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], 1
            )
        },
    ),
    ("day-of-week", 0, 7, {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}),
]
_CRON_ELEMENT = re.compile(r"^(?:(\*|\?)|([0-9A-Za-z]+)(?:-([0-9A-Za-z]+))?)(?:/([0-9]+))?$")


def _cron_field_problem(text: str, name: str, low: int, high: int, names: dict[str, int]) -> str | None:
    """What Kubernetes would reject in one field (None: fine). No L, W or # (Quartz only)."""
    for element in text.split(","):
        m = _CRON_ELEMENT.match(element)
        if not m:
            return f"{name} {element!r} is not '*', a value, a range a-b or a list, with an optional /step"
        star, first, last, step = m.groups()
        values = [] if star else [v for v in (first, last) if v is not None]
        for v in values:
            number = names.get(v.upper()) if not v.isdigit() else int(v)
            if number is None or not low <= number <= high:
                return f"{name} {v!r} is out of range {low}-{high}" + (f" (or {', '.join(names)})" if names else "")
        if step is not None and int(step) == 0:
            return f"{name} step /0 is not allowed"
    return None


class MaterializationSpec(ApiModel):
    """A CronJob running `feast materialize-incremental` on a schedule."""

    enabled: bool = True
    """Create the CronJob."""
    schedule: str = Field(default="0 * * * *", max_length=100)
    """Cron schedule (5 fields, or @hourly/@daily/...), evaluated in timeZone."""
    suspend: bool = False
    """Suspend scheduled runs (running Jobs are not stopped)."""
    time_zone: str | None = Field(default=None, pattern=r"^[A-Za-z][A-Za-z0-9_+/-]{0,63}$")
    """IANA time zone of the schedule, e.g. Europe/Berlin (CronJob timeZone, Kubernetes >= 1.25).
    Default: the controller's time zone (UTC on most clusters)."""
    feature_views: list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]] = Field(
        default_factory=list, max_length=100
    )
    """Only materialize these feature views (default: all)."""
    parallelism: int = Field(default=1, ge=1, le=64)
    """Parallel materialization pods per run. Each feature view's interval of the run is cut into N
    time windows; pod i materializes window i of every view. Kubernetes >= 1.25: one Indexed Job of
    that many pods; older clusters (no Indexed Jobs): that many containers in the run's pod. Bounded
    by the admin policy's maxComputePods."""
    write_batch_size: int = Field(default=25_000, ge=100, le=1_000_000)
    """Rows per online store write (Feast's materialization.online_write_batch_size). A batch is
    held as protobuf objects while it is written (several KB a row): a pod writing 150,000 rows
    peaked at 456 MiB with 25,000, 347 MiB with 10,000 (+16% CPU) and 927 MiB as one batch, Feast's
    own default (a whole time window at once)."""
    resources: ResourceRequirements | None = None
    """Resources of each materialization container (one per parallel share)."""
    active_deadline_seconds: int = Field(default=3600, ge=60, le=604800)
    """Kill a run that takes longer than this."""
    starting_deadline_seconds: int = Field(default=300, ge=10, le=86400)
    """Skip a run that could not start within this many seconds of its schedule."""
    backoff_limit: int = Field(default=2, ge=0, le=20)
    """Retries of a failed run."""
    successful_jobs_history_limit: int = Field(default=3, ge=0, le=100)
    """Finished Jobs to keep."""
    failed_jobs_history_limit: int = Field(default=3, ge=0, le=100)
    """Failed Jobs to keep."""
    pod: PodSettings | None = None
    """Pod settings of the materialization Jobs."""

    @field_validator("schedule")
    @classmethod
    def _cron(cls, v: str) -> str:
        v = v.strip()
        if v.startswith(("TZ=", "CRON_TZ=")):
            raise ValueError("put the time zone in timeZone, not in the schedule")
        if v in _CRON_MACROS:
            return v
        fields = v.split()
        usage = "use 5 fields 'minute hour day-of-month month day-of-week' (e.g. '0 * * * *') or one of " + ", ".join(
            sorted(_CRON_MACROS)
        )
        if len(fields) != 5:
            raise ValueError(f"{v!r} is not a valid cron schedule: {usage}")
        for text, (name, low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
            problem = _cron_field_problem(text, name, low, high, names)
            if problem:
                raise ValueError(f"{v!r} is not a valid Kubernetes cron schedule: {problem}; {usage}")
        return v

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{v!r} is not an IANA time zone (e.g. Europe/Berlin, America/New_York, UTC)") from None
        return v


GitUrl = Annotated[
    str,
    StringConstraints(pattern=r"^(https://|ssh://|git@)[A-Za-z0-9._~:/?#@!$&'()*+,;=%-]+$", max_length=2048),
]


class GitRepoSpec(ApiModel):
    """A git repository holding the Feast feature repo."""

    url: GitUrl
    """Clone URL (https://, ssh:// or git@host:path)."""
    ref: str = Field(default="main", pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,254}$")
    """Branch, tag or commit. Pin a commit or tag: a new ref (a new revision) triggers a new apply."""
    path: str = Field(default=".", pattern=r"^(\.|[A-Za-z0-9_][A-Za-z0-9_./-]{0,254})$")
    """Directory of the feature repo inside the repository."""
    secret_ref: LocalObjectRef | None = None
    """Secret with credentials: key `token` (https), or `ssh-privatekey` and `known_hosts` (ssh: the
    server's host key is checked against `known_hosts`, never accepted blindly)."""
    poll_minutes: int = Field(default=5, ge=1, le=1440)
    """How often a branch (or a followed tag) is resolved to its commit, in minutes; each store gets
    its own minute offset (jitter). A new commit is applied by a new `feast apply` Job. Not used when
    `ref` is a full 40-hex commit (pinned)."""
    follow_tags: bool = False
    """Re-resolve a tag and apply it again when it is moved. Default: a tag is resolved once and its
    commit stays applied until the spec changes."""

    @field_validator("path")
    @classmethod
    def _no_parent(cls, v: str) -> str:
        if ".." in v.split("/"):
            raise ValueError("path must stay inside the repository (no '..')")
        return v


class FeatureRepoSpec(ApiModel):
    """The Feast feature repo to `feast apply`: from git or from a ConfigMap of .py files."""

    model_config = {"json_schema_extra": {"oneOf": [{"required": ["git"]}, {"required": ["configMap"]}]}}

    git: GitRepoSpec | None = None
    """Fetch from git."""
    config_map: LocalObjectRef | None = None
    """A ConfigMap whose keys are the repo's files (e.g. features.py)."""
    pod: PodSettings | None = None
    """Pod settings of the feast apply Jobs."""

    @model_validator(mode="after")
    def _one(self) -> FeatureRepoSpec:
        if (self.git is None) == (self.config_map is None):
            raise ValueError("set exactly one of git or configMap")
        return self


class KubeflowSpec(ApiModel):
    """Kubeflow integration in the FeatureStore's namespace."""

    pod_default: bool = True
    """Create a PodDefault so notebooks can tick "Allow access to Feast"."""
    allowed_namespaces: list[DnsLabel] = Field(default_factory=list, max_length=50)
    """Other namespaces (e.g. a KServe namespace) allowed to call the feature server."""
    default_store: bool | None = None
    """Whether notebooks get this store as their default (``FEAST_FS_YAML_FILE_PATH``, so a bare
    ``FeatureStore()`` opens it). Every store's PodDefault always sets its own
    ``FEAST_<NAME>_FS_YAML_FILE_PATH``. Unset: the namespace's only store is its default, with several
    none is. true: this store is (when several say true, the oldest). false: never."""


class ImagesSpec(ApiModel):
    """Container image overrides. Default: the operator's configured images."""

    feast: ImageRef | None = None
    """Feast runtime image (feast serve, apply, materialize)."""
    redis: ImageRef | None = None
    """Redis image for the in-cluster online store."""
    git: ImageRef | None = None
    """Image with git for fetching the feature repo."""


# --- data-plane security ------------------------------------------------------------------


class AuthzType(str, Enum):
    """How Feast servers authenticate callers."""

    NONE = "none"
    KUBERNETES = "kubernetes"
    OIDC = "oidc"


class OidcSpec(ApiModel):
    """An OpenID Connect provider whose tokens Feast servers accept."""

    issuer: str = Field(pattern=r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~%/-]*)?$", max_length=512)
    """Issuer URL (https); Feast reads ISSUER/.well-known/openid-configuration."""
    client_id: str = Field(pattern=r"^[A-Za-z0-9._:@/-]{1,255}$")
    """OIDC client id whose roles (claim resource_access.CLIENT_ID.roles) Feast checks."""
    audience: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._:@/-]{1,255}$")
    """The ``aud`` every accepted token must carry (default: clientId). Set it to what your provider
    puts in access tokens (Keycloak: an audience mapper). The servers also require ``iss`` to equal
    ``issuer`` exactly, so a token another provider or realm signed is refused."""
    secret_ref: LocalObjectRef | None = None
    """Optional Secret with key client_secret: clients of this namespace then fetch tokens with the
    client-credentials flow. Without it clients present their own token in FEAST_OIDC_TOKEN."""

    @property
    def required_audience(self) -> str:
        """The ``aud`` the servers verify: ``audience``, else the client id."""
        return self.audience or self.client_id


class AuthzSpec(ApiModel):
    """Authorization of calls to the Feast servers (feature, registry, offline server)."""

    type: AuthzType = AuthzType.NONE
    """none (default: any caller the network policies admit may read and write), kubernetes
    (callers present a ServiceAccount token, checked by the API server with a TokenReview) or oidc."""
    oidc: OidcSpec | None = None
    """The OIDC provider (type oidc only)."""
    reader_service_accounts: list[DnsLabel] = Field(default_factory=lambda: ["default-editor"], max_length=50)
    """ServiceAccounts of this namespace that may read features (default: Kubeflow's notebook
    identity default-editor); default-editor of each kubeflow.allowedNamespaces entry reads too.
    The store's own ServiceAccount always writes."""

    @model_validator(mode="after")
    def _oidc_needs_provider(self) -> AuthzSpec:
        if (self.type is AuthzType.OIDC) != (self.oidc is not None):
            raise ValueError("set oidc exactly when type is oidc")
        return self


class TlsSpec(ApiModel):
    """TLS on the Feast servers. The server certificate comes from a per-store CA the operator keeps in
    a Secret (or from cert-manager when the operator is configured with an issuer)."""

    enabled: bool = False
    """Serve HTTPS / gRPC over TLS only; clients verify against the CA in the client config."""


FeastProject = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_]{1,63}$")]


class FeatureStoreSpec(ApiModel):
    """Desired state of a Feast feature store."""

    project: FeastProject
    """Feast project name (letters, digits, underscores)."""
    provider: Provider | None = None
    """gcp (Memorystore + GCS) or local (in-cluster Redis and volume). Default: the operator's defaultProvider."""
    gcp: GcpSpec = Field(default_factory=GcpSpec)
    """GCP placement and identity."""
    online_store: OnlineStoreSpec | None = None
    """Online store. Default: memorystore on gcp, inCluster on local."""
    offline_store: OfflineStoreSpec | None = None
    """Offline store and registry location. Default: gcs on gcp, inCluster on local."""
    registry: RegistrySpec = Field(default_factory=RegistrySpec)
    """Registry settings."""
    feature_server: FeatureServerSpec = Field(default_factory=FeatureServerSpec)
    """Feature server Deployment."""
    offline_server: OptionalServerSpec = Field(default_factory=OptionalServerSpec)
    """`feast serve_offline` (Arrow Flight 8815), for remote offline access from notebooks."""
    ui: OptionalServerSpec = Field(default_factory=OptionalServerSpec)
    """`feast ui` (8888)."""
    materialization: MaterializationSpec = Field(default_factory=MaterializationSpec)
    """Scheduled materialization."""
    compute: ComputeSpec = Field(default_factory=ComputeSpec)
    """Engine that runs materialization: local (default), kubernetes, ray or sparkApplication."""
    feature_repo: FeatureRepoSpec | None = None
    """Feature repo to apply. Without it the registry is managed by users (e.g. from notebooks)."""
    kubeflow: KubeflowSpec = Field(default_factory=KubeflowSpec)
    """Kubeflow integration."""
    images: ImagesSpec = Field(default_factory=ImagesSpec)
    """Image overrides."""
    authz: AuthzSpec = Field(default_factory=AuthzSpec)
    """Authorization of Feast server calls (Feast's kubernetes or oidc auth)."""
    tls: TlsSpec = Field(default_factory=TlsSpec)
    """TLS on the Feast servers."""

    @model_validator(mode="after")
    def _stores_match_provider(self) -> FeatureStoreSpec:
        if self.provider is Provider.LOCAL:
            if self.online_store and self.online_store.memorystore:
                raise ValueError("onlineStore.memorystore needs provider gcp (provider is local)")
            if self.offline_store and self.offline_store.gcs:
                raise ValueError("offlineStore.gcs needs provider gcp (provider is local)")
        return self

    @model_validator(mode="after")
    def _parallel_shares_run_the_local_engine(self) -> FeatureStoreSpec:
        if self.materialization.parallelism > 1 and self.compute.engine is not ComputeEngine.LOCAL:
            raise ValueError(
                f"materialization.parallelism {self.materialization.parallelism} splits the local engine's work "
                f"over pods; compute.engine {self.compute.engine.value} parallelizes on its own: set "
                "materialization.parallelism to 1 (or compute.engine to local)"
            )
        return self
