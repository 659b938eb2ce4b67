"""The API versions a FeatureStore pass renders for (``render.ApiVersions``), from what the runtime's
discovery found served (``runtime.discovery``)."""

from __future__ import annotations

from collections.abc import Mapping

from ..render import ApiVersions
from ..runtime.discovery import Discovery, Probe
from ..runtime.kinds import KINDS
from ..runtime.kube import Kube

#: kinds discovered besides the children: FeatureStores, and SparkApplications (for the condition)
DISCOVERED = frozenset({"FeatureStore", "SparkApplication"})


async def api_versions(served: Mapping[str, str], probe: Probe) -> ApiVersions:
    # CronJob.spec.timeZone: batch/v1 CronJob on >= 1.25; older servers also serve batch/v1beta1.
    tz = served.get("CronJob") == "batch/v1" and not await probe("CronJob", "batch/v1beta1")
    return ApiVersions(
        cronjob=served.get("CronJob", "batch/v1"),
        pdb=served.get("PodDisruptionBudget", "policy/v1"),
        hpa=served.get("HorizontalPodAutoscaler", "autoscaling/v2"),
        authorization_policy=served.get("AuthorizationPolicy", "security.istio.io/v1"),
        cronjob_time_zone=tz,
        optional_kinds=frozenset(k.kind for k in KINDS.values() if k.optional and k.kind in served),
    )


def discovery(kube: Kube, namespace: str | None = None, also: frozenset[str] = frozenset()) -> Discovery[ApiVersions]:
    """The process's discovery (``namespace``: where a namespace-restricted operator probes)."""
    return Discovery(kube, api_versions, namespace=namespace, also=DISCOVERED | also)
