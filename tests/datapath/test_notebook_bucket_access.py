"""Notebook identity on GCP (backends/notebook_access.py) against the ENFORCING GCS stand-in.

fake-gcs-server behind ``GcsBucketOverlay(callers=...)``: every call carries a bearer token minted by
a ``TokenBook`` (as the GKE metadata stand-in mints them per KSA -> GSA), and is answered by the
bucket's IAM policy as GCS answers it (401 anonymous, 403 without the permission). The operator holds
roles/storage.admin on the project (as its GSA does on GKE); the store's GSA, the namespace's
notebook GSA (default-editor's Workload Identity annotation) and another namespace's GSA read and
write only what their grants say.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import requests
from featurestore_operator.api import OperatorConfig, parse_featurestore, resolve
from featurestore_operator.backends import naming
from featurestore_operator.backends.base import BackendContext, Ready
from featurestore_operator.backends.gcs import BUCKET_READER, OBJECT_ADMIN, GcsBackend
from featurestore_operator.backends.notebook_access import OBJECT_VIEWER, READER_ROLES

from tests.support.gcs_emulator import GcsEmulator
from tests.support.gke_metadata import TokenBook
from tests.support.iam_fake import ROLE_PERMISSIONS, GcsBucketOverlay

pytestmark = pytest.mark.timeout(120)

PROJECT = "test-project"
NS, OTHER_NS = "team-a", "team-b"
STORE_GSA = f"feast-{NS}@{PROJECT}.iam.gserviceaccount.com"
NOTEBOOK_GSA = f"kf-{NS}@{PROJECT}.iam.gserviceaccount.com"
OTHER_GSA = f"kf-{OTHER_NS}@{PROJECT}.iam.gserviceaccount.com"
OPERATOR = f"serviceAccount:fso@{PROJECT}.iam.gserviceaccount.com"
PATTERNS = ["{accountId}@{project}.iam.gserviceaccount.com", "kf-{namespace}@{project}.iam.gserviceaccount.com"]


def config(**policy: Any) -> OperatorConfig:
    base = OperatorConfig(default_provider="gcp", gcp_project=PROJECT, gcp_region="us-central1")
    merged = {"serviceAccountPatterns": PATTERNS, **policy}
    return base.model_copy(update={"policy": base.policy.model_validate(merged)})


def make_fs(name: str = "demo", namespace: str = NS, cfg: OperatorConfig | None = None, **cloud: Any):
    fs = parse_featurestore(
        {
            "apiVersion": "featurestore.kubeflow.org/v1alpha1",
            "kind": "FeatureStore",
            "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}"},
            "spec": {
                "project": "demo",
                "offlineStore": {"gcs": {}},
                "gcp": {"serviceAccount": f"feast-{namespace}@{PROJECT}.iam.gserviceaccount.com"},
            },
            "status": {"cloud": cloud} if cloud else {},
        }
    )
    return fs.model_copy(update={"spec": resolve(fs.spec, cfg or config())})


def ctx(cfg: OperatorConfig, gsa: str | None) -> BackendContext:
    """A namespace whose default-editor is annotated with ``gsa`` (None: not annotated)."""

    async def no_secret(name: str) -> None:
        return None

    async def service_account(name: str) -> dict[str, Any] | None:
        if name != "default-editor":
            return None
        annotations = {"iam.gke.io/gcp-service-account": gsa} if gsa else {}
        return {"metadata": {"name": name, "annotations": annotations}}

    return BackendContext(config=cfg, get_secret=no_secret, get_service_account=service_account)


def with_status(fs, out):
    """``fs`` with the backend's status update applied, as reconcile applies it."""
    return fs.model_copy(update={"status": out.status.applied_to(fs.status)})


@pytest.fixture(scope="module")
def emulator():
    with GcsEmulator() as gcs:
        yield gcs


@pytest.fixture
def gcs(emulator):
    """(overlay, book, backend): the enforcing stand-in and the operator's backend, by its own token."""
    emulator.reset()
    book = TokenBook()
    with GcsBucketOverlay(emulator, callers=book.member, project_roles={OPERATOR: {"roles/storage.admin"}}) as ov:
        token = book.mint(OPERATOR)
        backend = GcsBackend(config(), client_factory=lambda project: client(ov, token, project))
        yield ov, book, backend


