"""This cluster's identity, labelled on every cloud resource the operator creates.

Two clusters in one GCP project may hold FeatureStores of the same namespace/name; the cluster
label keeps each from adopting or deleting the other's resources (backends.naming.ownership).
The identity must be stable for the cluster's lifetime and need no configuration: the uid of the
``kube-system`` namespace (never deleted, unique per cluster). ``FSO_CLUSTER_ID`` overrides it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ..api import OperatorConfig

#: Reads a cluster-scoped object: (kind, api_version, namespace=None, name) -> body or None.
GetObject = Callable[[str, str, None, str], Awaitable[dict[str, Any] | None]]


async def with_cluster_id(config: OperatorConfig, get: GetObject) -> OperatorConfig:
    """``config`` with ``cluster_id`` filled from the kube-system namespace uid (kept when set).
    Raises RuntimeError when neither is available: resources created without a cluster label could
    later be taken for another cluster's, so the operator must not start without one."""
    if config.cluster_id:
        return config
    ns = await get("Namespace", "v1", None, "kube-system")
    uid = ((ns or {}).get("metadata") or {}).get("uid")
    if not uid:
        raise RuntimeError(
            "cannot read the kube-system namespace's uid for the cluster identity; grant the operator "
            "get on namespaces/kube-system or set FSO_CLUSTER_ID (Helm value clusterId)"
        )
    return config.model_copy(update={"cluster_id": uid})
