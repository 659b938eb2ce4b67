"""Workload Identity of the compute engine's KSA (spec.compute kubernetes/sparkApplication run the
materialization as NAME-feast-compute): it gets the store's GSA like NAME-feast, through the real
google-cloud-iam client against ``support.iam_fake.IamAdminFake``; the grant follows the engine
(switching back to local revokes it) and the store's deletion; without the chart's compute RBAC
(FSO_COMPUTE_ENABLED off) the compute KSA is not rendered and gets nothing."""

from __future__ import annotations

import asyncio

import pytest
from featurestore_operator.backends.base import Ready
from featurestore_operator.backends.workload_identity import WORKLOAD_IDENTITY_USER, WorkloadIdentity

from tests.datapath.test_backend_identity import CONFIG, CTX, GSA, MEMBER, make_fs, recorded
from tests.support.iam_fake import IamAdminFake

pytestmark = pytest.mark.timeout(60)

COMPUTE_MEMBER = "serviceAccount:test-project.svc.id.goog[team-a/demo-feast-compute]"
ENABLED = CONFIG.model_copy(update={"compute_enabled": True})


@pytest.fixture
def iam():
    with IamAdminFake() as fake:
        fake.add_service_account(GSA)
        yield fake


def members(iam) -> list[str]:
    return [m for b in iam.bindings(GSA) if b["role"] == WORKLOAD_IDENTITY_USER for m in b["members"]]


def ensure(wi, fs):
    return asyncio.run(wi.ensure(fs, CTX))


@pytest.mark.parametrize("engine", ["kubernetes", "sparkApplication"])
def test_compute_ksa_gets_the_stores_gsa_and_loses_it_with_the_engine(iam, engine):
    wi = WorkloadIdentity(ENABLED, endpoint=iam.endpoint)
    try:
        fs = make_fs(compute={"engine": engine})
        out = ensure(wi, fs)
        assert isinstance(out, Ready) and COMPUTE_MEMBER in out.message, out
        assert sorted(members(iam)) == sorted([MEMBER, COMPUTE_MEMBER])
        assert len(iam.writes()) == 1, "both members in one policy write"
        fs = recorded(fs, out)
        assert fs.status.cloud.compute_workload_member == COMPUTE_MEMBER
        assert isinstance(ensure(wi, fs), Ready) and len(iam.writes()) == 1, "unchanged: no write"

        # back to the local engine: the compute KSA's grant is revoked, the store's stays
        fs = fs.model_copy(update={"spec": make_fs().spec})
        out = ensure(wi, fs)
        assert out.reason == "RevokedOldGrant" and members(iam) == [MEMBER], (out, members(iam))
        fs = recorded(fs, out)
        assert fs.status.cloud.compute_workload_member is None
        assert isinstance(ensure(wi, fs), Ready) and members(iam) == [MEMBER]

        # deleting the store removes both
        fs = recorded(fs, ensure(wi, fs.model_copy(update={"spec": make_fs(compute={"engine": engine}).spec})))
        assert sorted(members(iam)) == sorted([MEMBER, COMPUTE_MEMBER])
        assert asyncio.run(wi.delete(fs, CTX)).done and members(iam) == []
    finally:
        wi.close()


def test_without_the_charts_compute_rbac_the_compute_ksa_gets_nothing(iam):
    wi = WorkloadIdentity(CONFIG, endpoint=iam.endpoint)
    try:
        out = ensure(wi, make_fs(compute={"engine": "kubernetes"}))
        assert isinstance(out, Ready) and members(iam) == [MEMBER]
        assert out.status.cloud is not None and "compute_workload_member" in out.status.cloud.model_fields_set
        assert out.status.cloud.compute_workload_member is None
    finally:
        wi.close()
