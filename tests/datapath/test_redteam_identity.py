"""Red team (issue 25): a clean-up record in ``status.cloud`` never revokes another namespace's grant.

``status`` is the operator's (tenants cannot write ``featurestores/status``:
tests/controlplane/test_redteam_status.py), but a revocation is a deletion: it re-verifies at the
cloud resource's policy that the member it removes is one of THIS store's own KSAs (same pool,
namespace, and a name derived from the store's name), whatever the record says. A forged or
corrupted record naming another namespace's member, or another pool, removes nothing.

Real ``IAMClient`` against ``support.iam_fake.IamAdminFake`` (as test_backend_identity.py).
"""

from __future__ import annotations

import asyncio

import pytest
from featurestore_operator.api import OperatorConfig, parse_featurestore, resolve
from featurestore_operator.backends.base import BackendContext
from featurestore_operator.backends.workload_identity import WORKLOAD_IDENTITY_USER, WorkloadIdentity

from tests.support.iam_fake import IamAdminFake

pytestmark = pytest.mark.timeout(60)

POOL = "test-project.svc.id.goog"
CONFIG = OperatorConfig(default_provider="gcp", gcp_project="test-project", gcp_region="us-central1")
OWN_GSA = "feast-team-a@test-project.iam.gserviceaccount.com"
VICTIM_GSA = "feast-team-b@test-project.iam.gserviceaccount.com"
VICTIM = f"serviceAccount:{POOL}[team-b/demo-feast]"
VICTIM_COMPUTE = f"serviceAccount:{POOL}[team-b/demo-feast-compute]"


async def _no_secret(name: str) -> None:
    return None


CTX = BackendContext(config=CONFIG, get_secret=_no_secret)


def attacker(cloud: dict, gsa: str | None = OWN_GSA):
    """team-a's store ``demo`` whose status.cloud was forged (as if status were writable)."""
    spec: dict = {"project": "demo", "offlineStore": {"gcs": {}}}
    if gsa:
        spec["gcp"] = {"serviceAccount": gsa}
    body = {
        "apiVersion": "featurestore.kubeflow.org/v1alpha1",
        "kind": "FeatureStore",
        "metadata": {"name": "demo", "namespace": "team-a", "uid": "u1"},
        "spec": spec,
        "status": {"cloud": cloud},
    }
    fs = parse_featurestore(body)
    return fs.model_copy(update={"spec": resolve(fs.spec, CONFIG)})


@pytest.fixture
def iam():
    with IamAdminFake() as fake:
        fake.add_service_account(OWN_GSA)
        fake.add_service_account(VICTIM_GSA, [{"role": WORKLOAD_IDENTITY_USER, "members": [VICTIM, VICTIM_COMPUTE]}])
        yield fake


@pytest.fixture
def wi(iam):
    backend = WorkloadIdentity(CONFIG, endpoint=iam.endpoint)
    yield backend
    backend.close()


VICTIM_BINDINGS = [{"role": WORKLOAD_IDENTITY_USER, "members": sorted([VICTIM, VICTIM_COMPUTE])}]

FORGED = [
    pytest.param({"serviceAccount": VICTIM_GSA, "workloadMember": VICTIM}, id="other-namespace-member"),
    pytest.param(
        {"serviceAccount": VICTIM_GSA, "workloadMember": VICTIM, "computeWorkloadMember": VICTIM_COMPUTE},
        id="other-namespace-compute-member",
    ),
    pytest.param(
        {"serviceAccount": VICTIM_GSA, "workloadMember": f"serviceAccount:{POOL}[team-a/../team-b/demo-feast]"},
        id="path-in-member",
    ),
    pytest.param(
        {"serviceAccount": VICTIM_GSA, "workloadMember": "serviceAccount:other.svc.id.goog[team-a/demo-feast]"},
        id="other-pool",
    ),
]


@pytest.mark.parametrize("cloud", FORGED)
def test_forged_record_never_revokes_on_delete(iam, wi, cloud):
    out = asyncio.run(wi.delete(attacker(cloud), CTX))
    assert out.done  # never blocks deletion
    assert iam.bindings(VICTIM_GSA) == VICTIM_BINDINGS


@pytest.mark.parametrize("cloud", FORGED)
def test_forged_record_never_revokes_on_reconcile(iam, wi, cloud):
    """A recorded grant that differs from the spec is "stale" and revoked first: not someone else's."""
    asyncio.run(wi.ensure(attacker(cloud), CTX))
    asyncio.run(wi.ensure(attacker(cloud, gsa=None), CTX))
    assert iam.bindings(VICTIM_GSA) == VICTIM_BINDINGS


def test_own_recorded_grant_is_still_revoked(iam, wi):
    """The check keeps the real clean-up: this store's own member leaves the GSA it was recorded on."""
    own = f"serviceAccount:{POOL}[team-a/demo-feast]"
    iam.add_service_account(OWN_GSA, [{"role": WORKLOAD_IDENTITY_USER, "members": [own, VICTIM]}])
    out = asyncio.run(wi.delete(attacker({"serviceAccount": OWN_GSA, "workloadMember": own}), CTX))
    assert out.done
    assert iam.bindings(OWN_GSA) == [{"role": WORKLOAD_IDENTITY_USER, "members": [VICTIM]}]
