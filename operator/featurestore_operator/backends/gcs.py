"""The GCS offline store: one bucket per FeatureStore holding offline data and ``registry.pb``.

ensure (level-triggered, idempotent; an unchanged bucket costs reads only):
  * get the bucket (deterministic name, :func:`naming.bucket_name`); create it when missing with
    the location, uniform bucket-level access, public access prevention ``enforced``, the owner
    labels and the optional lifecycle delete rule;
  * an existing bucket must carry our owner labels. Anyone else's is a ``Conflict`` and is never
    adopted; one left behind by an earlier FeatureStore of the same namespace/name (deletion
    policy Retain) is taken back (its uid label is rewritten);
  * drift of our labels, our lifecycle rule, UBLA or PAP is patched back in one PATCH guarded by
    ``ifMetagenerationMatch`` (user-added labels and other lifecycle rules are left alone);
  * ``spec.gcp.serviceAccount`` gets ``roles/storage.objectAdmin`` on the bucket through a
    read-modify-write of the bucket IAM policy (version 3), re-read and re-applied on etag
    conflicts, written only when the binding is missing.

delete honours ``deletionPolicy``: Retain (default) leaves the bucket; Delete removes an empty
bucket, keeps a non-empty one unless ``force`` (then deletes every object version, in bounded
batches per pass, and the bucket); a bucket with another owner is never touched.

Bucket names are global across all of GCS: a name taken by another project answers 403 on get and
409 on create, and both are reported with that explanation.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import storage  # type: ignore[attr-defined]

from ..api import DeletionPolicy, FeatureStore, OperatorConfig
from ..render import OfflineEndpoint
from . import gcp, naming, notebook_access
from .base import BackendContext, Deleted, Failed, Pending, Ready
from .policy import byo_refusal, policy_refusal
from .recorded import retired_bucket
from .workload_identity import with_member, without_member

log = logging.getLogger(__name__)

OBJECT_ADMIN = "roles/storage.objectAdmin"
#: storage.buckets.get + storage.objects.list on the bucket: Feast's gs:// registry GETs the bucket
#: (``get_bucket``), which neither objectAdmin nor objectViewer allows (storage.objects.* only).
BUCKET_READER = "roles/storage.legacyBucketReader"
#: What the store's own GSA holds on its bucket.
STORE_ROLES = (OBJECT_ADMIN, BUCKET_READER)
PAP_ENFORCED = "enforced"
#: Per-request timeout of storage calls (seconds); gcp.call retries transient errors around it.
TIMEOUT = 30.0


def default_client_factory(project: str) -> storage.Client:
    """A storage client for ``project``. With ``STORAGE_EMULATOR_HOST`` set the library talks to
    that emulator; credentials are then anonymous (an emulator checks none)."""
    if os.environ.get("STORAGE_EMULATOR_HOST"):
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(project=project, credentials=AnonymousCredentials())
    return storage.Client(project=project)


def _emulated() -> bool:
    return bool(os.environ.get("STORAGE_EMULATOR_HOST"))


def _managed_rule(rule: dict[str, Any]) -> bool:
    """Our lifecycle rule's shape: Delete when age >= N, no other condition."""
    return (rule.get("action") or {}).get("type") == "Delete" and set((rule.get("condition") or {}).keys()) == {"age"}


def desired_lifecycle(current: list[dict[str, Any]], delete_after_days: int | None) -> list[dict[str, Any]]:
    """Current rules with the age-only Delete rule(s) replaced by the one the spec asks for. Pure."""
    keep = [r for r in current if not _managed_rule(r)]
    if delete_after_days:
        keep.append({"action": {"type": "Delete"}, "condition": {"age": delete_after_days}})
    return keep


def _lifecycle_differs(current: list[dict[str, Any]], days: int | None) -> bool:
    have = sorted(int(r["condition"]["age"]) for r in current if _managed_rule(r))
    return have != ([days] if days else [])


