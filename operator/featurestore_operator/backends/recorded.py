"""What the operator created in the cloud, rebuilt from ``status.cloud`` alone. Pure.

Clean-up must not depend on the current spec: a spec that became invalid (stricter rules, a
policy change) or that now names another instance/bucket/project still leaves behind what the
operator made. These functions turn the record into a FeatureStore whose resolved spec names
exactly the recorded resources, so the backends' own ``delete`` (ownership checks, deletion
policy, long-running operations) handles them:

* :func:`recorded_store` - everything recorded (deleting a store whose spec is invalid);
* :func:`retired_instance` / :func:`retired_bucket` - the recorded resource when the spec now
  names another one (changed instanceId/bucket/project/region).
"""

from __future__ import annotations

import re
from typing import Any

from ..api import DeletionPolicy, FeatureStore, FeatureStoreSpec, FeatureStoreStatus, Provider
from ..api.resource import ObjectMeta
from ..api.spec import (
    GcpSpec,
    GcsSpec,
    InClusterOfflineSpec,
    InClusterRedisSpec,
    MemorystoreSpec,
    OfflineStoreSpec,
    OnlineStoreSpec,
)

_INSTANCE = re.compile(r"^projects/([^/]+)/locations/([^/]+)/instances/([^/]+)$")


def _online(status: FeatureStoreStatus) -> tuple[OnlineStoreSpec, str | None, str | None]:
    rec = status.cloud
    m = _INSTANCE.match(rec.memorystore or "")
    if not m:
        return OnlineStoreSpec(in_cluster=InClusterRedisSpec()), None, None
    policy = DeletionPolicy(rec.memorystore_deletion_policy or DeletionPolicy.DELETE.value)
    return (
        OnlineStoreSpec(memorystore=MemorystoreSpec(instance_id=m.group(3), deletion_policy=policy)),
        m.group(1),
        m.group(2),
    )


def _offline(status: FeatureStoreStatus) -> tuple[OfflineStoreSpec, str | None]:
    rec = status.cloud
    if not rec.bucket or not rec.bucket_project:
        return OfflineStoreSpec(in_cluster=InClusterOfflineSpec()), None
    policy = DeletionPolicy(rec.bucket_deletion_policy or DeletionPolicy.RETAIN.value)
    return OfflineStoreSpec(
        gcs=GcsSpec(bucket=rec.bucket, deletion_policy=policy, force=bool(rec.bucket_force))
    ), rec.bucket_project


def _store(
    meta: ObjectMeta,
    status: FeatureStoreStatus,
    online: OnlineStoreSpec,
    offline: OfflineStoreSpec,
    project: str | None,
    region: str | None,
) -> FeatureStore:
    cloud = bool(online.memorystore or offline.gcs)
    spec = FeatureStoreSpec(
        project="recorded",
        provider=Provider.GCP if cloud else Provider.LOCAL,
        gcp=GcpSpec(project=project, region=region),
        online_store=online,
        offline_store=offline,
    )
    return FeatureStore(metadata=meta, spec=spec, status=status)


def recorded_store(body: dict[str, Any]) -> FeatureStore | None:
    """Everything ``body``'s status records (None: nothing recorded, or metadata unreadable)."""
    try:
        meta = ObjectMeta.model_validate(body.get("metadata") or {})
        status = FeatureStoreStatus.model_validate(body.get("status") or {})
    except ValueError:
        return None
    rec = status.cloud
    if not (rec.memorystore or rec.bucket or rec.service_account):
        return None
    online, ms_project, region = _online(status)
    offline, bucket_project = _offline(status)
    if ms_project and bucket_project and ms_project != bucket_project:
        # one spec holds one project: the bucket goes in a second pass (retired_bucket) - rare
        offline = OfflineStoreSpec(in_cluster=InClusterOfflineSpec())
    return _store(meta, status, online, offline, ms_project or bucket_project, region)


def retired_instance(fs: FeatureStore, current: str) -> FeatureStore | None:
    """The recorded Memorystore instance when ``current`` (the spec's instance name) is another one."""
    recorded = fs.status.cloud.memorystore
    if not recorded or recorded == current:
        return None
    online, project, region = _online(fs.status)
    return _store(fs.metadata, fs.status, online, OfflineStoreSpec(in_cluster=InClusterOfflineSpec()), project, region)


def retired_bucket(fs: FeatureStore, current: str | None, project: str | None) -> FeatureStore | None:
    """The recorded bucket when the spec now names another bucket or project (None: the same)."""
    rec = fs.status.cloud
    if not rec.bucket or (rec.bucket, rec.bucket_project) == (current, project):
        return None
    offline, bucket_project = _offline(fs.status)
    return _store(
        fs.metadata, fs.status, OnlineStoreSpec(in_cluster=InClusterRedisSpec()), offline, bucket_project, None
    )
