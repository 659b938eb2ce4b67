"""The operator's own configuration, from environment variables (FSO_*) or CLI flags."""

from __future__ import annotations

from pydantic import Field, field_validator
from typing import Annotated

from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .spec import GcpProjectId, GcpRegion, ImageRef, Provider

FEAST_VERSION = "0.67.0"


class OperatorConfig(BaseSettings):
    """Cluster-wide defaults and process settings. Every value is validated at start-up."""

    model_config = SettingsConfigDict(
        env_prefix="FSO_", extra="forbid", use_attribute_docstrings=True, frozen=True
    )

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

    @field_validator("namespaces", mode="before")
    @classmethod
    def _split(cls, v: object) -> object:
        if isinstance(v, str):
            return [n.strip() for n in v.split(",") if n.strip()]
        return v