class GcsBackend:
    """``Backend[OfflineEndpoint]`` for ``spec.offlineStore.gcs``.

    Args:
        config: the operator config (accepted for a uniform constructor; GCS needs nothing from it
            yet: ``STORAGE_EMULATOR_HOST`` selects an emulator, as the library does).
        client_factory: ``project -> google.cloud.storage.Client``; called lazily (in a worker
            thread, since resolving default credentials may block), once per project.
        delete_budget: seconds one ``delete`` pass may spend deleting objects of a forced bucket
            before it returns ``Deleted(done=False)`` and lets reconcile call again.
        iam_attempts: read-modify-write attempts of the bucket IAM policy on etag conflicts.
    """

    def __init__(
        self,
        config: OperatorConfig | None = None,
        *,
        client_factory: Callable[[str], storage.Client] | None = None,
        delete_budget: float = 20.0,
        iam_attempts: int = 5,
    ):
        self.config = config
        self._factory = client_factory or default_client_factory
        self._clients: dict[str, storage.Client] = {}
        self._lock = asyncio.Lock()
        self._delete_budget = delete_budget
        self._iam_attempts = iam_attempts
        self._cluster = config.cluster_id if config else None
        #: (bucket, project) pairs already seen in the project's listing: a bucket never moves.
        self._in_projects: set[tuple[str, str]] = set()

    async def _client(self, project: str) -> storage.Client:
        async with self._lock:
            client = self._clients.get(project)
            if client is None:
                client = self._clients[project] = await gcp.blocking(self._factory, project)
            return client

    # -- ensure ---------------------------------------------------------------------------------

    async def ensure(self, fs: FeatureStore, ctx: BackendContext) -> Ready[OfflineEndpoint] | Pending | Failed:
        gcs = fs.spec.offline_store.gcs if fs.spec.offline_store else None
        if gcs is None:
            return Failed("InvalidSpec", "GcsBackend needs spec.offlineStore.gcs")
        project = fs.spec.gcp.project
        if not project:
            return Failed("InvalidSpec", "spec.gcp.project is required for a GCS bucket (or the operator's gcpProject)")
        refused = policy_refusal(fs, self.config)
        if refused:  # checked here too: the webhook can be down or bypassed
            return Failed("PolicyViolation", f"refused by the admin policy: {refused}", retry_after=300)
        name = naming.bucket_name(fs)
        old = retired_bucket(fs, None if gcs.existing_bucket else name, project)
        if old is not None:  # bucket/project changed: the old bucket first, by its deletion policy
            return await self._retire(old, ctx, name)
        try:
            client = await self._client(project)
        except Exception as err:  # noqa: BLE001 - e.g. no default credentials
            return gcp.failure(err, "creating the Cloud Storage client")
        if gcs.existing_bucket:
            return await self._existing(fs, client, name, project)

        notes: list[str] = []
        created = False
        try:
            bucket = await self._get(client, name)
        except (gexc.Forbidden, gexc.PermissionDenied) as err:
            return Failed("PermissionDenied", _inaccessible(name, project, err), retry_after=300)
        except Exception as err:  # noqa: BLE001
            return gcp.failure(err, f"storage.buckets.get {name}", "storage.buckets.get")

        if bucket is None:
            try:
                bucket = await gcp.call(
                    lambda: client.create_bucket(
                        self._new_bucket(client, fs, name),
                        project=project,
                        location=gcs.location,
                        retry=None,
                        timeout=TIMEOUT,
                    )
                )
                created = True
                self._in_projects.add((name, project))
                notes.append("created")
                log.info(
                    "created bucket %s in project %s for %s/%s", name, project, fs.metadata.namespace, fs.metadata.name
                )
            except gexc.Conflict:
                # Exists after all: our own earlier create that answered late, or a name taken
                # anywhere in GCS. Look again; only a bucket we can read and own goes on.
                try:
                    bucket = await self._get(client, name)
                except (gexc.Forbidden, gexc.PermissionDenied):
                    bucket = None
                except Exception as err:  # noqa: BLE001
                    return gcp.failure(err, f"storage.buckets.get {name}", "storage.buckets.get")
                if bucket is None:
                    return Failed("Conflict", _taken(name), retry_after=300)
            except Exception as err:  # noqa: BLE001
                return gcp.failure(err, f"storage.buckets.create {name} in project {project}", "storage.buckets.create")

        assert bucket is not None
        if not created:
            try:
                in_project = await self._in_project(client, name, project)
            except Exception as err:  # noqa: BLE001
                return gcp.failure(err, f"storage.buckets.list in project {project}", "storage.buckets.list")
            if not in_project:
                return Failed("Conflict", _elsewhere(name, project), retry_after=300)
            owner = naming.ownership(fs, bucket.labels, self._cluster)
            if owner == "foreign":
                return Failed(
                    "Conflict",
                    f"bucket {name} already exists and belongs to {naming.owner_text(bucket.labels, self._cluster)}; "
                    "the operator never adopts a bucket it did not create for this FeatureStore. Set "
                    "spec.offlineStore.gcs.bucket to another name, or delete that bucket",
                    retry_after=300,
                )
            if owner == "retained":
                notes.append("taken back from an earlier FeatureStore of this name (retained on deletion)")
            try:
                changed = await self._fix_drift(client, fs, bucket)
            except gexc.PreconditionFailed:
                return Pending(
                    "BucketChanging", f"bucket {name} changed while being updated; looking again", retry_after=2
                )
            except Exception as err:  # noqa: BLE001
                return gcp.failure(err, f"storage.buckets.patch {name}", "storage.buckets.update")
            if changed:
                notes.append("restored " + ", ".join(changed))
            if bucket.location and bucket.location.upper() != gcs.location.upper():
                notes.append(
                    f"location is {bucket.location}: spec.offlineStore.gcs.location {gcs.location} "
                    f"cannot change on an existing bucket"
                )

        gsa = fs.spec.gcp.service_account
        if gsa:
            member = f"serviceAccount:{gsa}"
            try:
                granted = await self._grant(client, name, member)
            except gexc.NotFound:
                if not _emulated():
                    return Failed(
                        "CloudError", f"storage.buckets.getIamPolicy {name}: bucket not found", retryable=True
                    )
                granted = None
                notes.append("bucket IAM skipped: the storage emulator has no IAM API")
            except (gexc.Forbidden, gexc.PermissionDenied) as err:
                return Failed(
                    "PermissionDenied",
                    f"granting {OBJECT_ADMIN} on bucket {name} to {member}: permission denied ({err.message}). Grant "
                    f"the operator storage.buckets.getIamPolicy and storage.buckets.setIamPolicy "
                    f"(roles/storage.admin), "
                    f"or run: gcloud storage buckets add-iam-policy-binding gs://{name} --member={member} "
                    f"--role={OBJECT_ADMIN}",
                    retry_after=300,
                )
            except Exception as err:  # noqa: BLE001
                return gcp.failure(err, f"storage.buckets.setIamPolicy {name}", "storage.buckets.setIamPolicy")
            if granted:
                notes.append(f"granted {OBJECT_ADMIN} and {BUCKET_READER} to {gsa}")

        try:
            reader_status, reader_note = await self._notebook_reader(fs, ctx, client, name)
        except (gexc.Forbidden, gexc.PermissionDenied) as err:
            return Failed(
                "PermissionDenied",
                f"granting {notebook_access.OBJECT_VIEWER} on bucket {name} to the notebooks' GSA: permission "
                f"denied ({err.message}); the operator needs storage.buckets.getIamPolicy/setIamPolicy",
                retry_after=300,
            )
        except Exception as err:  # noqa: BLE001
            return gcp.failure(err, f"storage.buckets.setIamPolicy {name}", "storage.buckets.setIamPolicy")
        if reader_note:
            notes.append(reader_note)

        endpoint = OfflineEndpoint(bucket=name)
        message = f"bucket {name}; registry {endpoint.registry_path}"
        record = {
            "bucket": name,
            "bucketProject": project,
            "bucketDeletionPolicy": gcs.deletion_policy.value,
            "bucketForce": gcs.force,
        }
        rec = fs.status.cloud
        known = (rec.bucket, rec.bucket_project, rec.bucket_deletion_policy, rec.bucket_force) == tuple(record.values())
        status = {} if known else {"cloud": record}
        if reader_status:
            status = {"cloud": {**status.get("cloud", {}), **reader_status["cloud"]}}
        return Ready(endpoint, message + (f" ({'; '.join(notes)})" if notes else ""), status=status)

    async def _retire(self, old: FeatureStore, ctx: BackendContext, name: str) -> Pending:
        result = await self.delete(old, ctx)
        rec = old.status.cloud
        what = f"the spec now names bucket {name}; the old bucket {rec.bucket} (project {rec.bucket_project})"
        if not result.done:
            return Pending("RetiringOldBucket", f"{what}: {result.message}", retry_after=result.retry_after)
        return Pending("RetiredOldBucket", f"{what}: {result.message}", status=FORGET, retry_after=1)

    async def _existing(
        self, fs: FeatureStore, client: storage.Client, name: str, project: str
    ) -> Ready[OfflineEndpoint] | Failed:
        """spec.offlineStore.gcs.existingBucket: read and verified (exists, in the project, not another
        namespace's), never changed, no IAM grant; only a bucket the admin assigned to the namespace."""
        field = "spec.offlineStore.gcs.existingBucket"
        refused = byo_refusal(fs, self.config)
        if refused:  # asked here, right before any call: whatever checked the spec before may be skipped
            return Failed("PolicyViolation", f"refused by the admin policy: {refused}", retry_after=300)
        try:
            bucket = await self._get(client, name)
            in_project = bucket is not None and await self._in_project(client, name, project)
        except (gexc.Forbidden, gexc.PermissionDenied) as err:
            return Failed("PermissionDenied", f"{field}: {_inaccessible(name, project, err)}", retry_after=300)
        except Exception as err:  # noqa: BLE001
            return gcp.failure(err, f"storage.buckets.get {name}", "storage.buckets.get")
        if bucket is None:
            return Failed(
                "BucketNotFound",
                f"{field}: bucket {name} does not exist; create it (in project {project}) or fix the name",
                retryable=True,
                retry_after=60,
            )
        if not in_project:
            return Failed(
                "NotAllowed",
                f"{field}: bucket {name} is not in project {project} (the admin policy's "
                f"projects); the operator uses only buckets of allowed projects",
                retry_after=300,
            )
        foreign = naming.existing_refusal(fs, bucket.labels, self._cluster)
        if foreign:
            return Failed("NotAllowed", f"{field}: bucket {name}: {foreign}", retry_after=300)
        endpoint = OfflineEndpoint(bucket=name)
        return Ready(
            endpoint,
            f"existing bucket {name} (not managed: never modified or deleted); registry {endpoint.registry_path}",
        )

    async def _in_project(self, client: storage.Client, name: str, project: str) -> bool:
        """Whether bucket ``name`` belongs to ``project``: labels can be forged by whoever owns a bucket, its
        project cannot. Listing the project's buckets by prefix is the check that needs no project number;
        a positive answer is remembered (a bucket never changes project)."""
        if (name, project) in self._in_projects:
            return True

        def listed() -> bool:
            buckets = client.list_buckets(project=project, prefix=name, retry=None, timeout=TIMEOUT)
            return any(b.name == name for b in buckets)

        found = await gcp.call(listed)
        if found:
            self._in_projects.add((name, project))
        return found

    @staticmethod
    async def _get(client: storage.Client, name: str) -> storage.Bucket | None:
        try:
            return await gcp.call(lambda: client.get_bucket(name, retry=None, timeout=TIMEOUT))
        except gexc.NotFound:
            return None

    def _new_bucket(self, client: storage.Client, fs: FeatureStore, name: str) -> storage.Bucket:
        gcs = fs.spec.offline_store.gcs  # type: ignore[union-attr]
        assert gcs is not None
        bucket = storage.Bucket(client, name)
        bucket.labels = naming.owner_labels(fs, self._cluster)
        bucket.iam_configuration.uniform_bucket_level_access_enabled = True
        bucket.iam_configuration.public_access_prevention = PAP_ENFORCED
        bucket.lifecycle_rules = desired_lifecycle([], gcs.lifecycle.delete_after_days if gcs.lifecycle else None)
        return bucket

    async def _fix_drift(self, client: storage.Client, fs: FeatureStore, bucket: storage.Bucket) -> list[str]:
        """Patch back what differs from the spec; returns the names of what changed (no call if none).

        The patch goes through a fresh Bucket holding only the changed fields, so it never echoes
        read-only parts (bucketPolicyOnly, lockedTime) back, and never removes user-added labels.
        """
        gcs = fs.spec.offline_store.gcs  # type: ignore[union-attr]
        assert gcs is not None
        days = gcs.lifecycle.delete_after_days if gcs.lifecycle else None
        patch = storage.Bucket(client, bucket.name)
        changed: list[str] = []
        want_labels = naming.owner_labels(fs, self._cluster)
        have_labels = bucket.labels or {}
        if any(have_labels.get(k) != v for k, v in want_labels.items()):
            patch.labels = want_labels  # labels PATCH merges keys: other labels stay
            changed.append("labels")
        current_rules = [dict(r) for r in bucket.lifecycle_rules]
        if _lifecycle_differs(current_rules, days):
            patch.lifecycle_rules = desired_lifecycle(current_rules, days)
            changed.append("lifecycle")
        iam = bucket.iam_configuration
        if not iam.uniform_bucket_level_access_enabled or iam.get("publicAccessPrevention") != PAP_ENFORCED:
            patch.iam_configuration.uniform_bucket_level_access_enabled = True
            patch.iam_configuration.public_access_prevention = PAP_ENFORCED
            changed.append("uniform bucket-level access/public access prevention")
        if changed:
            await gcp.call(
                lambda: patch.patch(if_metageneration_match=bucket.metageneration, retry=None, timeout=TIMEOUT)
            )
            log.info("bucket %s: restored %s", bucket.name, ", ".join(changed))
        return changed

    async def _grant(
        self, client: storage.Client, name: str, member: str, roles: tuple[str, ...] = STORE_ROLES
    ) -> bool:
        """Ensure ``member`` holds each of ``roles`` on the bucket (one write); True when it wrote."""
        return await self._modify_iam(client, name, lambda b: _change_roles(b, roles, member, with_member))

    async def _modify_iam(
        self, client: storage.Client, name: str, change: Callable[[Any], list[dict[str, Any]] | None]
    ) -> bool:
        """Read-modify-write of the bucket IAM policy (version 3), re-read on etag conflicts; True when
        it wrote (``change`` returns None when nothing is to change)."""
        bucket = client.bucket(name)
        for attempt in range(self._iam_attempts):
            policy = await gcp.call(
                lambda: bucket.get_iam_policy(requested_policy_version=3, retry=None, timeout=TIMEOUT)
            )
            bindings = change(policy.bindings)
            if bindings is None:
                return False
            policy.bindings = [{**b, "members": set(b["members"])} for b in bindings]
            policy.version = 3
            try:
                await gcp.call(lambda p=policy: bucket.set_iam_policy(p, retry=None, timeout=TIMEOUT))
                return True
            except (gexc.PreconditionFailed, gexc.Conflict) as err:  # etag moved: re-read, re-apply
                log.info("IAM policy of bucket %s changed concurrently (%s); retrying", name, err.code)
                await asyncio.sleep(min(0.2 * 2**attempt, 2.0))
        raise gexc.Aborted(f"the IAM policy of bucket {name} kept changing during {self._iam_attempts} attempts")

    async def _notebook_reader(
        self, fs: FeatureStore, ctx: BackendContext, client: storage.Client, name: str
    ) -> tuple[dict[str, Any], str]:
        """Grant read (objectViewer + legacyBucketReader) to the namespace's notebook GSA, revoke a
        recorded one that is no longer wanted (notebook_access). Returns (status to merge, note);
        raises what the IAM calls raise."""
        want = await notebook_access.wanted(fs, ctx)
        recorded = fs.status.cloud.notebook_reader
        notes = [want.note] if want.note else []
        if recorded and recorded != want.member and notebook_access.revocable(fs, ctx.config, recorded):
            roles = notebook_access.READER_ROLES
            if await self._modify_iam(client, name, lambda b: _change_roles(b, roles, recorded, without_member)):
                notes.append(f"revoked {', '.join(roles)} from {recorded}")
        if want.member and await self._grant(client, name, want.member, notebook_access.READER_ROLES):
            notes.append("granted")
        status = {} if recorded == want.member else {"cloud": {"notebookReader": want.member}}
        return status, ": ".join(notes)

    # -- delete ---------------------------------------------------------------------------------

    async def delete(self, fs: FeatureStore, ctx: BackendContext) -> Deleted:
        revoked = await self._revoke_reader(fs, ctx)
        if not revoked.done:
            return revoked
        result = await self._delete(fs)
        if result.done and fs.status.cloud.bucket == naming.bucket_name(fs):
            return Deleted(True, result.message, status=FORGET)
        return result

    async def _revoke_reader(self, fs: FeatureStore, ctx: BackendContext) -> Deleted:
        """Remove the notebooks' objectViewer (status.cloud.notebookReader) from the store's bucket, so a
        retained bucket keeps no reader. Never blocks deletion for good: a refusal says what to run."""
        rec = fs.status.cloud
        reader, name, project = rec.notebook_reader, rec.bucket, rec.bucket_project
        if not (reader and name and project) or name != naming.bucket_name(fs):
            return Deleted(True)
        if not notebook_access.revocable(fs, ctx.config, reader):
            return Deleted(True, f"recorded notebook reader {reader} is not this namespace's; left untouched")
        role = notebook_access.OBJECT_VIEWER
        roles = notebook_access.READER_ROLES
        try:
            client = await self._client(project)
            await self._modify_iam(client, name, lambda b: _change_roles(b, roles, reader, without_member))
        except gexc.NotFound:
            return Deleted(True)
        except (gexc.Forbidden, gexc.PermissionDenied):
            return Deleted(
                True,
                f"could not remove {reader} from bucket {name} (permission denied); run: gcloud storage buckets "
                f"remove-iam-policy-binding gs://{name} --member={reader} --role={role}",
            )
        except Exception as err:  # noqa: BLE001
            f = gcp.failure(err, f"removing {role} of {reader} from bucket {name}")
            return Deleted(not f.retryable, f.message, retry_after=f.retry_after)
        return Deleted(True)

    async def _delete(self, fs: FeatureStore) -> Deleted:
        gcs = fs.spec.offline_store.gcs if fs.spec.offline_store else None
        if gcs is None:
            return Deleted(True)
        name = naming.bucket_name(fs)
        if gcs.existing_bucket:
            return Deleted(True, f"existing bucket {name} left untouched (bring your own)")
        if gcs.deletion_policy is not DeletionPolicy.DELETE:
            return Deleted(True, f"bucket {name} retained (deletionPolicy Retain)")
        project = fs.spec.gcp.project
        if not project:
            return Deleted(True, f"bucket {name} left in place: spec.gcp.project is unknown")
        unblock = "; or set spec.offlineStore.gcs.deletionPolicy: Retain to let the FeatureStore go and keep the bucket"
        try:
            client = await self._client(project)
            bucket = await self._get(client, name)
        except Exception as err:  # noqa: BLE001
            f = gcp.failure(err, f"storage.buckets.get {name}", "storage.buckets.get")
            return Deleted(False, f.message + unblock, retry_after=f.retry_after)
        if bucket is None:
            return Deleted(True, f"bucket {name} is already gone")
        owner = naming.ownership(fs, bucket.labels, self._cluster)
        if owner != "ours":
            return Deleted(
                True, f"bucket {name} belongs to {naming.owner_text(bucket.labels, self._cluster)}; left untouched"
            )
        try:
            if not await self._in_project(client, name, project):
                return Deleted(True, f"bucket {name} is not in project {project}; left untouched")
        except Exception as err:  # noqa: BLE001
            f = gcp.failure(err, f"storage.buckets.list in project {project}", "storage.buckets.list")
            return Deleted(False, f.message + unblock, retry_after=f.retry_after)

        try:
            empty = await self._is_empty(client, name)
            if not empty and not gcs.force:
                return Deleted(True, _kept(name))
            if not empty:
                deleted, remaining = await self._delete_objects(client, name)
                if remaining:
                    return Deleted(
                        False,
                        f"deleting the objects of bucket {name} (force): {deleted} deleted in this pass",
                        retry_after=1,
                    )
            await gcp.call(lambda: client.bucket(name).delete(force=False, retry=None, timeout=TIMEOUT))
        except gexc.NotFound:
            return Deleted(True, f"bucket {name} is already gone")
        except (gexc.Conflict, gexc.PreconditionFailed):
            # Not empty after all: objects arrived after the check. Real GCS answers 409,
            # fake-gcs-server 412.
            if not gcs.force:
                return Deleted(True, _kept(name))
            return Deleted(
                False, f"bucket {name} received new objects while being deleted; deleting again", retry_after=2
            )
        except Exception as err:  # noqa: BLE001
            f = gcp.failure(err, f"deleting bucket {name}", "storage.buckets.delete and storage.objects.delete")
            return Deleted(False, f.message + unblock, retry_after=f.retry_after)
        log.info("deleted bucket %s of %s/%s", name, fs.metadata.namespace, fs.metadata.name)
        return Deleted(True, f"deleted bucket {name}")

    @staticmethod
    async def _is_empty(client: storage.Client, name: str) -> bool:
        def first() -> bool:
            return (
                next(iter(client.list_blobs(name, max_results=1, versions=True, retry=None, timeout=TIMEOUT)), None)
                is None
            )

        return await gcp.call(first)

    async def _delete_objects(self, client: storage.Client, name: str) -> tuple[int, bool]:
        """Delete object versions until done or the time budget is spent. Returns (deleted, more left)."""
        budget = self._delete_budget

        def run() -> tuple[int, bool]:
            deadline = time.monotonic() + budget
            bucket = client.bucket(name)
            count = 0
            for blob in client.list_blobs(name, versions=True, page_size=1000, retry=None, timeout=TIMEOUT):
                try:
                    bucket.delete_blob(blob.name, generation=blob.generation, retry=None, timeout=TIMEOUT)
                except gexc.NotFound:
                    pass
                count += 1
                if time.monotonic() > deadline:
                    return count, True
            return count, False

        # Retrying the whole batch on a transient error is safe: a deleted version answers 404.
        return await gcp.call(run, retry=gcp.retry_policy(timeout=max(budget * 3, 30.0)))

    def needs_cleanup(self, fs: FeatureStore) -> bool:
        gcs = fs.spec.offline_store.gcs if fs.spec.offline_store else None
        if fs.status.cloud.notebook_reader:  # a retained bucket must lose the notebooks' read first
            return True
        return gcs is not None and not gcs.existing_bucket and gcs.deletion_policy is DeletionPolicy.DELETE


