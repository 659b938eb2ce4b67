"""Fill in what a manifest leaves to the operator's configuration. Pure.

Everything downstream (render, backends, reconcile) works on the resolved spec, so the choice of
provider, project, region, network, stores and images is made in exactly one place.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import OperatorConfig
from .resource import SpecError
from .spec import (
    FeatureStoreSpec,
    GcsSpec,
    InClusterOfflineSpec,
    InClusterRedisSpec,
    MemorystoreSpec,
    OfflineStoreSpec,
    OnlineStoreSpec,
    Provider,
)


def resolve(spec: FeatureStoreSpec, config: OperatorConfig) -> FeatureStoreSpec:
    """Return a copy of ``spec`` with every configuration-dependent default made explicit.

    Raises :class:`SpecError` when the spec and the operator config together cannot work
    (e.g. provider gcp but no GCP project anywhere).
    """
    provider = spec.provider or config.default_provider
    problems: list[tuple[str, str]] = []
    gcp = spec.gcp.model_copy(
        update={
            "project": spec.gcp.project or config.gcp_project,
            "region": spec.gcp.region or config.gcp_region,
        }
    )
    online = spec.online_store or (
        OnlineStoreSpec(memorystore=MemorystoreSpec())
        if provider is Provider.GCP
        else OnlineStoreSpec(in_cluster=InClusterRedisSpec())
    )
    offline = spec.offline_store or (
        OfflineStoreSpec(gcs=GcsSpec())
        if provider is Provider.GCP
        else OfflineStoreSpec(in_cluster=InClusterOfflineSpec())
    )
    if online.memorystore and provider is not Provider.GCP:
        problems.append(
            ("spec.onlineStore.memorystore", "needs provider gcp; set spec.provider: gcp or use inCluster/external")
        )
    if offline.gcs and provider is not Provider.GCP:
        problems.append(("spec.offlineStore.gcs", "needs provider gcp; set spec.provider: gcp or use inCluster"))
    if online.memorystore or offline.gcs:
        if not gcp.project:
            problems.append(
                ("spec.gcp.project", "required on GCP: set it, or the operator's gcpProject (Helm value gcp.project)")
            )
        if online.memorystore and not gcp.region:
            problems.append(
                (
                    "spec.gcp.region",
                    "required for Memorystore: set it, or the operator's gcpRegion (Helm value gcp.region)",
                )
            )
    if online.memorystore and not online.memorystore.network:
        network = config.gcp_network or (f"projects/{gcp.project}/global/networks/default" if gcp.project else None)
        online = online.model_copy(update={"memorystore": online.memorystore.model_copy(update={"network": network})})
    if problems:
        raise SpecError(problems)
    images = spec.images.model_copy(
        update={
            "feast": spec.images.feast or config.feast_image,
            "redis": spec.images.redis or config.redis_image,
            "git": spec.images.git or config.git_image,
        }
    )
    registry = spec.registry
    if registry.server.enabled is None:
        server = registry.server.model_copy(update={"enabled": provider is Provider.LOCAL})
        registry = registry.model_copy(update={"server": server})
    return spec.model_copy(
        update={
            "registry": registry,
            "provider": provider,
            "gcp": gcp,
            "online_store": online,
            "offline_store": offline,
            "images": images,
        }
    )


@dataclass(frozen=True)
class ResolvedMemorystore:
    """A resolved spec's Memorystore and where it lives: ``resolve()`` guarantees project and region,
    this type says so to mypy (the cloud calls take it, never the Optional spec fields)."""

    project: str
    region: str
    spec: MemorystoreSpec


@dataclass(frozen=True)
class ResolvedGcs:
    """A resolved spec's bucket and its project (guaranteed by ``resolve()``)."""

    project: str
    spec: GcsSpec


def memorystore_of(spec: FeatureStoreSpec) -> ResolvedMemorystore | None:
    """The Memorystore of a resolved spec; None when it has none (or was not resolved)."""
    ms = spec.online_store.memorystore if spec.online_store else None
    if ms is None or not spec.gcp.project or not spec.gcp.region:
        return None
    return ResolvedMemorystore(spec.gcp.project, spec.gcp.region, ms)


def gcs_of(spec: FeatureStoreSpec) -> ResolvedGcs | None:
    """The GCS bucket spec of a resolved spec; None when it has none (or was not resolved)."""
    gcs = spec.offline_store.gcs if spec.offline_store else None
    if gcs is None or not spec.gcp.project:
        return None
    return ResolvedGcs(spec.gcp.project, gcs)