def client(ov: GcsBucketOverlay, token: str | None, project: str = PROJECT):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage
    from google.oauth2.credentials import Credentials

    creds = Credentials(token) if token else AnonymousCredentials()
    return storage.Client(project=project, credentials=creds, client_options={"api_endpoint": ov.endpoint})


def as_member(ov: GcsBucketOverlay, book: TokenBook, member: str, method: str, path: str, **kw: Any):
    return requests.request(
        method, f"{ov.endpoint}{path}", headers={"Authorization": f"Bearer {book.mint(member)}"}, timeout=10, **kw
    )


def roles_of(ov: GcsBucketOverlay, bucket: str, member: str) -> set[str]:
    return {b["role"] for b in ov.policy(bucket).get("bindings", []) if member in b["members"]}


def run(coro):
    return asyncio.run(coro)


def put_registry(ov: GcsBucketOverlay, book: TokenBook, bucket: str) -> None:
    """The store's own pods (its GSA) write registry.pb, as `feast apply` does."""
    blob = client(ov, book.mint(f"serviceAccount:{STORE_GSA}")).bucket(bucket).blob("registry.pb")
    blob.upload_from_string(b"registry-bytes")


# --------------------------------------------------------------------------- the enforcing double


def test_stand_in_refuses_anonymous_unknown_and_ungranted_callers(gcs):
    ov, book, backend = gcs
    fs = make_fs()
    assert isinstance(run(backend.ensure(fs, ctx(config(), None))), Ready)
    bucket = naming.bucket_name(fs)
    put_registry(ov, book, bucket)
    path = f"/storage/v1/b/{bucket}/o/registry.pb"
    assert requests.get(f"{ov.endpoint}{path}", timeout=10).status_code == 401, "anonymous, as GCS answers"
    bad = requests.get(f"{ov.endpoint}{path}", headers={"Authorization": "Bearer forged"}, timeout=10)
    assert bad.status_code == 401 and "Invalid Credentials" in bad.text
    denied = as_member(ov, book, f"serviceAccount:{OTHER_GSA}", "GET", path)
    assert denied.status_code == 403 and "storage.objects.get" in denied.text
    ok = as_member(ov, book, f"serviceAccount:{STORE_GSA}", "GET", path, params={"alt": "media"})
    assert ok.status_code == 200 and ok.content == b"registry-bytes"


def test_test_permissions_answers_only_what_the_callers_roles_hold(gcs):
    ov, book, backend = gcs
    fs = make_fs()
    run(backend.ensure(fs, ctx(config(), NOTEBOOK_GSA)))
    asked = ["storage.objects.get", "storage.objects.list", "storage.objects.create", "storage.buckets.get"]
    path = f"/storage/v1/b/{naming.bucket_name(fs)}/iam/testPermissions"

    def held(member: str) -> list[str]:
        r = as_member(ov, book, member, "GET", path, params={"permissions": asked})
        assert r.status_code == 200, r.text
        return r.json().get("permissions", [])

    assert held(f"serviceAccount:{NOTEBOOK_GSA}") == [
        "storage.objects.get",
        "storage.objects.list",
        "storage.buckets.get",
    ]
    assert held(f"serviceAccount:{STORE_GSA}") == asked
    assert held(f"serviceAccount:{OTHER_GSA}") == []
    # through the client library's own call
    bucket = client(ov, book.mint(f"serviceAccount:{NOTEBOOK_GSA}")).bucket(naming.bucket_name(fs))
    assert set(bucket.test_iam_permissions(asked)) == {
        "storage.objects.get",
        "storage.objects.list",
        "storage.buckets.get",
    }


