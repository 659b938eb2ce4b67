"""GcsBackend against a real fake-gcs-server, through the real google-cloud-storage client.

fake-gcs-server keeps objects, bucket existence/deletion (412 on a non-empty bucket) and
versioning, but drops labels, lifecycle and iamConfiguration and has no bucket IAM API. Those
bucket fields and the bucket IAM policy are kept by ``support.iam_fake.GcsBucketOverlay``, an
HTTP proxy in front of it (see its docstring). So what is verified here:

* against fake-gcs-server itself: bucket create/get/delete, object writes at the registry path,
  "non-empty bucket is not deleted" (its own 412; 409 via the overlay's real-GCS mode), forced
  deletion of every object version, transient-error retry;
* against the overlay (our fake of GCS semantics): the create request's payload (also asserted
  on the wire), labels/lifecycle/UBLA/PAP drift and the patch, metageneration preconditions,
  ownership conflicts, a global name taken by another project, bucket IAM read-modify-write with
  etag conflicts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]

from featurestore_operator.api import OperatorConfig, parse_featurestore, resolve  # noqa: E402
from featurestore_operator.backends import naming  # noqa: E402
from featurestore_operator.backends.base import BackendContext, Deleted, Failed, Pending, Ready  # noqa: E402
from featurestore_operator.backends.gcs import OBJECT_ADMIN, GcsBackend, desired_lifecycle  # noqa: E402

from tests.support.gcs_emulator import GcsEmulator  # noqa: E402
from tests.support.iam_fake import GcsBucketOverlay  # noqa: E402

pytestmark = pytest.mark.timeout(120)

PROJECT = "test-project"
GSA = "feast-team-a@test-project.iam.gserviceaccount.com"
CONFIG = OperatorConfig(default_provider="gcp", gcp_project=PROJECT, gcp_region="us-central1")


async def _no_secret(name: str) -> None:
    return None


CTX = BackendContext(config=CONFIG, get_secret=_no_secret)


def assigned(namespace: str, *buckets: str) -> OperatorConfig:
    """CONFIG whose admin policy assigns ``buckets`` (bring your own) to ``namespace``."""
    return CONFIG.model_copy(
        update={"policy": CONFIG.policy.model_validate({"byoAssignments": {namespace: {"buckets": list(buckets)}}})}
    )


def make_fs(name: str = "demo", namespace: str = "team-a", uid: str = "uid-1", **gcs):
    spec = {"project": "demo", "offlineStore": {"gcs": gcs}}
    gsa = gcs.pop("serviceAccount", None)
    if gsa:
        spec["gcp"] = {"serviceAccount": GSA if gsa is True else gsa}
    fs = parse_featurestore(
        {
            "apiVersion": "featurestore.kubeflow.org/v1alpha1",
            "kind": "FeatureStore",
            "metadata": {"name": name, "namespace": namespace, "uid": uid},
            "spec": spec,
        }
    )
    return fs.model_copy(update={"spec": resolve(fs.spec, CONFIG)})


@pytest.fixture(scope="module")
def emulator():
    with GcsEmulator() as gcs:
        yield gcs


@pytest.fixture
def overlay(emulator, monkeypatch):
    emulator.reset()
    with GcsBucketOverlay(emulator) as ov:
        for k, v in ov.env().items():
            monkeypatch.setenv(k, v)
        yield ov


def run(coro):
    return asyncio.run(coro)


def raw_bucket(ov: GcsBucketOverlay, name: str) -> dict:
    r = requests.get(f"{ov.endpoint}/storage/v1/b/{name}", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def raw_patch(ov: GcsBucketOverlay, name: str, body: dict) -> dict:
    r = requests.patch(f"{ov.endpoint}/storage/v1/b/{name}", json=body, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


# --------------------------------------------------------------------------- ensure


def test_creates_bucket_with_ubla_pap_location_labels_lifecycle(overlay):
    fs = make_fs(location="us-east1", lifecycle={"deleteAfterDays": 30})
    out = run(GcsBackend().ensure(fs, CTX))
    assert isinstance(out, Ready), out
    name = naming.bucket_name(fs)
    assert out.endpoint.bucket == name and out.endpoint.registry_path == f"gs://{name}/registry.pb"
    assert "created" in out.message

    # What went over the wire (independent of what any fake stores):
    create = [r for r in overlay.requests if r.method == "POST" and r.path == "/storage/v1/b"]
    assert len(create) == 1
    sent = create[0].body
    assert create[0].query["project"] == PROJECT
    assert sent["name"] == name and sent["location"] == "us-east1"
    assert sent["iamConfiguration"] == {
        "uniformBucketLevelAccess": {"enabled": True},
        "publicAccessPrevention": "enforced",
    }
    assert sent["labels"] == naming.owner_labels(fs)
    assert sent["lifecycle"] == {"rule": [{"action": {"type": "Delete"}, "condition": {"age": 30}}]}

    got = raw_bucket(overlay, name)
    assert got["location"] == "US-EAST1"
    assert got["iamConfiguration"]["uniformBucketLevelAccess"]["enabled"] is True
    assert got["iamConfiguration"]["publicAccessPrevention"] == "enforced"
    assert got["labels"] == {
        "featurestore-namespace": "team-a",
        "featurestore-name": "demo",
        "featurestore-uid": "uid-1",
        "managed-by": "featurestore-operator",
    }
    assert got["lifecycle"]["rule"] == [{"action": {"type": "Delete"}, "condition": {"age": 30}}]
    # the bucket exists in fake-gcs-server itself, not only in the overlay
    assert requests.get(f"{overlay.upstream_endpoint}/storage/v1/b/{name}", timeout=10).status_code == 200


def test_registry_object_writable_at_registry_path(overlay, emulator):
    fs = make_fs()
    out = run(GcsBackend().ensure(fs, CTX))
    assert isinstance(out, Ready)
    bucket, _, key = out.endpoint.registry_path.removeprefix("gs://").partition("/")
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project=PROJECT, credentials=AnonymousCredentials())  # via STORAGE_EMULATOR_HOST
    client.bucket(bucket).blob(key).upload_from_string(b"\x0a\x04demo", content_type="application/octet-stream")
    assert client.bucket(bucket).blob(key).download_as_bytes() == b"\x0a\x04demo"
    # and it really is in fake-gcs-server
    assert emulator.client().bucket(bucket).blob(key).download_as_bytes() == b"\x0a\x04demo"


def test_second_ensure_makes_no_write(overlay):
    fs = make_fs(lifecycle={"deleteAfterDays": 7}, serviceAccount=True)
    backend = GcsBackend()
    assert isinstance(run(backend.ensure(fs, CTX)), Ready)
    name = naming.bucket_name(fs)
    before = raw_bucket(overlay, name)["metageneration"]
    overlay.clear_log()
    out = run(backend.ensure(fs, CTX))
    assert isinstance(out, Ready), out
    assert overlay.writes() == []
    assert [(r.method, r.path) for r in overlay.requests] == [
        ("GET", f"/storage/v1/b/{name}"),
        ("GET", f"/storage/v1/b/{name}/iam"),
    ]
    assert raw_bucket(overlay, name)["metageneration"] == before
    # a fresh backend (restarted operator) does the same
    overlay.clear_log()
    assert isinstance(run(GcsBackend().ensure(fs, CTX)), Ready)
    assert overlay.writes() == []


def test_label_and_lifecycle_drift_restored_user_labels_kept(overlay):
    fs = make_fs(lifecycle={"deleteAfterDays": 30})
    backend = GcsBackend()
    run(backend.ensure(fs, CTX))
    name = naming.bucket_name(fs)
    user_rule = {"action": {"type": "SetStorageClass", "storageClass": "NEARLINE"}, "condition": {"age": 90}}
    raw_patch(overlay, name, {"labels": {"featurestore-uid": None, "team": "ml"}, "lifecycle": {"rule": [user_rule]}})
    overlay.clear_log()
    out = run(backend.ensure(fs, CTX))
    assert isinstance(out, Ready), out
    assert "restored labels, lifecycle" in out.message
    patches = overlay.writes()
    assert len(patches) == 1 and patches[0].method == "PATCH"
    assert "ifMetagenerationMatch" in patches[0].query
    assert set(patches[0].body) == {"labels", "lifecycle"}
    got = raw_bucket(overlay, name)
    assert got["labels"] == {**naming.owner_labels(fs), "team": "ml"}
    assert got["lifecycle"]["rule"] == [user_rule, {"action": {"type": "Delete"}, "condition": {"age": 30}}]
    overlay.clear_log()
    assert isinstance(run(backend.ensure(fs, CTX)), Ready)
    assert overlay.writes() == []


def test_lifecycle_removed_when_spec_drops_it(overlay):
    backend = GcsBackend()
    run(backend.ensure(make_fs(lifecycle={"deleteAfterDays": 30}), CTX))
    fs = make_fs()
    out = run(backend.ensure(fs, CTX))
    assert isinstance(out, Ready) and "lifecycle" in out.message
    assert "lifecycle" not in raw_bucket(overlay, naming.bucket_name(fs))


def test_ubla_and_pap_drift_restored(overlay):
    fs = make_fs()
    backend = GcsBackend()
    run(backend.ensure(fs, CTX))
    name = naming.bucket_name(fs)
    raw_patch(
        overlay,
        name,
        {"iamConfiguration": {"uniformBucketLevelAccess": {"enabled": False}, "publicAccessPrevention": "inherited"}},
    )
    out = run(backend.ensure(fs, CTX))
    assert isinstance(out, Ready) and "uniform bucket-level access" in out.message
    cfg = raw_bucket(overlay, name)["iamConfiguration"]
    assert cfg["uniformBucketLevelAccess"]["enabled"] is True and cfg["publicAccessPrevention"] == "enforced"
    # the patch carried a clean iamConfiguration (no echoed bucketPolicyOnly/lockedTime)
    patch = [r for r in overlay.writes() if r.method == "PATCH"][-1]
    assert patch.body == {
        "iamConfiguration": {"uniformBucketLevelAccess": {"enabled": True}, "publicAccessPrevention": "enforced"}
    }


def test_location_change_is_declined_and_the_bucket_keeps_serving(overlay):
    """The webhook down: a location change reaches the backend. The bucket never moves; Ready with
    reason ImmutableFieldChanged names the field, both values and the fix; no write (issue 29)."""
    fs = make_fs(location="us-east1")
    assert isinstance(run(GcsBackend().ensure(fs, CTX)), Ready)
    overlay.clear_log()
    out = run(GcsBackend().ensure(make_fs(location="europe-west1"), CTX))
    assert isinstance(out, Ready) and out.reason == "ImmutableFieldChanged", out
    assert out.message.startswith(
        "ImmutableFieldChanged: spec.offlineStore.gcs.location cannot be changed on an existing bucket: "
        "it is US-EAST1, the spec asks for EUROPE-WEST1"
    ), out.message
    assert "new FeatureStore" in out.message
    assert raw_bucket(overlay, naming.bucket_name(fs))["location"] == "US-EAST1"
    assert overlay.writes() == []
    same = run(GcsBackend().ensure(make_fs(location="US-EAST1"), CTX))  # case does not matter
    assert isinstance(same, Ready) and same.reason == "Ready", same


def test_concurrent_metadata_change_gives_pending(overlay):
    fs = make_fs()
    backend = GcsBackend()
    run(backend.ensure(fs, CTX))
    name = naming.bucket_name(fs)
    raw_patch(overlay, name, {"labels": {"featurestore-uid": "stale"}})
    overlay.fail_next("PATCH", rf"^/storage/v1/b/{name}$", 412)  # someone changed it in between
    out = run(backend.ensure(fs, CTX))
    assert isinstance(out, Pending) and out.reason == "BucketChanging"
    assert isinstance(run(backend.ensure(fs, CTX)), Ready)
    assert raw_bucket(overlay, name)["labels"]["featurestore-uid"] == "uid-1"


def test_foreign_bucket_is_a_conflict_and_untouched(overlay):
    other = make_fs(name="demo", namespace="team-b", uid="uid-9")
    fs = make_fs(bucket="shared-name-bucket")
    client = overlay.client()
    from google.cloud import storage

    b = storage.Bucket(client, "shared-name-bucket")
    b.labels = naming.owner_labels(other)
    client.create_bucket(b)
    before = raw_bucket(overlay, "shared-name-bucket")
    overlay.clear_log()
    out = run(GcsBackend().ensure(fs, CTX))
    assert isinstance(out, Failed) and out.reason == "Conflict" and not out.retryable
    assert "shared-name-bucket" in out.message and "another FeatureStore" in out.message
    assert "never adopts" in out.message
    # the message lands in this tenant's status and Events: nothing of the other owner's identity
    assert not {"team-b", "uid-9"} & set(re.split(r"[^a-z0-9-]+", out.message)), out.message
    assert overlay.writes() == []
    assert raw_bucket(overlay, "shared-name-bucket") == before
    gone = run(GcsBackend().delete(make_fs(bucket="shared-name-bucket", deletionPolicy="Delete"), CTX))
    assert gone.done and "left untouched" in gone.message
    assert "team-b" not in gone.message and "uid-9" not in gone.message, gone.message


def test_unlabelled_bucket_is_a_conflict(overlay):
    overlay.client().create_bucket("someone-elses-bucket")
    out = run(GcsBackend().ensure(make_fs(bucket="someone-elses-bucket"), CTX))
    assert isinstance(out, Failed) and out.reason == "Conflict"
    assert "no featurestore-operator owner labels" in out.message
    assert overlay.writes() == [w for w in overlay.writes() if w.path == "/storage/v1/b"]  # only our setup create


def test_bucket_of_another_project_403_on_get(overlay):
    overlay.add_foreign_bucket("taken-name")
    out = run(GcsBackend().ensure(make_fs(bucket="taken-name"), CTX))
    assert isinstance(out, Failed) and out.reason == "PermissionDenied"
    assert "global" in out.message and "spec.offlineStore.gcs.bucket" in out.message
    assert overlay.writes() == []


def test_name_taken_between_get_and_create_409(overlay):
    overlay.add_foreign_bucket("raced-name")
    overlay.fail_next("GET", r"^/storage/v1/b/raced-name$", 404)  # not there yet when we look...
    out = run(GcsBackend().ensure(make_fs(bucket="raced-name"), CTX))  # ...taken when we create
    assert isinstance(out, Failed) and out.reason == "Conflict"
    assert "not available" in out.message and "global" in out.message


def test_create_conflict_on_our_own_bucket_goes_on(overlay):
    fs = make_fs()
    backend = GcsBackend()
    run(backend.ensure(fs, CTX))
    name = naming.bucket_name(fs)
    overlay.fail_next("GET", rf"^/storage/v1/b/{name}$", 404)  # a stale read: create answers 409
    out = run(backend.ensure(fs, CTX))
    assert isinstance(out, Ready), out


def test_retained_bucket_taken_back_by_recreated_store(overlay):
    old = make_fs(uid="uid-old")
    run(GcsBackend().ensure(old, CTX))
    new = make_fs(uid="uid-new")
    out = run(GcsBackend().ensure(new, CTX))
    assert isinstance(out, Ready) and "taken back" in out.message
    assert raw_bucket(overlay, naming.bucket_name(new))["labels"]["featurestore-uid"] == "uid-new"


def test_transient_error_is_retried(overlay):
    fs = make_fs()
    overlay.fail_next("GET", r"^/storage/v1/b/[^/]+$", 503)
    out = run(GcsBackend().ensure(fs, CTX))
    assert isinstance(out, Ready), out


def test_create_permission_denied_names_permission(overlay):
    overlay.fail_next("POST", r"^/storage/v1/b$", 403)
    out = run(GcsBackend().ensure(make_fs(), CTX))
    assert isinstance(out, Failed) and out.reason == "PermissionDenied"
    assert "storage.buckets.create" in out.message


# --------------------------------------------------------------------------- bucket IAM


def test_grants_object_admin_once_keeping_other_bindings(overlay):
    fs = make_fs(serviceAccount=True)
    backend = GcsBackend()
    out = run(backend.ensure(fs, CTX))
    assert isinstance(out, Ready) and "granted roles/storage.objectAdmin" in out.message
    name = naming.bucket_name(fs)
    policy = overlay.policy(name)
    roles = {b["role"]: b["members"] for b in policy["bindings"]}
    assert roles[OBJECT_ADMIN] == [f"serviceAccount:{GSA}"]
    assert "roles/storage.legacyBucketOwner" in roles  # untouched
    assert policy["version"] == 3
    sets = [r for r in overlay.writes() if r.path.endswith("/iam")]
    assert len(sets) == 1 and sets[0].body["etag"]  # written with the etag it read
    overlay.clear_log()
    assert isinstance(run(backend.ensure(fs, CTX)), Ready)
    assert overlay.writes() == []


def test_iam_etag_conflict_rereads_and_reapplies(overlay):
    fs = make_fs(serviceAccount=True)
    name = naming.bucket_name(fs)
    overlay.race_iam(name, times=2)
    out = run(GcsBackend().ensure(fs, CTX))
    assert isinstance(out, Ready), out
    sets = [r for r in overlay.requests if r.method == "PUT" and r.path.endswith("/iam")]
    assert [r.status for r in sets] == [412, 412, 200]
    members = {m for b in overlay.policy(name)["bindings"] for m in b["members"]}
    assert f"serviceAccount:{GSA}" in members
    assert {"user:racer1@example.com", "user:racer2@example.com"} <= members  # the other writer's changes kept


def test_iam_permission_denied_gives_command(overlay):
    fs = make_fs(serviceAccount=True)
    overlay.fail_next("PUT", r"/iam$", 403)
    out = run(GcsBackend().ensure(fs, CTX))
    assert isinstance(out, Failed) and out.reason == "PermissionDenied"
    assert f"gcloud storage buckets add-iam-policy-binding gs://{naming.bucket_name(fs)}" in out.message
    assert f"--member=serviceAccount:{GSA}" in out.message


def test_plain_fake_gcs_server_has_no_bucket_iam(emulator, monkeypatch):
    """Against fake-gcs-server without the overlay's IAM (its /iam answers 404), the binding is
    skipped with a note in emulator mode instead of failing the store."""
    emulator.reset()
    with GcsBucketOverlay(emulator, iam=False) as ov:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", ov.endpoint)
        out = run(GcsBackend().ensure(make_fs(serviceAccount=True), CTX))
    assert isinstance(out, Ready) and "emulator has no IAM API" in out.message


# --------------------------------------------------------------------------- delete


def test_retain_keeps_bucket(overlay):
    fs = make_fs()
    backend = GcsBackend()
    run(backend.ensure(fs, CTX))
    assert not backend.needs_cleanup(fs)
    out = run(backend.delete(fs, CTX))
    assert out == Deleted(True, f"bucket {naming.bucket_name(fs)} retained (deletionPolicy Retain)")
    raw_bucket(overlay, naming.bucket_name(fs))


def test_delete_empty_bucket(overlay):
    fs = make_fs(deletionPolicy="Delete")
    backend = GcsBackend()
    assert backend.needs_cleanup(fs)
    run(backend.ensure(fs, CTX))
    out = run(backend.delete(fs, CTX))
    assert out.done and "deleted bucket" in out.message
    assert (
        requests.get(f"{overlay.upstream_endpoint}/storage/v1/b/{naming.bucket_name(fs)}", timeout=10).status_code
        == 404
    )
    assert run(backend.delete(fs, CTX)).done  # idempotent


@pytest.mark.parametrize("real_gcs_code", [False, True], ids=["fake-gcs-412", "gcs-409"])
def test_delete_non_empty_without_force_keeps_it(emulator, monkeypatch, real_gcs_code):
    emulator.reset()
    with GcsBucketOverlay(emulator, real_delete_conflict=real_gcs_code) as ov:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", ov.endpoint)
        fs = make_fs(deletionPolicy="Delete")
        backend = GcsBackend()
        run(backend.ensure(fs, CTX))
        name = naming.bucket_name(fs)
        ov.client().bucket(name).blob("offline/data.parquet").upload_from_string(b"x")
        out = run(backend.delete(fs, CTX))
        assert out.done
        assert out.message.startswith("retained: bucket not empty; set spec.offlineStore.gcs.force to delete it")
        assert name in out.message
        assert ov.client().bucket(name).blob("offline/data.parquet").download_as_bytes() == b"x"

        # the race: the object arrives after the emptiness check -> the bucket delete itself refuses
        ov.client().bucket(name).blob("offline/data.parquet").delete()
        real = backend._is_empty

        async def empty_then_write(client, bucket_name):
            result = await real(client, bucket_name)
            await asyncio.to_thread(ov.client().bucket(name).blob("late").upload_from_string, b"y")
            return result

        backend._is_empty = empty_then_write  # type: ignore[method-assign]
        out = run(backend.delete(fs, CTX))
        deletes = [r for r in ov.requests if r.method == "DELETE" and r.path == f"/storage/v1/b/{name}"]
        assert deletes[-1].status == (409 if real_gcs_code else 412)
        assert out.done and out.message.startswith("retained: bucket not empty")
        raw_bucket(ov, name)


def test_force_deletes_all_objects_then_bucket(overlay):
    """fake-gcs-server cannot permanently delete one generation (memory backend: deleting the live
    one archives it, a noncurrent one answers 404), so versioned buckets are not exercised end to
    end; the wire shows the backend lists with versions and deletes by generation, as GCS needs."""
    fs = make_fs(deletionPolicy="Delete", force=True)
    backend = GcsBackend(delete_budget=0.0)  # one object per pass: exercises the multi-pass path
    run(backend.ensure(fs, CTX))
    name = naming.bucket_name(fs)
    bucket = overlay.client().bucket(name)
    for key in ("registry.pb", "offline/a.parquet", "offline/b.parquet"):
        bucket.blob(key).upload_from_string(key.encode())
    generations = {b.name: b.generation for b in overlay.client().list_blobs(name)}
    overlay.clear_log()
    passes = 0
    while True:
        out = run(backend.delete(fs, CTX))
        passes += 1
        if out.done:
            break
        assert "deleting the objects" in out.message
        assert passes < 10
    assert passes >= 3
    assert out.message == f"deleted bucket {name}"
    assert requests.get(f"{overlay.upstream_endpoint}/storage/v1/b/{name}", timeout=10).status_code == 404
    lists = [r for r in overlay.requests if r.method == "GET" and r.path == f"/storage/v1/b/{name}/o"]
    assert lists and all(r.query.get("versions") == "True" for r in lists)
    deletes = {
        r.path.rsplit("/o/", 1)[1]: r.query.get("generation")
        for r in overlay.requests
        if r.method == "DELETE" and "/o/" in r.path
    }
    assert deletes == {k: str(g) for k, g in generations.items()}


def test_delete_never_touches_foreign_bucket(overlay):
    from google.cloud import storage

    other = make_fs(namespace="team-b", uid="uid-9")
    client = overlay.client()
    b = storage.Bucket(client, "foreign-bucket")
    b.labels = naming.owner_labels(other)
    client.create_bucket(b)
    fs = make_fs(bucket="foreign-bucket", deletionPolicy="Delete", force=True)
    overlay.clear_log()
    out = run(GcsBackend().delete(fs, CTX))
    assert out.done and "left untouched" in out.message and "team-b" not in out.message
    assert overlay.writes() == []
    raw_bucket(overlay, "foreign-bucket")


def test_delete_permission_denied_keeps_finalizer_and_says_how_to_unblock(overlay):
    fs = make_fs(deletionPolicy="Delete")
    backend = GcsBackend()
    run(backend.ensure(fs, CTX))
    overlay.fail_next("DELETE", rf"^/storage/v1/b/{naming.bucket_name(fs)}$", 403)
    out = run(backend.delete(fs, CTX))
    assert not out.done
    assert "storage.buckets.delete" in out.message and "deletionPolicy: Retain" in out.message


# --------------------------------------------------------------------------- pure helpers


def test_desired_lifecycle_keeps_user_rules():
    user = {"action": {"type": "Delete"}, "condition": {"age": 5, "matchesPrefix": ["tmp/"]}}
    ours = {"action": {"type": "Delete"}, "condition": {"age": 30}}
    assert desired_lifecycle([user, ours], 10) == [user, {"action": {"type": "Delete"}, "condition": {"age": 10}}]
    assert desired_lifecycle([user, ours], None) == [user]


# --------------------------------------------------------------------------- tenant boundaries (issue 16)


def _forged(overlay: GcsBucketOverlay, fs, project: str) -> str:
    """A bucket with ``fs``'s default name and owner labels, created first by someone in ``project``
    who lets anyone read it (the attack: a predictable name plus labels anyone can write)."""
    from google.cloud import storage

    client = overlay.client(project=project)
    name = naming.bucket_name(fs)
    b = storage.Bucket(client, name)
    b.labels = naming.owner_labels(fs)
    client.create_bucket(b, project=project)
    return name


def test_forged_labels_in_another_project_is_a_conflict(overlay):
    """Before: a bucket of another project carrying forged owner labels was taken as ours, so the
    registry (pickled functions) and offline data went to the attacker. Now: not in our project,
    so a Conflict, never adopted, never deleted."""
    fs = make_fs(uid="uid-1", deletionPolicy="Delete")
    name = _forged(overlay, fs, "evil-project")
    before = raw_bucket(overlay, name)
    overlay.clear_log()
    out = run(GcsBackend(CONFIG).ensure(fs, CTX))
    assert isinstance(out, Failed) and out.reason == "Conflict", out
    assert "not in project test-project" in out.message
    deleted = run(GcsBackend(CONFIG).delete(fs, CTX))
    assert deleted.done and "left untouched" in deleted.message
    assert overlay.writes() == [] and raw_bucket(overlay, name) == before


def test_two_clusters_never_take_each_others_bucket(overlay):
    cluster_a = CONFIG.model_copy(update={"cluster_id": "cluster-a"})
    cluster_b = CONFIG.model_copy(update={"cluster_id": "cluster-b"})
    fs_a = make_fs(uid="uid-a", deletionPolicy="Delete")
    assert isinstance(run(GcsBackend(cluster_a).ensure(fs_a, CTX)), Ready)
    name = naming.bucket_name(fs_a)
    assert raw_bucket(overlay, name)["labels"]["featurestore-cluster"] == "cluster-a"
    overlay.clear_log()
    fs_b = make_fs(uid="uid-b", deletionPolicy="Delete")  # same namespace/name in the other cluster
    out = run(GcsBackend(cluster_b).ensure(fs_b, CTX))
    assert isinstance(out, Failed) and out.reason == "Conflict"
    assert run(GcsBackend(cluster_b).delete(fs_b, CTX)).done
    assert overlay.writes() == [] and raw_bucket(overlay, name)["labels"]["featurestore-uid"] == "uid-a"


def test_existing_bucket_is_used_verified_and_never_changed(overlay):
    """Bring your own (issue 18 item 6)."""
    client = overlay.client()
    client.create_bucket("terraform-bucket")
    overlay.clear_log()
    fs = make_fs(existingBucket="terraform-bucket", serviceAccount=True)
    backend = GcsBackend(assigned("team-a", "terraform-bucket", "no-such-bucket", "their-bucket"))
    out = run(backend.ensure(fs, CTX))
    assert isinstance(out, Ready) and out.endpoint.bucket == "terraform-bucket" and "not managed" in out.message
    assert not backend.needs_cleanup(fs) and "left untouched" in run(backend.delete(fs, CTX)).message
    assert overlay.writes() == [] and overlay.policy("terraform-bucket") == {}

    out = run(backend.ensure(make_fs(existingBucket="no-such-bucket"), CTX))
    assert isinstance(out, Failed) and out.reason == "BucketNotFound" and "existingBucket" in out.message
    elsewhere = overlay.client(project="evil-project")
    elsewhere.create_bucket("their-bucket", project="evil-project")
    out = run(backend.ensure(make_fs(existingBucket="their-bucket"), CTX))
    assert isinstance(out, Failed) and out.reason == "NotAllowed"
    assert overlay.writes() == [w for w in overlay.writes() if w.path == "/storage/v1/b"]  # only the setup creates


def _carry(fs, outcome):
    return fs.model_copy(update={"status": outcome.status.applied_to(fs.status)})


def test_changed_bucket_handles_the_old_one_by_its_policy(overlay):
    """Before: changing spec.offlineStore.gcs.bucket left the old bucket behind whatever its policy."""
    backend = GcsBackend(CONFIG)
    fs = make_fs(bucket="team-a_first", deletionPolicy="Delete")
    fs = _carry(fs, run(backend.ensure(fs, CTX)))
    assert fs.status.cloud.bucket == "team-a_first" and fs.status.cloud.bucket_project == PROJECT
    moved = make_fs(bucket="team-a_second", deletionPolicy="Retain").model_copy(update={"status": fs.status})
    out = run(backend.ensure(moved, CTX))
    assert out.reason == "RetiredOldBucket" and "deleted bucket team-a_first" in out.message
    moved = _carry(moved, out)
    moved = _carry(moved, run(backend.ensure(moved, CTX)))
    assert moved.status.cloud.bucket == "team-a_second"
    names = {b.name for b in overlay.client().list_buckets()}
    assert "team-a_first" not in names and "team-a_second" in names
    # Retain (the default): the old bucket is kept, only the record moves on
    third = make_fs(bucket="team-a_third").model_copy(update={"status": moved.status})
    out = run(backend.ensure(third, CTX))
    assert out.reason == "RetiredOldBucket" and "retained" in out.message
    assert "team-a_second" in {b.name for b in overlay.client().list_buckets()}


def test_invalid_spec_still_deletes_the_recorded_bucket(overlay):
    from featurestore_operator.backends.recorded import recorded_store

    backend = GcsBackend(CONFIG)
    fs = make_fs(deletionPolicy="Delete")
    fs = _carry(fs, run(backend.ensure(fs, CTX)))
    name = naming.bucket_name(fs)
    body = {
        "metadata": fs.metadata.model_dump(),
        "spec": {"project": "x", "gcp": {"project": "Not Valid"}},
        "status": fs.status.model_dump(mode="json", by_alias=True),
    }
    stub = recorded_store(body)
    assert stub is not None and backend.needs_cleanup(stub)
    out = run(backend.delete(stub, CTX))
    assert out.done and f"deleted bucket {name}" in out.message
    assert name not in {b.name for b in overlay.client().list_buckets()}


# --------------------------------------------------------------------------- bring your own (issue 25)


def test_existing_bucket_of_another_namespace_is_refused_and_never_granted(overlay, monkeypatch):
    """Before: namespace attacker named the victim's (operator-created) bucket as existingBucket and got a
    Ready offline store on it: its Feast pods read and wrote the victim's data and registry."""
    victim = make_fs(
        name="prod",
        namespace="victim",
        uid="uid-victim",
        serviceAccount="feast-victim@test-project.iam.gserviceaccount.com",
    )
    assert isinstance(run(GcsBackend(CONFIG).ensure(victim, CTX)), Ready)
    bucket = naming.bucket_name(victim)
    iam_before = overlay.policy(bucket)
    attacker_gsa = "feast-attacker@test-project.iam.gserviceaccount.com"
    attack = make_fs(
        name="thief", namespace="attacker", uid="uid-attacker", existingBucket=bucket, serviceAccount=attacker_gsa
    )
    overlay.clear_log()

    def refused(out, reason: str) -> None:
        assert isinstance(out, Failed) and out.reason == reason, out
        assert overlay.writes() == [] and overlay.policy(bucket) == iam_before
        assert attacker_gsa not in str(overlay.policy(bucket))

    out = run(GcsBackend(CONFIG).ensure(attack, CTX))
    refused(out, "PolicyViolation")
    assert "byoAssignments" in out.message and "existingBucket" in out.message

    # the backend asks the BYO verdict itself: nothing is read even when the pass's policy verdict
    # (handed over by reconcile) says nothing
    from featurestore_operator.backends.policy import Verdict

    out = run(GcsBackend(CONFIG).ensure(attack, dataclasses.replace(CTX, verdict=Verdict())))
    refused(out, "PolicyViolation")
    assert overlay.requests == [], "no request about an unassigned bucket"

    # an assignment that (too widely) covers it still never makes another namespace's bucket "existing"
    out = run(GcsBackend(assigned("*", "*")).ensure(attack, CTX))
    refused(out, "NotAllowed")
    assert "another namespace" in out.message
