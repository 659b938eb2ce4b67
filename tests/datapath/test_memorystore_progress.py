"""A Memorystore operation's progress as the user sees it (condition message: elapsed minutes and
the typical duration, from the start time recorded in status) and as Prometheus sees it (the
operation-duration histogram), against the Cloud Redis REST fake backed by real redis-server."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from featurestore_operator.api.status import Operations
from featurestore_operator.backends import longop
from featurestore_operator.backends.base import Pending, Ready, StatusUpdate
from featurestore_operator.backends.memorystore import MemorystoreBackend
from prometheus_client import REGISTRY

from tests.datapath.test_backend_memorystore import FAST_RETRY, Loop, carry, config, make_fs, reasons
from tests.support.memorystore_fake import MemorystoreFake

pytestmark = pytest.mark.timeout(120)


def _observed(verb: str, result: str) -> float:
    labels = {"service": "memorystore", "verb": verb, "result": result}
    return REGISTRY.get_sample_value("featurestore_cloud_operation_duration_seconds_count", labels) or 0.0


def test_create_shows_elapsed_and_typical_duration_and_is_measured():
    with MemorystoreFake(op_delay=1.5) as fake:
        cfg = config(fake.endpoint)
        loop = Loop(MemorystoreBackend(cfg, retry=FAST_RETRY), make_fs(cfg), cfg)
        before = _observed("create", "done")

        first = asyncio.run(loop.ensure())
        assert isinstance(first, Pending) and first.reason == "Creating"
        assert "creating, <1m elapsed, usually 5\u201310 min" in first.message, first.message
        started = longop.parse_timestamp(loop.fs.status.operations.memorystore_start_time)
        assert started is not None and abs((longop.now() - started).total_seconds()) < 5

        # an operator that recorded the start 3m12s ago: whole minutes only
        three_min_ago = longop.timestamp(longop.now() - dt.timedelta(minutes=3, seconds=12))
        loop.fs = carry(loop.fs, StatusUpdate(operations=Operations(memorystore_start_time=three_min_ago)))
        polled = asyncio.run(loop.ensure())
        assert isinstance(polled, Pending) and polled.reason == "Creating"
        assert "creating, 3m elapsed, usually 5\u201310 min" in polled.message, polled.message
        again = asyncio.run(loop.ensure())  # a second poll within the minute: the same message (no status write)
        assert again.message == polled.message

        ready = asyncio.run(loop.until())
        assert isinstance(ready, Ready), reasons(loop.outcomes)
        ops = loop.fs.status.operations
        assert ops.memorystore is None and ops.memorystore_start_time is None
        assert _observed("create", "done") == before + 1
        total = REGISTRY.get_sample_value(
            "featurestore_cloud_operation_duration_seconds_sum",
            {"service": "memorystore", "verb": "create", "result": "done"},
        )
        assert total is not None and total >= 180  # measured from the recorded start


def test_resize_is_an_update_with_its_own_typical_duration():
    with MemorystoreFake(op_delay=0.5) as fake:
        cfg = config(fake.endpoint)
        loop = Loop(MemorystoreBackend(cfg, retry=FAST_RETRY), make_fs(cfg), cfg)
        assert isinstance(asyncio.run(loop.until()), Ready)
        before = _observed("update", "done")
        loop.fs = make_fs(cfg, memory_size_gb=2).model_copy(update={"status": loop.fs.status})
        out = asyncio.run(loop.ensure())
        assert isinstance(out, Pending) and out.reason == "Updating"
        assert "updating, <1m elapsed, usually 1\u201310 min (memorySizeGb 1 -> 2)" in out.message, out.message
        assert isinstance(asyncio.run(loop.until()), Ready)
        assert _observed("update", "done") == before + 1