def test_role_table_pins_gcs_documented_permissions():
    """https://cloud.google.com/storage/docs/access-control/iam-roles: objectAdmin/objectViewer are
    storage.objects.* only (no storage.buckets.get, which Feast's gs:// registry needs: get_bucket)."""
    assert "storage.buckets.get" not in ROLE_PERMISSIONS[OBJECT_ADMIN]
    assert "storage.buckets.get" not in ROLE_PERMISSIONS[OBJECT_VIEWER]
    assert ROLE_PERMISSIONS[BUCKET_READER] == {"storage.buckets.get", "storage.objects.list"}
    assert ROLE_PERMISSIONS[OBJECT_VIEWER] == {"storage.objects.get", "storage.objects.list"}


# --------------------------------------------------------------------------- the notebook grant


def test_notebook_gsa_reads_registry_and_data_of_its_namespaces_stores_only(gcs):
    ov, book, backend = gcs
    mine, theirs = make_fs("a"), make_fs("b", OTHER_NS)
    out = run(backend.ensure(mine, ctx(config(), NOTEBOOK_GSA)))
    assert isinstance(out, Ready), out
    assert out.status.cloud is not None and out.status.cloud.notebook_reader == f"serviceAccount:{NOTEBOOK_GSA}"
    assert isinstance(run(backend.ensure(theirs, ctx(config(), OTHER_GSA))), Ready)
    bucket, other = naming.bucket_name(mine), naming.bucket_name(theirs)
    assert roles_of(ov, bucket, f"serviceAccount:{NOTEBOOK_GSA}") == set(READER_ROLES)
    assert roles_of(ov, bucket, f"serviceAccount:{STORE_GSA}") == {OBJECT_ADMIN, BUCKET_READER}
    put_registry(ov, book, bucket)
    # the store's own servers read the registry as Feast's gs:// registry does: get_bucket first
    # (storage.buckets.get, which objectAdmin alone does not hold: real GCS would refuse it)
    own = client(ov, book.mint(f"serviceAccount:{STORE_GSA}"))
    assert own.get_bucket(bucket).blob("registry.pb").download_as_bytes() == b"registry-bytes"

    notebook = client(ov, book.mint(f"serviceAccount:{NOTEBOOK_GSA}"))
    # what Feast's gs:// registry does: get_bucket, then the blob
    assert notebook.get_bucket(bucket).blob("registry.pb").download_as_bytes() == b"registry-bytes"
    assert [b.name for b in notebook.list_blobs(bucket)] == ["registry.pb"]
    from google.api_core import exceptions as gexc

    with pytest.raises(gexc.Forbidden):  # read only
        notebook.bucket(bucket).blob("offline/evil.parquet").upload_from_string(b"x")
    with pytest.raises(gexc.Forbidden):
        notebook.bucket(bucket).blob("registry.pb").delete()
    with pytest.raises(gexc.Forbidden):  # nothing of another namespace's store
        notebook.get_bucket(other)
    with pytest.raises(gexc.Forbidden):
        notebook.bucket(other).blob("registry.pb").download_as_bytes()


def test_annotation_naming_another_namespaces_or_a_shared_gsa_gets_no_grant(gcs):
    """default-editor's annotation is tenant-writable: naming team-b's GSA (or one shared by every
    profile) must not give it team-a's data."""
    ov, book, backend = gcs
    fs = make_fs()
    for hostile in (
        OTHER_GSA,
        f"kf-user@{PROJECT}.iam.gserviceaccount.com",
        "fso@test-project.iam.gserviceaccount.com",
    ):
        out = run(backend.ensure(fs, ctx(config(deniedServiceAccounts=["fso@*"]), hostile)))
        assert isinstance(out, Ready) and "notebooks get no bucket read" in out.message, out
        assert roles_of(ov, naming.bucket_name(fs), f"serviceAccount:{hostile}") == set()
        assert not (out.status.cloud and out.status.cloud.notebook_reader)


