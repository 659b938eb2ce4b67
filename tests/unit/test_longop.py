"""Progress text of long cloud operations: elapsed whole minutes and the typical duration, so a
condition message changes at most once a minute however often the operation is polled."""

from __future__ import annotations

import datetime as dt

from featurestore_operator.backends import longop
from prometheus_client import REGISTRY

T0 = dt.datetime(2026, 11, 29, 12, 0, 0, tzinfo=dt.UTC)


def test_progress_text():
    assert longop.progress("memorystore", "create", T0, T0) == "creating, <1m elapsed, usually 5\u201310 min"
    at = T0 + dt.timedelta(minutes=3, seconds=12)
    assert longop.progress("memorystore", "create", T0, at) == "creating, 3m elapsed, usually 5\u201310 min"
    assert longop.progress("memorystore", "delete", T0, T0 + dt.timedelta(minutes=65)) == (
        "deleting, 1h05m elapsed, usually 2\u20135 min"
    )
    assert longop.progress("memorystore", "create", None, at) == "creating, usually 5\u201310 min"
    assert longop.progress("other", "frobnicate", T0, at) == "frobnicate, 3m elapsed"


def test_message_changes_at_most_once_a_minute():
    polls = [T0 + dt.timedelta(seconds=s) for s in range(0, 600, 3)]  # a poll every 3 s for 10 min
    messages = [longop.progress("memorystore", "create", T0, at) for at in polls]
    changes = sum(1 for a, b in zip(messages, messages[1:], strict=False) if a != b)
    assert changes == 9  # <1m, 1m, ..., 9m


def test_clock_skew_never_shows_negative_time():
    assert longop.elapsed_text(T0, T0 - dt.timedelta(minutes=2)) == "<1m elapsed"


def test_timestamps_round_trip():
    assert longop.parse_timestamp(longop.timestamp(T0)) == T0
    assert longop.parse_timestamp("not a time") is None and longop.parse_timestamp(None) is None


def test_duration_histogram():
    labels = {"service": "unit", "verb": "create", "result": "done"}
    before = REGISTRY.get_sample_value("featurestore_cloud_operation_duration_seconds_count", labels) or 0
    longop.record_duration("unit", "create", "done", T0, T0 + dt.timedelta(minutes=7))
    assert REGISTRY.get_sample_value("featurestore_cloud_operation_duration_seconds_count", labels) == before + 1
    assert (
        REGISTRY.get_sample_value("featurestore_cloud_operation_duration_seconds_bucket", {**labels, "le": "300.0"})
        == before
    )
    longop.record_duration("unit", "create", "done", None, T0)  # start unknown: not observed
    assert REGISTRY.get_sample_value("featurestore_cloud_operation_duration_seconds_count", labels) == before + 1
