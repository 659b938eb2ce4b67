"""The operator's own configuration, from environment variables (FSO_*) or CLI flags."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .onboarding import OnboardingTemplate
from .pods import PodDefaults
from .policy import AdminPolicy, EffectivePolicy, effective
from .spec import GcpNetwork, GcpProjectId, GcpRegion, GsaEmail, ImageRef, Provider

FEAST_VERSION = "0.67.0"


class OperatorConfig(BaseSettings):
    """Cluster-wide defaults and process settings. Every value is validated at start-up."""

    model_config = SettingsConfigDict(env_prefix="FSO_", extra="forbid", use_attribute_docstrings=True, frozen=True)

    default_provider: Provider = Provider.LOCAL
    """Provider of FeatureStores that do not set one (local: in-cluster stores, no cloud)."""
    gcp_project: GcpProjectId | None = None
    """Default GCP project for FeatureStores on provider gcp."""
    gcp_region: GcpRegion | None = None
    """Default GCP region for Memorystore."""
    gcp_network: GcpNetwork | None = None
    """Default authorized VPC network, projects/PROJECT/global/networks/NAME."""
    gcp_service_account: GsaEmail | None = None
    """The operator's own Google service account: never bound to a FeatureStore (admin policy)."""
    gcp_workload_pool: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]\.svc\.id\.goog$")
    """The cluster's Workload Identity pool, PROJECT.svc.id.goog. Default: gcpProject's pool. Never
    taken from a FeatureStore."""
    cluster_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,63}$")
    """Stable identity of this cluster, labelled on every cloud resource the operator creates, so two
    clusters sharing a project never adopt or delete each other's. Default: filled at start-up from
    the kube-system namespace uid."""
    policy: Annotated[AdminPolicy, NoDecode] = Field(default_factory=AdminPolicy)
    """The admin policy (api/policy.py) as JSON or YAML: what FeatureStores may ask for."""
    policy_file: Path | None = None
    """Read policy from this file (e.g. a mounted ConfigMap) instead."""
    webhook_enabled: bool = False
    """Serve the validating admission webhook (handlers/admission.py)."""
    webhook_port: int = Field(default=9443, ge=1, le=65535)
    """Port of the admission webhook's HTTPS server."""
    webhook_host: str | None = Field(default=None, pattern=r"^[A-Za-z0-9.-]+$")
    """An extra host name (or IP) the webhook certificate holds besides the Service's DNS names (a
    webhook configured with clientConfig.url, e.g. an operator run outside the cluster)."""
    webhook_service: str | None = Field(default=None, pattern=r"^[a-z0-9-]+/[a-z0-9-]+$")
    """NAMESPACE/NAME of the webhook Service (the chart's, clientConfig.service): its DNS names go into
    the webhook certificate."""
    webhook_cert_dir: Path | None = None
    """Directory with tls.crt, tls.key and ca.crt (cert-manager); None: a self-signed certificate."""
    webhook_secret: str | None = Field(default=None, pattern=r"^[a-z0-9-]+/[a-z0-9.-]+$")
    """NAMESPACE/NAME of the Secret (the operator's namespace) where the replicas keep ONE shared
    self-signed webhook certificate (without webhook_cert_dir). None: a throw-away one per process."""
    webhook_configuration: str | None = Field(default=None, pattern=r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")
    """Name of the chart's ValidatingWebhookConfiguration whose caBundle the operator writes (get and
    patch on that one object). None: something else injects it (cert-manager's CA injector)."""
    tls_issuer: str | None = Field(
        default=None, pattern=r"^(Issuer|ClusterIssuer)/[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$"
    )
    """cert-manager issuer of the Feast servers' certificates (spec.tls), KIND/NAME with KIND Issuer (in
    each store's namespace) or ClusterIssuer. None: a per-store CA kept by the operator."""
    memorystore_endpoint: str | None = Field(default=None, pattern=r"^https?://[^\s/]+$")
    """Override of the Memorystore API endpoint (tests and private endpoints). http:// uses anonymous credentials."""
    iam_endpoint: str | None = Field(default=None, pattern=r"^https?://[^\s/]+$|^[^\s/:]+(:[0-9]+)?$")
    """Override of the IAM admin API endpoint (tests, private endpoints). http:// uses a plaintext
    channel with anonymous credentials."""
    feast_version: str = FEAST_VERSION
    """Feast version the rendered config targets."""
    feast_image: ImageRef = f"feastdev/feature-server:{FEAST_VERSION}"
    """Feast runtime image (must contain feast[redis,gcp])."""
    redis_image: ImageRef = "redis:7.2-alpine"
    """Image of the in-cluster Redis."""
    git_image: ImageRef = "alpine/git:2.45.2"
    """Image used to fetch git feature repos."""
    resync_seconds: float = Field(default=300.0, ge=10, le=86400)
    """Period of the level-triggered resync of every FeatureStore."""
    cloud_retry_seconds: float = Field(default=60.0, ge=1, le=3600)
    """Seconds one GCP call keeps retrying transient errors (429, 5xx, timeouts, dropped connections)
    with backoff before the part reports CloudUnavailable and the pass is retried later."""
    max_concurrent_reconciles: int = Field(default=8, ge=1, le=256)
    """Reconcile passes running at the same time (the others wait their turn, first come first
    served). Bounds the operator's memory and the API server's load when many stores change at
    once (operator start, bulk apply); see docs/benchmarks.md."""
    namespaces: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Namespaces to watch (comma-separated in FSO_NAMESPACES); empty: all namespaces."""
    compute_enabled: bool = False
    """The chart installed the compute engines' RBAC (Helm value compute.enabled): engines kubernetes,
    sparkApplication and ray with kubeRay may run, and materialization pods are read for feature view
    freshness. False: those engines get a Materialization condition naming the chart value."""
    token_reviewers_binding: str | None = Field(default=None, pattern=r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")
    """ClusterRoleBinding (installed by the chart, Helm value authz.kubernetes.enabled) whose subjects the
    operator keeps equal to the ServiceAccounts of the stores with spec.authz.type kubernetes, so their
    Feast servers may create TokenReviews. None: the admin grants that by hand (docs/security/index.md)."""
    istio: bool = True
    """Render Istio AuthorizationPolicies besides the NetworkPolicies (always rendered), where the cluster
    serves the AuthorizationPolicy CRD."""
    istio_native_sidecars: bool = True
    """The mesh runs Istio's native sidecars (``ENABLE_NATIVE_SIDECARS``, as Kubeflow's manifests
    install it): Jobs (feast apply, materialization) then join the mesh, since a native sidecar ends
    with the Job, and reach in-mesh servers under Kubeflow's global-deny-all by their mTLS identity.
    False (a mesh without native sidecars, where a sidecar would keep a Job from completing): those
    Jobs and the in-cluster Redis they write to stay out of the mesh, fenced by NetworkPolicy and
    Redis AUTH (docs/security/mesh.md)."""
    health_port: int = Field(default=8080, ge=1, le=65535)
    """Port of the liveness endpoint."""
    metrics_port: int = Field(default=9090, ge=1, le=65535)
    """Port of the Prometheus metrics endpoint."""
    leader_election: str | None = Field(default=None, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    """Name of the coordination.k8s.io Lease that elects the acting replica (HA: several replicas,
    one acts, the others stand by); None: a single replica acts without election."""
    operator_namespace: str | None = Field(default=None, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    """The operator's own namespace (the chart's release namespace), where it keeps what it relies on
    and tenants cannot write: the clean-up records of stores with cloud resources. Default: filled at
    start-up from POD_NAMESPACE, else the in-cluster service account's namespace, else the kubeconfig
    context's namespace ("default" when it names none)."""
    leader_election_namespace: str | None = Field(
        default=None, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
    )
    """Namespace of that Lease; default: the operator's own (POD_NAMESPACE or its service account's)."""
    leader_election_seconds: int = Field(default=15, ge=5, le=300)
    """Seconds a Lease stays valid without renewal: how long a stand-by waits before it takes over
    from a replica that died without handing over."""

    pod_defaults: Annotated[PodDefaults, NoDecode] = Field(default_factory=PodDefaults)
    """Pod settings (env, nodeSelector, tolerations, affinity, ...) of every FeatureStore's components, as
    JSON/YAML: {all: {...}, featureServer: {...}, registryServer, offlineServer, ui, materialization, apply,
    redis}; a FeatureStore's own ``pod`` settings override them (Helm value feastPodSettings)."""

    # --- Kubeflow profile onboarding (handlers/profiles.py, reconcile/onboarding.py) ----------
    onboarding_enabled: bool = False
    """Create a FeatureStore from onboarding_template in every Kubeflow profile namespace."""
    onboarding_template: Annotated[OnboardingTemplate, NoDecode] = Field(default_factory=OnboardingTemplate)
    """The FeatureStore of each profile (api/onboarding.py): JSON or YAML; a bare spec is accepted."""
    onboarding_template_file: Path | None = None
    """Read onboarding_template from this file (e.g. a mounted ConfigMap) instead."""
    onboarding_namespace_label: str = Field(
        default="app.kubernetes.io/part-of=kubeflow-profile", pattern=r"^[A-Za-z0-9./_-]+=[A-Za-z0-9._-]*$"
    )
    """KEY=VALUE label of the namespaces to onboard (besides the namespaces of Profiles)."""
    onboarding_opt_out_label: str = Field(default="featurestore.kubeflow.org/onboarding", pattern=r"^[A-Za-z0-9./_-]+$")
    """Label or annotation on a namespace (or its Profile) that, set to "disabled", skips onboarding."""

    @model_validator(mode="before")
    @classmethod
    def _files(cls, data: Any) -> Any:
        """FSO_POLICY_FILE / FSO_ONBOARDING_TEMPLATE_FILE: read the setting from a (mounted) file."""
        for field in ("policy", "onboarding_template"):
            data = _from_file(data, field)
        return data

    @field_validator("onboarding_template", "policy", "pod_defaults", mode="before")
    @classmethod
    def _parse_json_or_yaml(cls, v: object) -> object:
        """Settings that hold a document arrive as JSON/YAML text from the environment."""
        if isinstance(v, str):
            try:
                v = yaml.safe_load(v) if v.strip() else {}
            except yaml.YAMLError as err:
                raise ValueError(f"not valid JSON/YAML: {err}") from None
            return v if v is not None else {}
        return v

    @property
    def workload_pool(self) -> str | None:
        """PROJECT.svc.id.goog of the cluster (config only, never a FeatureStore's project)."""
        return self.gcp_workload_pool or (f"{self.gcp_project}.svc.id.goog" if self.gcp_project else None)

    @property
    def effective_policy(self) -> EffectivePolicy:
        """The admin policy with the operator's project, region, network, GSA and images filled in."""
        return effective(
            self.policy,
            project=self.gcp_project,
            region=self.gcp_region,
            network=self.gcp_network,
            operator_service_account=self.gcp_service_account,
            images=[self.feast_image, self.redis_image, self.git_image],
        )

    @property
    def records_namespace(self) -> str:
        """Where the clean-up records live (:attr:`operator_namespace`, filled at start-up)."""
        return self.operator_namespace or "default"

    @property
    def onboarding_label(self) -> tuple[str, str]:
        key, _, value = self.onboarding_namespace_label.partition("=")
        return key, value

    @field_validator("namespaces", mode="before")
    @classmethod
    def _split(cls, v: object) -> object:
        if isinstance(v, str):
            return [n.strip() for n in v.split(",") if n.strip()]
        return v


def _from_file(data: Any, field: str) -> Any:
    """``data`` with ``field`` read from the file ``<field>_file`` names, when it names one."""
    if not (isinstance(data, dict) and data.get(f"{field}_file")):
        return data
    path = Path(data[f"{field}_file"])
    try:
        return {**data, field: path.read_text()}
    except OSError as err:
        raise ValueError(f"cannot read {field}_file {path}: {err.strerror}") from None