def test_changed_annotation_moves_the_grant_and_policy_off_revokes_it(gcs):
    ov, book, backend = gcs
    cfg = config(serviceAccountPatterns=[*PATTERNS, "nb2-{namespace}@{project}.iam.gserviceaccount.com"])
    fs = make_fs(cfg=cfg)
    bucket = naming.bucket_name(fs)
    fs = with_status(fs, run(backend.ensure(fs, ctx(cfg, NOTEBOOK_GSA))))
    second = f"nb2-{NS}@{PROJECT}.iam.gserviceaccount.com"
    out = run(backend.ensure(fs, ctx(cfg, second)))
    assert isinstance(out, Ready) and "revoked" in out.message, out
    assert roles_of(ov, bucket, f"serviceAccount:{NOTEBOOK_GSA}") == set()
    assert roles_of(ov, bucket, f"serviceAccount:{second}") == set(READER_ROLES)
    fs = with_status(fs, out)
    off = cfg.model_copy(update={"policy": cfg.policy.model_copy(update={"notebook_bucket_read": False})})
    out = run(backend.ensure(fs, ctx(off, second)))
    cloud = out.status.cloud
    assert cloud is not None and "notebook_reader" in cloud.model_fields_set and cloud.notebook_reader is None
    assert roles_of(ov, bucket, f"serviceAccount:{second}") == set()
    assert roles_of(ov, bucket, f"serviceAccount:{STORE_GSA}") == {OBJECT_ADMIN, BUCKET_READER}


def test_delete_revokes_the_reader_of_a_retained_bucket_and_nothing_forged(gcs):
    ov, book, backend = gcs
    fs = make_fs()
    bucket = naming.bucket_name(fs)
    fs = with_status(fs, run(backend.ensure(fs, ctx(config(), NOTEBOOK_GSA))))
    assert backend.needs_cleanup(fs), "a Retain bucket with a notebook reader still needs the finalizer"
    # someone else's reader on the same bucket (e.g. an admin's grant), and a record forged to name it
    admin_reader = f"serviceAccount:auditor@{PROJECT}.iam.gserviceaccount.com"
    run(backend._grant(client(ov, book.mint(OPERATOR)), bucket, admin_reader, READER_ROLES))
    forged = fs.model_copy(
        update={
            "status": fs.status.model_copy(
                update={"cloud": fs.status.cloud.model_copy(update={"notebook_reader": admin_reader})}
            )
        }
    )
    assert run(backend.delete(forged, ctx(config(), None))).done
    assert roles_of(ov, bucket, admin_reader) == set(READER_ROLES), "a forged record removes nobody else's read"
    out = run(backend.delete(fs, ctx(config(), None)))
    assert out.done and "retained" in out.message
    assert roles_of(ov, bucket, f"serviceAccount:{NOTEBOOK_GSA}") == set(), "a retained bucket keeps no reader"


def test_unreadable_default_editor_leaves_the_store_ready_without_a_grant(gcs):
    """An admin's narrower RBAC (no get on default-editor) costs the notebooks their read, never the store."""
    ov, book, backend = gcs

    async def forbidden(name: str) -> dict[str, Any] | None:
        raise PermissionError("serviceaccounts default-editor is forbidden")

    base = ctx(config(), NOTEBOOK_GSA)
    out = run(
        backend.ensure(
            make_fs(), BackendContext(config=base.config, get_secret=base.get_secret, get_service_account=forbidden)
        )
    )
    assert isinstance(out, Ready) and "cannot read ServiceAccount default-editor" in out.message, out
    assert roles_of(ov, naming.bucket_name(make_fs()), f"serviceAccount:{NOTEBOOK_GSA}") == set()


def test_refused_revocation_lets_the_store_go_and_names_the_command(gcs):
    """GCP refusing the operator's removal of the notebook reader must not hold the store's deletion
    forever: the deletion is done and its message is the command an admin runs."""
    ov, _, backend = gcs
    fs = make_fs()
    fs = with_status(fs, run(backend.ensure(fs, ctx(config(), NOTEBOOK_GSA))))
    ov.fail_next("PUT", r"/iam$", 403)
    out = run(backend.delete(fs, ctx(config(), None)))
    assert out.done, out.message
    assert (
        f"remove-iam-policy-binding gs://{naming.bucket_name(fs)} --member=serviceAccount:{NOTEBOOK_GSA}" in out.message
    )
