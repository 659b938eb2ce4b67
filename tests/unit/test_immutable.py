"""The immutable spec fields (api/immutable.py): one table, and every field in it refused both at
admission (api/review.py, what the webhook answers) and by the backend when a change slips through
(the webhook down): Memorystore and GCS report ImmutableFieldChanged naming the field and keep the
resource as it is.

The list below is written out by hand on purpose: a row dropped from the table (or a backend that
stops comparing a field) fails the test of that field.
"""

from __future__ import annotations

from typing import Any

import pytest
from featurestore_operator.api import OperatorConfig, immutable, parse_featurestore, resolve
from featurestore_operator.api.crd import crd
from featurestore_operator.api.review import review
from featurestore_operator.backends import gcs as gcs_backend
from featurestore_operator.backends import memorystore
from google.cloud import redis_v1, storage

CONFIG = OperatorConfig(default_provider="gcp", gcp_project="my-proj", gcp_region="us-central1")
MS = "spec.onlineStore.memorystore"
NET = "projects/my-proj/global/networks/default"
OTHER_NET = "projects/my-proj/global/networks/other"

#: (path, spec before, spec after)
CHANGES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (f"{MS}.tier", {"tier": "BASIC"}, {"tier": "STANDARD_HA"}),
    (f"{MS}.connectMode", {}, {"connectMode": "DIRECT_PEERING"}),
    (f"{MS}.network", {"network": NET}, {"network": OTHER_NET}),
    (f"{MS}.transitEncryption", {"transitEncryption": True}, {"transitEncryption": False}),
    (f"{MS}.authEnabled", {"authEnabled": True}, {"authEnabled": False}),
    (f"{MS}.redisVersion", {"redisVersion": "REDIS_7_0"}, {"redisVersion": "REDIS_7_2"}),
    ("spec.offlineStore.gcs.location", {"location": "US"}, {"location": "europe-west1"}),
]
IDS = [c[0].rsplit(".", 1)[1] for c in CHANGES]


def doc(path: str, section: dict[str, Any]) -> dict[str, Any]:
    spec = {"offlineStore": {"gcs": section}} if path.startswith("spec.offlineStore") else {}
    if path.startswith(MS):
        spec = {"onlineStore": {"memorystore": section}}
    return {
        "apiVersion": "featurestore.kubeflow.org/v1alpha1",
        "kind": "FeatureStore",
        "metadata": {"name": "fs", "namespace": "team-a", "uid": "u-1"},
        "spec": {"project": "p", **spec},
    }


def resolved(path: str, section: dict[str, Any]):
    fs = parse_featurestore(doc(path, section))
    return fs.model_copy(update={"spec": resolve(fs.spec, CONFIG)})


def test_the_table_is_the_documented_list():
    assert sorted(r.path for r in immutable.IMMUTABLE) == sorted(c[0] for c in CHANGES)


@pytest.mark.parametrize("path,before,after", CHANGES, ids=IDS)
def test_admission_refuses_the_change_naming_the_field(path, before, after):
    problems = review(doc(path, after), CONFIG, old=doc(path, before))
    assert [p for p, m in problems if p == path and "cannot be changed after creation" in m], problems
    assert not [p for p, _ in review(doc(path, before), CONFIG, old=doc(path, before)) if p == path]


@pytest.mark.parametrize("path,before,after", CHANGES, ids=IDS)
def test_admission_refuses_only_the_changed_field(path, before, after):
    paths = [p for p, m in review(doc(path, after), CONFIG, old=doc(path, before)) if "cannot be changed" in m]
    assert paths == [path]


def instance_of(fs) -> Any:
    """The Memorystore instance as the API answers for what ``fs`` asked (network as a full URL)."""
    ms = fs.spec.online_store.memorystore
    return redis_v1.Instance(
        tier=ms.tier.value,
        connect_mode=ms.connect_mode.value,
        authorized_network=f"https://www.googleapis.com/compute/v1/{ms.network}",
        transit_encryption_mode="SERVER_AUTHENTICATION" if ms.transit_encryption else "DISABLED",
        auth_enabled=ms.auth_enabled,
        redis_version=ms.redis_version,
    )


def bucket_of(fs) -> storage.Bucket:
    bucket = storage.Bucket(client=None, name="b")
    bucket._properties["location"] = fs.spec.offline_store.gcs.location.upper()  # as GCS answers
    return bucket


def backend_declines(path: str, want, have_from) -> list[str]:
    if path.startswith(MS):
        return memorystore._immutable_changes(want.spec.online_store.memorystore, instance_of(have_from))
    return gcs_backend.immutable_changes(want.spec.offline_store.gcs, bucket_of(have_from))


@pytest.mark.parametrize("path,before,after", CHANGES, ids=IDS)
def test_backend_declines_a_change_that_slipped_through(path, before, after):
    old, new = resolved(path, before), resolved(path, after)
    assert backend_declines(path, old, old) == []  # the resource as created matches its spec
    declined = backend_declines(path, new, old)
    assert len(declined) == 1 and declined[0].startswith(f"{path} cannot be changed on an existing"), declined


@pytest.mark.parametrize("path", [c[0] for c in CHANGES], ids=IDS)
def test_crd_and_reference_mark_the_field(path):
    node = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for name in path.split("."):
        node = node["properties"][name]
    assert "Immutable: a change is refused at admission" in node["description"]


def test_bring_your_own_and_a_renamed_bucket_compare_nothing():
    byo = {"existingInstance": "fs-team-a-own"}
    assert immutable.changes(resolved(MS, byo).spec, resolved(MS, {"tier": "STANDARD_HA"}).spec) == []
    renamed = resolved("spec.offlineStore.gcs", {"bucket": "team-a_new", "location": "EU"}).spec
    assert immutable.changes(resolved("spec.offlineStore.gcs", {"bucket": "team-a_old"}).spec, renamed) == []
