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

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import storage  # type: ignore[attr-defined]

from ..api import DeletionPolicy, FeatureStore, OperatorConfig, immutable
from ..api.resolve import ResolvedGcs, gcs_of
from ..api.spec import GcsSpec
from ..api.status import CloudStatus
from ..render import OfflineEndpoint
from . import gcp, naming, notebook_access
from .base import BackendContext, Deleted, Failed, Pending, Ready, StatusUpdate
from .policy import byo_refusal, refusal
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


@dataclass
class _Pass:
    """What one ensure pass learned so far (the steps fill it in)."""

    fs: FeatureStore
    target: ResolvedGcs
    client: storage.Client
    name: str
    bucket: storage.Bucket | None = None
    created: bool = False
    notes: list[str] = field(default_factory=list)
    #: immutable fields the spec changed (api/immutable.py), declined
    declined: list[str] = field(default_factory=list)
    #: status.cloud.notebookReader, when this pass changed it
    reader: StatusUpdate = field(default_factory=StatusUpdate)


def _target(fs: FeatureStore) -> ResolvedGcs | Failed:
    """The bucket spec and its project (resolve() guarantees both; Failed for a caller that skipped it)."""
    if not (fs.spec.offline_store and fs.spec.offline_store.gcs):
        return Failed("InvalidSpec", "GcsBackend needs spec.offlineStore.gcs")
    target = gcs_of(fs.spec)
    if target is None:
        return Failed("InvalidSpec", "spec.gcp.project is required for a GCS bucket (or the operator's gcpProject)")
    return target


