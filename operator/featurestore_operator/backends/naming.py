"""Deterministic cloud resource names and ownership labels. Pure.

Names depend only on (GCP project, namespace, name), so a crash between "create" and "record in
status" finds the same resource again instead of creating a second one.
"""

from __future__ import annotations

import re

from ..api import FeatureStore
from ..api.policy import DERIVED_INSTANCE_PREFIX, derived_bucket_prefix

MEMORYSTORE_ID_MAX = 40
BUCKET_MAX = 63

LABEL_NAMESPACE = "featurestore-namespace"
LABEL_NAME = "featurestore-name"
LABEL_UID = "featurestore-uid"
LABEL_MANAGED_BY = "managed-by"
#: The operator's cluster identity (OperatorConfig.cluster_id, e.g. the kube-system namespace uid).
LABEL_CLUSTER = "featurestore-cluster"
MANAGED_BY = "featurestore-operator"


def _digest(*parts: str, length: int = 8) -> str:
    import hashlib

    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


def _slug(value: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", value.lower()).strip("-")


def _fit(prefix: str, body: str, digest: str, limit: int) -> str:
    room = limit - len(prefix) - len(digest) - 1
    body = body[:room].rstrip("-")
    return f"{prefix}{body}-{digest}" if body else f"{prefix}{digest}"


def memorystore_instance_id(fs: FeatureStore) -> str:
    """<= 40 chars, starts with a letter, [a-z0-9-], unique per (project, namespace, name)."""
    ms = fs.spec.online_store.memorystore if fs.spec.online_store else None
    chosen = (ms.existing_instance or ms.instance_id) if ms else None
    if chosen:
        return chosen
    digest = _digest(fs.spec.gcp.project or "", fs.metadata.namespace, fs.metadata.name)
    return _fit(
        DERIVED_INSTANCE_PREFIX, _slug(f"{fs.metadata.namespace}-{fs.metadata.name}"), digest, MEMORYSTORE_ID_MAX
    )


def bucket_name(fs: FeatureStore) -> str:
    """<= 63 chars, globally unique: the GCP project id is part of the hash and the name."""
    gcs = fs.spec.offline_store.gcs if fs.spec.offline_store else None
    chosen = (gcs.existing_bucket or gcs.bucket) if gcs else None
    if chosen:
        return chosen
    project = fs.spec.gcp.project or "local"
    digest = _digest(project, fs.metadata.namespace, fs.metadata.name, length=10)
    body = _slug(f"{derived_bucket_prefix(project)}{fs.metadata.namespace}-{fs.metadata.name}")
    return _fit("", body, digest, BUCKET_MAX)


def _label_value(value: str) -> str:
    """GCP label values: <= 63 chars of [a-z0-9_-]."""
    return re.sub(r"[^a-z0-9_-]", "_", value.lower())[:63]


def owner_labels(fs: FeatureStore, cluster_id: str | None = None) -> dict[str, str]:
    """Labels naming the owner: namespace/name/uid of the FeatureStore and, when the operator knows
    it, the cluster (two clusters sharing a project then never take each other's resources)."""
    labels = {
        LABEL_NAMESPACE: _label_value(fs.metadata.namespace),
        LABEL_NAME: _label_value(fs.metadata.name),
        LABEL_UID: _label_value(fs.metadata.uid or ""),
        LABEL_MANAGED_BY: MANAGED_BY,
    }
    if cluster_id:
        labels[LABEL_CLUSTER] = _label_value(cluster_id)
    return labels


def ownership(fs: FeatureStore, labels: dict[str, str] | None, cluster_id: str | None = None) -> str:
    """'ours', 'retained' (same cluster and namespace/name, earlier uid: a store re-created after a
    Retain deletion takes its data back) or 'foreign' (anyone else's, another cluster's included: a
    conflict, never adopted, never deleted). The caller also checks the resource's project."""
    labels = labels or {}
    mine = owner_labels(fs, cluster_id)
    if any(labels.get(k) != mine[k] for k in (LABEL_NAMESPACE, LABEL_NAME, LABEL_MANAGED_BY)):
        return "foreign"
    same_uid = labels.get(LABEL_UID) == mine[LABEL_UID]
    if cluster_id and labels.get(LABEL_CLUSTER) != mine[LABEL_CLUSTER]:
        # Created before the operator knew its cluster id: ours only by this very FeatureStore's uid
        # (the cluster label is added then); never a "retained" adoption without the cluster label.
        return "ours" if LABEL_CLUSTER not in labels and same_uid else "foreign"
    return "ours" if same_uid else "retained"


def existing_refusal(fs: FeatureStore, labels: dict[str, str] | None, cluster_id: str | None = None) -> str | None:
    """Why a resource given as existingInstance/existingBucket cannot be this store's (None: it can).
    One the operator created (its managed-by label) belongs to the namespace (and cluster) it was created
    for: it is never "existing" for another namespace, whatever the admin policy assigns."""
    labels = labels or {}
    if labels.get(LABEL_MANAGED_BY) != MANAGED_BY:
        return None
    mine = owner_labels(fs, cluster_id)
    other_cluster = bool(cluster_id) and labels.get(LABEL_CLUSTER) not in (None, mine[LABEL_CLUSTER])
    if labels.get(LABEL_NAMESPACE) == mine[LABEL_NAMESPACE] and not other_cluster:
        return None
    return (
        "it was created by the featurestore-operator for a FeatureStore of another namespace or cluster; an "
        "operator-created resource is never brought into another namespace"
    )


def owner_text(labels: dict[str, str] | None, cluster_id: str | None = None) -> str:
    """Who holds a cloud resource that is not this FeatureStore's, without naming them: the text lands
    in a tenant's conditions and Events, so it never echoes another owner's namespace, name or uid."""
    labels = labels or {}
    if labels.get(LABEL_MANAGED_BY) != MANAGED_BY:
        return "someone else (it has no featurestore-operator owner labels)"
    cluster = labels.get(LABEL_CLUSTER)
    if cluster_id and cluster and cluster != _label_value(cluster_id):
        return "another cluster's FeatureStore"
    return "another FeatureStore"
