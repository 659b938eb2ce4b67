"""WorkloadIdentity through the real google-cloud-iam ``IAMClient`` (gRPC; the library has no REST
transport) against ``support.iam_fake.IamAdminFake``, a gRPC server of the IAM admin API's
GetIamPolicy/SetIamPolicy: etags (stale -> ABORTED, as IAM answers), policy version 3 and
conditions, PERMISSION_DENIED, NOT_FOUND. Plus the pure policy-merge helpers.

Not verified here: real IAM's exact error wording, and that GKE honours the binding (needs a
cluster with Workload Identity).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

from featurestore_operator.api import OperatorConfig, parse_featurestore, resolve  # noqa: E402
from featurestore_operator.backends.base import BackendContext, Failed, Ready  # noqa: E402
from featurestore_operator.backends.workload_identity import (  # noqa: E402
    WORKLOAD_IDENTITY_USER,
    WorkloadIdentity,
    gcloud_add_command,
    has_member,
    member,
    with_member,
    without_member,
)

from tests.support.iam_fake import IamAdminFake  # noqa: E402

pytestmark = pytest.mark.timeout(60)

GSA = "feast-team-a@test-project.iam.gserviceaccount.com"
OPERATOR_GSA = "featurestore-operator@test-project.iam.gserviceaccount.com"
CONFIG = OperatorConfig(
    default_provider="gcp", gcp_project="test-project", gcp_region="us-central1", gcp_service_account=OPERATOR_GSA
)
MEMBER = "serviceAccount:test-project.svc.id.goog[team-a/demo-feast]"


async def _no_secret(name: str) -> None:
    return None


CTX = BackendContext(config=CONFIG, get_secret=_no_secret)


def make_fs(gsa: str | None = GSA, **extra):
    spec: dict = {"project": "demo", "offlineStore": {"gcs": {}}, **extra}
    if gsa:
        spec["gcp"] = {**spec.get("gcp", {}), "serviceAccount": gsa}
    fs = parse_featurestore(
        {
            "apiVersion": "featurestore.kubeflow.org/v1alpha1",
            "kind": "FeatureStore",
            "metadata": {"name": "demo", "namespace": "team-a", "uid": "u1"},
            "spec": spec,
        }
    )
    return fs.model_copy(update={"spec": resolve(fs.spec, CONFIG)})


@pytest.fixture
def iam():
    with IamAdminFake() as fake:
        yield fake


@pytest.fixture
def wi(iam):
    backend = WorkloadIdentity(CONFIG, endpoint=iam.endpoint)
    yield backend
    backend.close()


def run(coro):
    return asyncio.run(coro)


def recorded(fs, outcome):
    """``fs`` with the status the outcome asks for merged in (as reconcile does: its typed update)."""
    return fs.model_copy(update={"status": outcome.status.applied_to(fs.status)})


def test_member_and_command():
    fs = make_fs()
    assert member(fs, "test-project.svc.id.goog") == MEMBER
    assert gcloud_add_command(GSA, MEMBER) == (
        f"gcloud iam service-accounts add-iam-policy-binding {GSA} --role roles/iam.workloadIdentityUser "
        f'--member "serviceAccount:test-project.svc.id.goog[team-a/demo-feast]"'
    )


def test_adds_binding_once_keeping_others(iam, wi):
    iam.add_service_account(
        GSA,
        [
            {"role": "roles/iam.serviceAccountUser", "members": ["user:alice@example.com"]},
            {"role": WORKLOAD_IDENTITY_USER, "members": ["serviceAccount:p.svc.id.goog[x/y]"]},
        ],
    )
    out = run(wi.ensure(make_fs(), CTX))
    assert isinstance(out, Ready) and out.endpoint == MEMBER and "granted" in out.message
    assert iam.bindings(GSA) == [
        {"role": "roles/iam.serviceAccountUser", "members": ["user:alice@example.com"]},
        {"role": WORKLOAD_IDENTITY_USER, "members": sorted(["serviceAccount:p.svc.id.goog[x/y]", MEMBER])},
    ]
    assert iam.calls[0] == ("GetIamPolicy", f"projects/-/serviceAccounts/{GSA}")
    assert len(iam.writes()) == 1
    out = run(wi.ensure(make_fs(), CTX))
    assert isinstance(out, Ready) and "present" in out.message
    assert len(iam.writes()) == 1  # no second write


def test_conditional_bindings_survive_and_version_3(iam, wi):
    cond = {"title": "weekdays", "expression": "request.time.getDayOfWeek() < 5"}
    iam.add_service_account(GSA, [{"role": WORKLOAD_IDENTITY_USER, "members": [MEMBER], "condition": cond}], version=3)
    out = run(wi.ensure(make_fs(), CTX))
    assert isinstance(out, Ready) and "granted" in out.message  # a conditional grant does not count
    assert iam.version(GSA) == 3
    assert iam.bindings(GSA) == [
        {"role": WORKLOAD_IDENTITY_USER, "members": [MEMBER], "condition": cond},
        {"role": WORKLOAD_IDENTITY_USER, "members": [MEMBER]},
    ]


def test_concurrent_change_is_reread_and_reapplied(iam, wi):
    iam.add_service_account(GSA)
    iam.race(GSA, times=2)
    out = run(wi.ensure(make_fs(), CTX))
    assert isinstance(out, Ready), out
    members = {m for b in iam.bindings(GSA) for m in b["members"]}
    assert MEMBER in members and {"user:racer1@example.com", "user:racer2@example.com"} <= members
    assert [c[0] for c in iam.calls].count("SetIamPolicy") == 3  # two ABORTED, one accepted


def test_permission_denied_gives_gcloud_command(iam, wi):
    iam.add_service_account(GSA)
    iam.deny(GSA)
    out = run(wi.ensure(make_fs(), CTX))
    assert isinstance(out, Failed) and out.reason == "PermissionDenied" and not out.retryable
    assert gcloud_add_command(GSA, MEMBER) in out.message
    assert "iam.serviceAccounts.setIamPolicy" in out.message


def test_missing_service_account(iam, wi):
    out = run(wi.ensure(make_fs(), CTX))
    assert isinstance(out, Failed) and out.reason == "ServiceAccountNotFound" and GSA in out.message


def test_no_service_account_no_calls(iam, wi):
    out = run(wi.ensure(make_fs(gsa=None), CTX))
    assert isinstance(out, Ready) and out.endpoint is None
    assert iam.calls == [] and not wi.needs_cleanup(make_fs(gsa=None))


def test_delete_removes_binding_and_never_blocks(iam, wi):
    iam.add_service_account(GSA, [{"role": "roles/iam.serviceAccountUser", "members": ["user:alice@example.com"]}])
    fs = make_fs()
    assert wi.needs_cleanup(fs)
    fs = recorded(fs, run(wi.ensure(fs, CTX)))
    out = run(wi.delete(fs, CTX))
    assert out.done and "removed" in out.message
    assert iam.bindings(GSA) == [{"role": "roles/iam.serviceAccountUser", "members": ["user:alice@example.com"]}]
    iam.deny(GSA)
    out = run(wi.delete(fs, CTX))
    assert out.done and "remove-iam-policy-binding" in out.message


# --- tenant boundaries (issue 16): each attack failed before the admin policy -------------------


def test_operator_gsa_is_never_bound(iam, wi):
    """Before: a namespace editor naming the operator's own GSA got workloadIdentityUser on it."""
    iam.add_service_account(OPERATOR_GSA)
    out = run(wi.ensure(make_fs(gsa=OPERATOR_GSA), CTX))
    assert isinstance(out, Failed) and out.reason == "PolicyViolation" and "deniedServiceAccounts" in out.message
    assert iam.calls == [] and iam.bindings(OPERATOR_GSA) == []