def _ready(p: _Pass) -> Ready[OfflineEndpoint]:
    """The bucket serves: its endpoint, what this pass did, and the status record (when new)."""
    fs, gcs, name = p.fs, p.target.spec, p.name
    endpoint = OfflineEndpoint(bucket=name)
    message = f"bucket {name}; registry {endpoint.registry_path}"
    record = CloudStatus(
        bucket=name,
        bucket_project=p.target.project,
        bucket_deletion_policy=gcs.deletion_policy.value,
        bucket_force=gcs.force,
    )
    rec = fs.status.cloud
    known = (rec.bucket, rec.bucket_project, rec.bucket_deletion_policy, rec.bucket_force) == (
        record.bucket,
        record.bucket_project,
        record.bucket_deletion_policy,
        record.bucket_force,
    )
    message += f" ({'; '.join(p.notes)})" if p.notes else ""
    if p.declined:
        message = (
            f"ImmutableFieldChanged: {'; '.join(p.declined)}. The bucket keeps serving unchanged; revert the "
            f"field, or create a new FeatureStore (a new bucket). {message}"
        )
        log.warning("%s/%s: %s", fs.metadata.namespace, fs.metadata.name, message)
    return Ready(
        endpoint,
        message,
        status=(StatusUpdate() if known else StatusUpdate(cloud=record)) | p.reader,
        reason="ImmutableFieldChanged" if p.declined else "Ready",
    )


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
        self._clients = gcp.LazyClients(client_factory or default_client_factory)
        self._delete_budget = delete_budget
        self._iam_attempts = iam_attempts
        self._cluster = config.cluster_id if config else None
        #: (bucket, project) pairs already seen in the project's listing: a bucket never moves.
        self._in_projects: set[tuple[str, str]] = set()

    async def _client(self, project: str) -> storage.Client:
        return await self._clients.get(project)

    # -- ensure ---------------------------------------------------------------------------------

    async def ensure(self, fs: FeatureStore, ctx: BackendContext) -> Ready[OfflineEndpoint] | Pending | Failed:
        """The steps of the module docstring: refuse, retire an old bucket, bring-your-own, get or
        create, check an existing bucket (owner, drift, immutable fields), grant, report."""
        target = _target(fs)
        if isinstance(target, Failed):
            return target
        refused = refusal(fs, ctx, self.config)
        if refused:  # checked here too: the webhook can be down or bypassed
            return Failed("PolicyViolation", f"refused by the admin policy: {refused}", retry_after=300)
        name = naming.bucket_name(fs)
        old = retired_bucket(fs, None if target.spec.existing_bucket else name, target.project)
        if old is not None:  # bucket/project changed: the old bucket first, by its deletion policy
            return await self._retire(old, ctx, name)
        try:
            client = await self._client(target.project)
        except Exception as err:  # noqa: BLE001 - e.g. no default credentials
            return gcp.failure(err, "creating the Cloud Storage client")
        if target.spec.existing_bucket:
            return await self._existing(fs, client, name, target.project)
        pass_ = _Pass(fs, target, client, name)
        found = await self._get_or_create(pass_)
        if found is not None:
            return found
        checked = await self._check_existing(pass_)
        if checked is not None:
            return checked
        granted = await self._grant_gsa(pass_)
        if granted is not None:
            return granted
        reader = await self._grant_notebook_reader(pass_, ctx)
        if reader is not None:
            return reader
        return _ready(pass_)

    async def _get_or_create(self, p: _Pass) -> Failed | None:
        """``p.bucket`` read, or created when missing (``p.created``); Failed when neither works."""
        try:
            p.bucket = await self._get(p.client, p.name)
        except (gexc.Forbidden, gexc.PermissionDenied) as err:
            return Failed("PermissionDenied", _inaccessible(p.name, p.target.project, err), retry_after=300)
        except Exception as err:  # noqa: BLE001
            return gcp.failure(err, f"storage.buckets.get {p.name}", "storage.buckets.get")
        if p.bucket is not None:
            return None
        return await self._create(p)

    async def _create(self, p: _Pass) -> Failed | None:
        fs, name, project = p.fs, p.name, p.target.project
        try:
            p.bucket = await gcp.call(
                lambda: p.client.create_bucket(
                    self._new_bucket(p.client, fs, p.target.spec, name),
                    project=project,
                    location=p.target.spec.location,
                    retry=None,
                    timeout=TIMEOUT,
                )
            )
        except gexc.Conflict:
            # Exists after all: our own earlier create that answered late, or a name taken
            # anywhere in GCS. Look again; only a bucket we can read and own goes on.
            try:
                p.bucket = await self._get(p.client, name)
            except (gexc.Forbidden, gexc.PermissionDenied):
                p.bucket = None
            except Exception as err:  # noqa: BLE001
                return gcp.failure(err, f"storage.buckets.get {name}", "storage.buckets.get")
            return Failed("Conflict", _taken(name), retry_after=300) if p.bucket is None else None
        except Exception as err:  # noqa: BLE001
            return gcp.failure(err, f"storage.buckets.create {name} in project {project}", "storage.buckets.create")
        p.created = True
        self._in_projects.add((name, project))
        p.notes.append("created")
        log.info("created bucket %s in project %s for %s/%s", name, project, fs.metadata.namespace, fs.metadata.name)
        return None

    async def _check_existing(self, p: _Pass) -> Failed | Pending | None:
        """A bucket the operator did not create in this pass: in the project, ours (or retained by an
        earlier store of this name), its drift patched back, its immutable fields compared."""
        if p.created or p.bucket is None:
            return None
        name, project, bucket = p.name, p.target.project, p.bucket
        try:
            in_project = await self._in_project(p.client, name, project)
        except Exception as err:  # noqa: BLE001
            return gcp.failure(err, f"storage.buckets.list in project {project}", "storage.buckets.list")
        if not in_project:
            return Failed("Conflict", _elsewhere(name, project), retry_after=300)
        owner = naming.ownership(p.fs, bucket.labels, self._cluster)
        if owner == "foreign":
            return Failed(
                "Conflict",
                f"bucket {name} already exists and belongs to {naming.owner_text(bucket.labels, self._cluster)}; "
                "the operator never adopts a bucket it did not create for this FeatureStore. Set "
                "spec.offlineStore.gcs.bucket to another name, or delete that bucket",
                retry_after=300,
            )
        if owner == "retained":
            p.notes.append("taken back from an earlier FeatureStore of this name (retained on deletion)")
        try:
            changed = await self._fix_drift(p.client, p.fs, p.target.spec, bucket)
        except gexc.PreconditionFailed:
            return Pending("BucketChanging", f"bucket {name} changed while being updated; looking again", retry_after=2)
        except Exception as err:  # noqa: BLE001
            return gcp.failure(err, f"storage.buckets.patch {name}", "storage.buckets.update")
        if changed:
            p.notes.append("restored " + ", ".join(changed))
        p.declined = immutable_changes(p.target.spec, bucket)
        return None

    async def _grant_gsa(self, p: _Pass) -> Failed | None:
        """``spec.gcp.serviceAccount`` gets objectAdmin on the bucket."""
        gsa = p.fs.spec.gcp.service_account
        if not gsa:
            return None
        name, member = p.name, f"serviceAccount:{gsa}"
        try:
            granted = await self._grant(p.client, name, member)
        except gexc.NotFound:
            if not _emulated():
                return Failed("CloudError", f"storage.buckets.getIamPolicy {name}: bucket not found", retryable=True)
            granted = False
            p.notes.append("bucket IAM skipped: the storage emulator has no IAM API")
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
            p.notes.append(f"granted {OBJECT_ADMIN} and {BUCKET_READER} to {gsa}")
        return None

    async def _grant_notebook_reader(self, p: _Pass, ctx: BackendContext) -> Failed | None:
        """The namespace's notebook GSA gets read (objectViewer + legacyBucketReader); a recorded one no
        longer wanted loses it (backends/notebook_access.py)."""
        name = p.name
        try:
            status, note = await self._notebook_reader(p.fs, ctx, p.client, name)
        except (gexc.Forbidden, gexc.PermissionDenied) as err:
            return Failed(
                "PermissionDenied",
                f"granting {notebook_access.OBJECT_VIEWER} on bucket {name} to the notebooks' GSA: permission "
                f"denied ({err.message}); the operator needs storage.buckets.getIamPolicy/setIamPolicy",
                retry_after=300,
            )
        except Exception as err:  # noqa: BLE001
            return gcp.failure(err, f"storage.buckets.setIamPolicy {name}", "storage.buckets.setIamPolicy")
        if note:
            p.notes.append(note)
        p.reader = status
        return None

    async def _notebook_reader(
        self, fs: FeatureStore, ctx: BackendContext, client: storage.Client, name: str
    ) -> tuple[StatusUpdate, str]:
        """Grant read to the namespace's notebook GSA, revoke a recorded one that is no longer wanted.
        Returns (status update, note); raises what the IAM calls raise."""
        want = await notebook_access.wanted(fs, ctx)
        recorded = fs.status.cloud.notebook_reader
        notes = [want.note] if want.note else []
        if recorded and recorded != want.member and notebook_access.revocable(fs, ctx.config, recorded):
            roles = notebook_access.READER_ROLES
            if await self._modify_iam(client, name, lambda b: _change_roles(b, roles, recorded, without_member)):
                notes.append(f"revoked {', '.join(roles)} from {recorded}")
        if want.member and await self._grant(client, name, want.member, notebook_access.READER_ROLES):
            notes.append("granted")
        status = (
            StatusUpdate() if recorded == want.member else StatusUpdate(cloud=CloudStatus(notebook_reader=want.member))
        )
        return status, ": ".join(notes)

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

    def _new_bucket(self, client: storage.Client, fs: FeatureStore, gcs: GcsSpec, name: str) -> storage.Bucket:
        bucket = storage.Bucket(client, name)
        bucket.labels = naming.owner_labels(fs, self._cluster)
        bucket.iam_configuration.uniform_bucket_level_access_enabled = True
        bucket.iam_configuration.public_access_prevention = PAP_ENFORCED
        bucket.lifecycle_rules = desired_lifecycle([], gcs.lifecycle.delete_after_days if gcs.lifecycle else None)
        return bucket

    async def _fix_drift(
        self, client: storage.Client, fs: FeatureStore, gcs: GcsSpec, bucket: storage.Bucket
    ) -> list[str]:
        """Patch back what differs from the spec; returns the names of what changed (no call if none).

        The patch goes through a fresh Bucket holding only the changed fields, so it never echoes
        read-only parts (bucketPolicyOnly, lockedTime) back, and never removes user-added labels.
        """
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
        self, client: storage.Client, name: str, change_bindings: Callable[[Any], list[dict[str, Any]] | None]
    ) -> bool:
        """Read-modify-write of the bucket IAM policy (version 3); True when it wrote (``change_bindings``
        returns None when nothing is to change)."""
        bucket = client.bucket(name)

        def change(policy: Any) -> Any:
            bindings = change_bindings(policy.bindings)
            if bindings is None:
                return None
            policy.bindings = [{**b, "members": set(b["members"])} for b in bindings]
            policy.version = 3
            return policy

        return await gcp.read_modify_write(
            f"bucket {name}",
            lambda: gcp.call(lambda: bucket.get_iam_policy(requested_policy_version=3, retry=None, timeout=TIMEOUT)),
            change,
            lambda policy: gcp.call(lambda: bucket.set_iam_policy(policy, retry=None, timeout=TIMEOUT)),
            self._iam_attempts,
        )

    # -- delete ---------------------------------------------------------------------------------

    async def delete(self, fs: FeatureStore, ctx: BackendContext) -> Deleted:
        revoked = await self._revoke_reader(fs, ctx)
        if not revoked.done:
            return revoked
        result = await self._delete(fs)
        # what the revocation said (e.g. the command an admin must run) is not lost to the bucket's message
        message = "; ".join(m for m in (revoked.message, result.message) if m)
        if result.done and fs.status.cloud.bucket == naming.bucket_name(fs):
            return Deleted(True, message, status=FORGET)
        return replace(result, message=message)

    async def _revoke_reader(self, fs: FeatureStore, ctx: BackendContext) -> Deleted:
        """Remove the notebooks' read (status.cloud.notebookReader) from the store's bucket, so a
        retained bucket keeps no reader. Never blocks deletion for good: a refusal says what to run."""
        rec = fs.status.cloud
        reader, name, project = rec.notebook_reader, rec.bucket, rec.bucket_project
        if not (reader and name and project) or name != naming.bucket_name(fs):
            return Deleted(True)
        if not notebook_access.revocable(fs, ctx.config, reader):
            return Deleted(True, f"recorded notebook reader {reader} is not this namespace's; left untouched")
        role, roles = notebook_access.OBJECT_VIEWER, notebook_access.READER_ROLES

        async def remove() -> object:
            client = await self._client(project)
            return await self._modify_iam(client, name, lambda b: _change_roles(b, roles, reader, without_member))

        by_hand = f"gcloud storage buckets remove-iam-policy-binding gs://{name} --member={reader} --role={role}"
        return await gcp.revoke(remove(), f"remove {role} of {reader} from bucket {name}", by_hand)

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
        try:
            client = await self._client(project)
            bucket = await self._get(client, name)
        except Exception as err:  # noqa: BLE001
            f = gcp.failure(err, f"storage.buckets.get {name}", "storage.buckets.get")
            return Deleted(False, f.message + UNBLOCK, retry_after=f.retry_after)
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
            return Deleted(False, f.message + UNBLOCK, retry_after=f.retry_after)

        return await self._delete_bucket(fs, gcs, client, name)

    async def _delete_bucket(self, fs: FeatureStore, gcs: GcsSpec, client: storage.Client, name: str) -> Deleted:
        """Our bucket, in its project: delete it when empty; with ``force`` its objects first (in
        bounded batches per pass); a non-empty one without ``force`` is kept."""
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
            return Deleted(False, f.message + UNBLOCK, retry_after=f.retry_after)
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


#: How to let a FeatureStore go whose bucket cannot be deleted now.
UNBLOCK = "; or set spec.offlineStore.gcs.deletionPolicy: Retain to let the FeatureStore go and keep the bucket"

#: Status update that drops the record of the bucket (status.cloud).
FORGET = StatusUpdate(
    cloud=CloudStatus(
        bucket=None, bucket_project=None, bucket_deletion_policy=None, bucket_force=None, notebook_reader=None
    )
)


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


#: How each immutable field (the table: api/immutable.py) reads on a bucket.
OBSERVED: dict[str, Callable[[storage.Bucket], object]] = {"location": lambda bucket: bucket.location or None}


def immutable_changes(gcs: GcsSpec, bucket: storage.Bucket) -> list[str]:
    """The spec's immutable fields (api/immutable.py) that differ from the existing ``bucket``."""
    have = {r.field: r.norm(OBSERVED[r.field](bucket)) for r in immutable.rows(immutable.GCS)}
    return [
        f"{path} cannot be changed on an existing bucket: it is {was}, the spec asks for {want}"
        for path, was, want in immutable.differences(immutable.GCS, gcs, have)
    ]
