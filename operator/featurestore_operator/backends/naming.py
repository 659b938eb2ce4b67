"""Deterministic cloud resource names and ownership labels. Pure.

Names depend only on (GCP project, namespace, name), so a crash between "create" and "record in
status" finds the same resource again instead of creating a second one.
"""

from __future__ import annotations

import re

from ..api import FeatureStore

MEMORYSTORE_ID_MAX = 40
BUCKET_MAX = 63

LABEL_NAMESPACE = "featurestore-namespace"
LABEL_NAME = "featurestore-name"
LABEL_UID = "featurestore-uid"
LABEL_MANAGED_BY = "managed-by"
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
    if ms and ms.instance_id:
        return ms.instance_id
    digest = _digest(fs.spec.gcp.project or "", fs.metadata.namespace, fs.metadata.name)
    return _fit("fs-", _slug(f"{fs.metadata.namespace}-{fs.metadata.name}"), digest, MEMORYSTORE_ID_MAX)


def bucket_name(fs: FeatureStore) -> str:
    """<= 63 chars, globally unique: the GCP project id is part of the hash and the name."""
    gcs = fs.spec.offline_store.gcs if fs.spec.offline_store else None
    if gcs and gcs.bucket:
        return gcs.bucket
    project = fs.spec.gcp.project or "local"
    digest = _digest(project, fs.metadata.namespace, fs.metadata.name, length=10)
    return _fit("", _slug(f"{project}-feast-{fs.metadata.namespace}-{fs.metadata.name}"), digest, BUCKET_MAX)


def _label_value(value: str) -> str:
    """GCP label values: <= 63 chars of [a-z0-9_-]."""
    return re.sub(r"[^a-z0-9_-]", "_", value.lower())[:63]


def owner_labels(fs: FeatureStore) -> dict[str, str]:
    return {
        LABEL_NAMESPACE: _label_value(fs.metadata.namespace),
        LABEL_NAME: _label_value(fs.metadata.name),
        LABEL_UID: _label_value(fs.metadata.uid or ""),
        LABEL_MANAGED_BY: MANAGED_BY,
    }


def ownership(fs: FeatureStore, labels: dict[str, str] | None) -> str:
    """'ours', 'retained' (same namespace/name, earlier uid: a store re-created after a Retain
    deletion takes its data back) or 'foreign' (anyone else's: a conflict, never adopted)."""
    labels = labels or {}
    mine = owner_labels(fs)
    if labels.get(LABEL_NAMESPACE) != mine[LABEL_NAMESPACE] or labels.get(LABEL_NAME) != mine[LABEL_NAME]:
        return "foreign"
    if labels.get(LABEL_MANAGED_BY) != MANAGED_BY:
        return "foreign"
    return "ours" if labels.get(LABEL_UID) == mine[LABEL_UID] else "retained"