def test_other_namespace_gsa_is_not_bound(iam, wi):
    other = "feast-team-b@test-project.iam.gserviceaccount.com"
    iam.add_service_account(other)
    out = run(wi.ensure(make_fs(gsa=other), CTX))
    assert isinstance(out, Failed) and "serviceAccountPatterns" in out.message
    assert iam.calls == []


def test_pool_comes_from_operator_config_never_the_spec(iam):
    """Before: spec.gcp.project chose the pool, so a store could bind the GSA to evil.svc.id.goog, a
    cluster its author controls. Now: a foreign project is refused, and an allowed second project
    still binds the operator's own pool."""
    iam.add_service_account(GSA)
    wi = WorkloadIdentity(CONFIG, endpoint=iam.endpoint)
    try:
        out = run(wi.ensure(make_fs(gcp={"project": "evil-project"}), CTX))
        assert isinstance(out, Failed) and "allowedProjects" in out.message and iam.calls == []
    finally:
        wi.close()
    wide = CONFIG.model_copy(
        update={"policy": CONFIG.policy.model_copy(update={"allowed_projects": ["test-project", "shared-project"]})}
    )
    wi = WorkloadIdentity(wide, endpoint=iam.endpoint)
    try:
        out = run(wi.ensure(make_fs(gcp={"project": "shared-project"}), CTX))
        assert isinstance(out, Ready) and out.endpoint == MEMBER  # test-project.svc.id.goog, not shared-project's
        assert iam.bindings(GSA) == [{"role": WORKLOAD_IDENTITY_USER, "members": [MEMBER]}]
    finally:
        wi.close()


