"""The FeatureStore status: what the operator observed and did."""

from __future__ import annotations

from enum import Enum
from typing import Literal

from pydantic import Field

from .base import ApiModel


class Phase(str, Enum):
    PENDING = "Pending"
    PROVISIONING = "Provisioning"
    READY = "Ready"
    DEGRADED = "Degraded"
    FAILED = "Failed"
    DELETING = "Deleting"


class ConditionType(str, Enum):
    READY = "Ready"
    ONLINE_STORE = "OnlineStore"
    OFFLINE_STORE = "OfflineStore"
    REGISTRY = "Registry"
    FEATURE_SERVER = "FeatureServer"
    MATERIALIZATION = "Materialization"
    FEATURE_REPO = "FeatureRepo"
    KUBEFLOW = "Kubeflow"
    WORKLOAD_IDENTITY = "WorkloadIdentity"
    SPEC = "Spec"
    #: whether the latest spec is fully in effect (Ready tells whether the store serves)
    SYNCED = "Synced"


class Condition(ApiModel):
    """A Kubernetes-style condition (metav1.Condition)."""

    type: str
    """Ready, Synced (the latest spec is fully in effect), or the part it describes: OnlineStore,
    OfflineStore, Registry, FeatureServer, Materialization, FeatureRepo, Kubeflow, WorkloadIdentity, Spec."""
    status: Literal["True", "False", "Unknown"]
    """True, False or Unknown."""
    reason: str = Field(pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$", max_length=1024)
    """CamelCase machine-readable reason."""
    message: str = Field(default="", max_length=32768)
    """Human-readable detail: what failed and how to fix it."""
    last_transition_time: str | None = None
    """When status last changed (RFC 3339)."""
    observed_generation: int | None = None
    """The metadata.generation this condition was computed for."""


class Endpoints(ApiModel):
    """Where the FeatureStore's parts can be reached."""

    online_store: str | None = None
    """Online store host:port."""
    bucket: str | None = None
    """GCS bucket name (gcp) or volume claim (local) of the offline store."""
    registry: str | None = None
    """Registry path, e.g. gs://BUCKET/registry.pb."""
    feature_server: str | None = None
    """Feature server URL inside the cluster (set once the feature server is available)."""
    registry_server: str | None = None
    """Registry server host:port."""
    offline_server: str | None = None
    """Offline server host:port."""
    ui: str | None = None
    """Feast UI URL."""


class Operations(ApiModel):
    """Cloud long-running operations in flight, so a restarted operator resumes them."""

    memorystore: str | None = None
    """Name of the pending Memorystore create/update/delete operation."""
    memorystore_start_time: str | None = None
    """When that operation was requested (RFC 3339): the condition message shows the elapsed time."""


class CloudStatus(ApiModel):
    """What the operator created or granted in the cloud for this store. Clean-up (deletion, and a
    changed serviceAccount) works from this record, not from the spec, which may have changed."""

    memorystore: str | None = None
    """Memorystore instance the operator created (projects/P/locations/L/instances/I)."""
    memorystore_deletion_policy: Literal["Delete", "Retain"] | None = None
    """Its deletion policy when last reconciled."""
    bucket: str | None = None
    """GCS bucket the operator created or took back."""
    bucket_project: str | None = None
    """The bucket's project."""
    bucket_deletion_policy: Literal["Delete", "Retain"] | None = None
    """Its deletion policy when last reconciled."""
    bucket_force: bool | None = None
    """Whether a non-empty bucket may be deleted (spec.offlineStore.gcs.force when last reconciled)."""
    service_account: str | None = None
    """Google service account the operator granted roles/iam.workloadIdentityUser on."""
    workload_member: str | None = None
    """The member it granted (serviceAccount:POOL[NAMESPACE/KSA])."""
    compute_workload_member: str | None = None
    """The compute engine's KSA it granted on the same Google service account (spec.compute)."""
    notebook_reader: str | None = None
    """The member (serviceAccount:GSA of the namespace's default-editor) granted
    roles/storage.objectViewer on the bucket, so notebooks read the registry and offline data."""


class FeatureRepoStatus(ApiModel):
    """The last feature repo apply."""

    revision: str | None = None
    """Revision (hash of the repo source) of the apply Job last created."""
    applied_revision: str | None = None
    """Revision last applied successfully (the registry serves it)."""
    job: str | None = None
    """Name of the apply Job of `revision`."""
    ref: str | None = None
    """The git ref the commits below were resolved from (spec.featureRepo.git.ref)."""
    resolved_ref: str | None = None
    """Its full name as the repository answered (refs/heads/main, refs/tags/v1), or the commit when pinned."""
    resolved_commit: str | None = Field(default=None, pattern=r"^[0-9a-f]{40}$")
    """The commit the ref pointed to at the last resolution: the commit the next apply uses."""
    resolved_at: str | None = None
    """When that commit was first resolved (RFC 3339)."""
    resolver_job: str | None = None
    """The resolver Job whose report was read last (older reports are never read again)."""
    resolver_job_time: str | None = None
    """Its creationTimestamp: a Job created before it is never read (no replay of an older answer)."""
    source: str | None = None
    """Hash of url, ref and path the resolution belongs to (a changed spec starts over)."""
    applied_commit: str | None = Field(default=None, pattern=r"^[0-9a-f]{40}$")
    """The commit `feast apply` last applied successfully: the registry serves its definitions."""
    applied_at: str | None = None
    """When that apply succeeded (RFC 3339)."""
    serving_commit: str | None = Field(default=None, pattern=r"^[0-9a-f]{40}$")
    """The applied commit while the feature server is available (what models are served from)."""
    last_resolution_error: str | None = None
    """Why the last resolution failed (None: it succeeded)."""
    reapply_token: str | None = None
    """The last featurestore.kubeflow.org/reapply annotation value handled (one apply per new token)."""


class FeatureViewFreshness(ApiModel):
    """How fresh one feature view's online values are, as the last successful run reported it."""

    name: str
    """Feature view name."""
    last_end: str
    """End of its last successful materialization interval (RFC 3339): online values are current up to it."""
    lag_seconds: int
    """Seconds between that end and the end of the run that reported it (the live lag is the metric
    featurestore_feature_view_freshness_lag_seconds)."""


class MaterializationStatus(ApiModel):
    """The last materialization run."""

    last_schedule_time: str | None = None
    """When the CronJob last started a run."""
    last_successful_time: str | None = None
    """When a run last succeeded."""
    last_job: str | None = None
    """Name of the last run's Job."""
    last_result: Literal["Succeeded", "Failed", "Running"] | None = None
    """Outcome of the last run."""
    feature_views: list[FeatureViewFreshness] = Field(default_factory=list)
    """Per feature view, the end of its last successful materialization (read from the registry by
    the run, reported in its pod's termination message)."""
    feature_views_job: str | None = None
    """The successful run whose report featureViews holds."""


class FeatureStoreStatus(ApiModel):
    """Observed state of a FeatureStore."""

    observed_generation: int | None = None
    """The metadata.generation last reconciled."""
    phase: Phase | None = None
    """Pending, Provisioning, Ready, Degraded, Failed or Deleting."""
    conditions: list[Condition] = Field(default_factory=list)
    """Ready plus one condition per part."""
    endpoints: Endpoints = Field(default_factory=Endpoints)
    """Where the parts can be reached."""
    operations: Operations = Field(default_factory=Operations)
    """Cloud operations in flight."""
    cloud: CloudStatus = Field(default_factory=CloudStatus)
    """Cloud grants the operator made (what clean-up revokes)."""
    feature_repo: FeatureRepoStatus = Field(default_factory=FeatureRepoStatus)
    """Feature repo apply."""
    materialization: MaterializationStatus = Field(default_factory=MaterializationStatus)
    """Materialization runs."""
    config_hash: str | None = None
    """Hash of the rendered feature_store.yaml the workloads run with."""

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)