#: Status update that drops the record of the bucket (status.cloud).
FORGET: dict[str, Any] = {
    "cloud": {
        "bucket": None,
        "bucketProject": None,
        "bucketDeletionPolicy": None,
        "bucketForce": None,
        "notebookReader": None,
    }
}


def _change_roles(
    bindings: Any,
    roles: tuple[str, ...],
    member: str,
    change: Callable[[Any, str, str], list[dict[str, Any]] | None],
) -> list[dict[str, Any]] | None:
    """``change`` (with_member/without_member) applied for each role; None when nothing changed."""
    out, changed = list(bindings), False
    for role in roles:
        new = change(out, role, member)
        if new is not None:
            out, changed = new, True
    return out if changed else None


def _elsewhere(name: str, project: str) -> str:
    return (
        f"bucket {name} exists but is not in project {project}: whatever its labels say, the operator never "
        f"adopts (or deletes) a bucket of another project. Set spec.offlineStore.gcs.bucket to another name"
    )


def _kept(name: str) -> str:
    return (
        f"retained: bucket not empty; set spec.offlineStore.gcs.force to delete it. The FeatureStore is removed, "
        f"bucket {name} and its objects are kept"
    )


def _taken(name: str) -> str:
    return (
        f"bucket name {name} is not available: it exists in a project the operator cannot access (bucket names "
        f"are global across all of Cloud Storage). Set spec.offlineStore.gcs.bucket to another name"
    )


def _inaccessible(name: str, project: str, err: BaseException) -> str:
    msg = err.message if isinstance(err, gexc.GoogleAPICallError) else str(err)
    return (
        f"storage.buckets.get {name}: permission denied ({msg}). Either the name is taken by another project "
        f"(bucket names are global: set spec.offlineStore.gcs.bucket to another name) or the operator's identity "
        f"lacks storage.buckets.get in project {project} (grant roles/storage.admin)"
    )