def test_provider_local_gets_no_grant(iam, wi):
    """Before: the grant ran for provider local too."""
    from featurestore_operator.backends.registry import DefaultBackends

    iam.add_service_account(GSA)
    fs = make_fs(provider="local", offlineStore={"inCluster": {}})
    assert DefaultBackends(CONFIG).extra(fs) == []
    out = run(wi.ensure(fs, CTX))
    assert isinstance(out, Failed) and "provider local" in out.message and iam.calls == []


def test_changed_service_account_revokes_the_old_grant(iam, wi):
    """Before: changing spec.gcp.serviceAccount left the old GSA bound to the namespace's KSA."""
    second = "feast-team-a-2@test-project.iam.gserviceaccount.com"
    iam.add_service_account(GSA)
    iam.add_service_account(second)
    wide = CONFIG.model_copy(
        update={
            "policy": CONFIG.policy.model_copy(
                update={"service_account_patterns": ["feast-{namespace}*@{project}.iam.gserviceaccount.com"]}
            )
        }
    )
    wi = WorkloadIdentity(wide, endpoint=iam.endpoint)
    try:
        fs = recorded(make_fs(), run(wi.ensure(make_fs(), CTX)))
        assert fs.status.cloud.service_account == GSA and iam.bindings(GSA)
        fs = fs.model_copy(update={"spec": make_fs(gsa=second).spec})
        out = run(wi.ensure(fs, CTX))  # first: revoke the old grant
        assert out.reason == "RevokedOldGrant" and iam.bindings(GSA) == []
        fs = recorded(fs, out)
        out = run(wi.ensure(fs, CTX))
        assert isinstance(out, Ready) and iam.bindings(second) == [
            {"role": WORKLOAD_IDENTITY_USER, "members": [MEMBER]}
        ]
        fs = recorded(fs, out)
        # serviceAccount removed: the grant goes too; deleting an invalid store works from the record.
        fs = fs.model_copy(update={"spec": make_fs(gsa=None).spec})
        out = run(wi.ensure(fs, CTX))
        assert out.reason == "RevokedOldGrant" and iam.bindings(second) == []
        assert not recorded(fs, out).status.cloud.service_account
    finally:
        wi.close()


# --- pure helpers ----------------------------------------------------------------------------


def test_with_member_pure():
    role = "roles/x"
    assert with_member([], role, "user:a") == [{"role": role, "members": ["user:a"]}]
    assert with_member([{"role": role, "members": {"user:a"}}], role, "user:a") is None
    assert with_member([{"role": role, "members": ["user:b"]}], role, "user:a") == [
        {"role": role, "members": ["user:b", "user:a"]}
    ]
    cond = {"expression": "true"}
    out = with_member([{"role": role, "members": ["user:a"], "condition": cond}], role, "user:a")
    assert out == [{"role": role, "members": ["user:a"], "condition": cond}, {"role": role, "members": ["user:a"]}]
    assert not has_member([{"role": role, "members": ["user:a"], "condition": cond}], role, "user:a")


def test_without_member_pure():
    role = "roles/x"
    assert without_member([{"role": role, "members": ["user:b"]}], role, "user:a") is None
    assert without_member(
        [{"role": role, "members": ["user:a"]}, {"role": "r2", "members": ["user:a"]}], role, "user:a"
    ) == [{"role": "r2", "members": ["user:a"]}]
    assert without_member([{"role": role, "members": ["user:a", "user:b"]}], role, "user:a") == [
        {"role": role, "members": ["user:b"]}
    ]
