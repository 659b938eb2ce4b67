"""Backends record status through typed updates (backends/base.py StatusUpdate over api/status.py's
Operations and CloudStatus): the fields an update sets are merged (None clears one), the others stay."""

from __future__ import annotations

from featurestore_operator.api import FeatureStoreStatus
from featurestore_operator.api.status import CloudStatus, Operations
from featurestore_operator.backends.base import StatusUpdate
from featurestore_operator.backends.gcs import FORGET as GCS_FORGET
from featurestore_operator.backends.memorystore import FORGET as MS_FORGET
from featurestore_operator.backends.memorystore import OPS_DONE

BEFORE = FeatureStoreStatus.model_validate(
    {
        "operations": {"memorystore": "operations/op-1", "memorystoreStartTime": "2026-12-07T10:00:00Z"},
        "cloud": {"memorystore": "projects/p/locations/l/instances/i", "bucket": "b", "bucketProject": "p"},
    }
)


def test_only_the_fields_set_are_merged_and_none_clears():
    after = StatusUpdate(cloud=CloudStatus(memorystore=None)).applied_to(BEFORE)
    assert after.cloud.memorystore is None
    assert (after.cloud.bucket, after.cloud.bucket_project) == ("b", "p")
    assert after.operations == BEFORE.operations


def test_empty_update_changes_nothing_and_is_falsy():
    assert not StatusUpdate() and not StatusUpdate(cloud=CloudStatus())
    assert StatusUpdate().applied_to(BEFORE) == BEFORE


def test_updates_combine_later_fields_winning():
    started = StatusUpdate(operations=Operations(memorystore="operations/op-2"))
    both = OPS_DONE | started | MS_FORGET
    after = both.applied_to(BEFORE)
    assert after.operations.memorystore == "operations/op-2"
    assert after.operations.memorystore_start_time is None  # cleared by OPS_DONE, not set again
    assert after.cloud.memorystore is None and after.cloud.bucket == "b"


def test_forget_drops_exactly_the_backends_record():
    after = GCS_FORGET.applied_to(BEFORE)
    assert (after.cloud.bucket, after.cloud.bucket_project) == (None, None)
    assert after.cloud.memorystore == BEFORE.cloud.memorystore
    wire = after.model_dump(mode="json", by_alias=True)["cloud"]
    assert wire["memorystore"] == "projects/p/locations/l/instances/i" and wire["bucket"] is None
