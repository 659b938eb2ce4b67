"""What rendering needs besides the FeatureStore: backend endpoints and the cluster's API versions.

Backends produce these; render consumes them. Plain frozen dataclasses: no I/O, no clients.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SecretKey:
    """A key of a Secret in the FeatureStore's namespace."""

    name: str
    key: str


@dataclass(frozen=True)
class OnlineEndpoint:
    """A reachable Redis: where it is and which Secrets hold its password and CA."""

    host: str
    port: int
    tls: bool = False
    password: SecretKey | None = None
    ca: SecretKey | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class OfflineEndpoint:
    """Where offline data and the registry live: a GCS bucket or an in-cluster volume claim."""

    bucket: str | None = None
    claim: str | None = None

    @property
    def registry_path(self) -> str:
        if self.bucket:
            return f"gs://{self.bucket}/registry.pb"
        return f"{DATA_MOUNT}/registry.db"

    @property
    def data_root(self) -> str:
        return f"gs://{self.bucket}/offline" if self.bucket else f"{DATA_MOUNT}/offline"


#: Where the in-cluster data volume is mounted in every Feast pod.
DATA_MOUNT = "/data"


@dataclass(frozen=True)
class ServingTls:
    """TLS material of the Feast servers: a Secret (keys tls.crt, tls.key, ca.crt) and the CA
    certificate clients verify against (public; rendered into the client config)."""

    secret: str
    ca_pem: str


@dataclass(frozen=True)
class Endpoints:
    """Backend endpoints; ``None`` means the backend is not ready yet (rendered as pending)."""

    online: OnlineEndpoint | None = None
    offline: OfflineEndpoint | None = None
    #: Required when spec.tls.enabled: without it no server is rendered (pending).
    serving_tls: ServingTls | None = None


def secret_hash(data: Mapping[str, str | bytes]) -> str:
    """A digest of a Secret's data (never the data itself), for :class:`SecretHashes`."""
    canonical = {k: v.decode("latin-1") if isinstance(v, bytes) else v for k, v in data.items()}
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SecretHashes:
    """Secret name -> :func:`secret_hash` of its current data, for every Secret a rendered pod
    consumes (online-store password/CA, serving TLS, git credentials). Reconcile reads the Secrets;
    render puts one combined digest per pod template, so a changed Secret rolls exactly the
    workloads that use it. A Secret missing here counts as "unknown" (stable)."""

    hashes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ApiVersions:
    """API versions the target cluster serves (discovered by reconcile). Defaults: current clusters."""

    cronjob: str = "batch/v1"
    pdb: str = "policy/v1"
    hpa: str = "autoscaling/v2"
    #: Istio >= 1.22 serves security.istio.io/v1; older meshes v1beta1 only (same schema)
    authorization_policy: str = "security.istio.io/v1"
    #: CronJob.spec.timeZone exists from Kubernetes 1.25 (batch/v1); older servers drop it.
    cronjob_time_zone: bool = True
    #: Which optional CRDs the cluster has: PodDefault, AuthorizationPolicy.
    optional_kinds: frozenset[str] = field(default_factory=lambda: frozenset({"PodDefault", "AuthorizationPolicy"}))

    @property
    def indexed_jobs(self) -> bool:
        """Indexed Jobs (completionMode, JOB_COMPLETION_INDEX; GA in 1.24): the same discovery signal as
        cronjob_time_zone (a server that serves only batch/v1 CronJobs is >= 1.25). Older servers
        silently drop completionMode."""
        return self.cronjob_time_zone


@dataclass(frozen=True)
class NotebookAccess:
    """What the store's namespace decides about notebook access (read by reconcile; see
    ``render.kubeflow.default_store``). Default: the store is its namespace's only one."""

    #: this store is the namespace's default store (its PodDefault sets FEAST_FS_YAML_FILE_PATH)
    default: bool = True


@dataclass(frozen=True)
class RepoSource:
    """The feature repo's revision (hash of its source), computed by reconcile."""

    revision: str
    #: git: the commit to fetch and apply (resolved from the ref, or the ref itself when pinned)
    commit: str | None = None
    #: git: the ref resolved to a tag (refs/tags/...): not polled unless followTags
    resolved_tag: bool = False
