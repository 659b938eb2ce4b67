"""The operator's own configuration, from environment variables (FSO_*) or CLI flags."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import Field, field_validator, model_validator

from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .onboarding import OnboardingTemplate
from .spec import GcpProjectId, GcpRegion, ImageRef, Provider

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
    gcp_network: str | None = Field(
        default=None, pattern=r"^projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/global/networks/[a-z]([-a-z0-9]*[a-z0-9])?$"
    )
    """Default authorized VPC network, projects/PROJECT/global/networks/NAME."""
    memorystore_endpoint: str | None = Field(default=None, pattern=r"^https?://[^\s/]+$")
    """Override of the Memorystore API endpoint (tests and private endpoints). http:// uses anonymous credentials."""
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
    max_concurrent_reconciles: int = Field(default=8, ge=1, le=256)
    """Reconcile passes running at the same time (the others wait their turn, first come first
    served). Bounds the operator's memory and the API server's load when many stores change at
    once (operator start, bulk apply); see bench/README.md."""
    namespaces: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Namespaces to watch (comma-separated in FSO_NAMESPACES); empty: all namespaces."""
    istio: bool = True
    """Render Istio AuthorizationPolicies (else Kubernetes NetworkPolicies)."""
    health_port: int = Field(default=8080, ge=1, le=65535)
    """Port of the liveness endpoint."""
    metrics_port: int = Field(default=9090, ge=1, le=65535)
    """Port of the Prometheus metrics endpoint."""
    peering: str | None = None
    """kopf peering object name for HA (several replicas, one active); None: no peering."""
    peering_priority: int | None = None
    """kopf peering priority of this replica: the live replica with the highest priority acts, the
    others stand by. Default: derived from the start time, older replicas first (kopf pauses EVERY
    replica when two share a priority, so replicas must never share the default)."""
    peering_lifetime: int = Field(default=60, ge=5, le=3600)
    """Seconds a replica's peering keep-alive stays valid: how long a stand-by waits before it takes
    over from a replica that died without saying goodbye."""

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
    def _template_file(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("onboarding_template_file"):
            path = Path(data["onboarding_template_file"])
            try:
                data = {**data, "onboarding_template": path.read_text()}
            except OSError as err:
                raise ValueError(f"cannot read onboarding_template_file {path}: {err.strerror}") from None
        return data

    @field_validator("onboarding_template", mode="before")
    @classmethod
    def _parse_template(cls, v: object) -> object:
        if isinstance(v, str):
            try:
                v = yaml.safe_load(v) if v.strip() else {}
            except yaml.YAMLError as err:
                raise ValueError(f"not valid JSON/YAML: {err}") from None
            return v if v is not None else {}
        return v

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
