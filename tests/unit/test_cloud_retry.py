"""FSO_CLOUD_RETRY_SECONDS: how long one GCP call retries transient errors before CloudUnavailable.
The budget is a validated operator setting that the backends of the operator process apply."""

from __future__ import annotations

import asyncio
import time

import pytest
from featurestore_operator.api import OperatorConfig
from featurestore_operator.backends import gcp
from featurestore_operator.backends.registry import DefaultBackends
from google.api_core import exceptions as gexc


@pytest.fixture
def restore_budget():
    yield
    gcp.configure(OperatorConfig())


def test_cloud_retry_seconds_is_validated(monkeypatch):
    assert OperatorConfig().cloud_retry_seconds == 60
    monkeypatch.setenv("FSO_CLOUD_RETRY_SECONDS", "0")
    with pytest.raises(ValueError, match="cloud_retry_seconds"):
        OperatorConfig()


def test_a_call_retries_transient_errors_for_the_configured_budget(restore_budget):
    """The operator's backends apply the budget: a call that keeps failing with 503 is retried (more
    than once) and gives up after about cloud_retry_seconds, as CloudUnavailable."""
    # 3 s: api-core's jittered sleeps start at up to 2 x 0.25 s and double, so at least three attempts
    # fit even when every sleep is the longest (with 1.5 s, two did: a flake seen once in a unit run)
    DefaultBackends(OperatorConfig(cloud_retry_seconds=3))._get("gcs")
    attempts = []

    def unavailable():
        attempts.append(time.monotonic())
        raise gexc.ServiceUnavailable("down")

    start = time.monotonic()
    with pytest.raises(gexc.RetryError) as info:
        asyncio.run(gcp.call(unavailable))
    took = time.monotonic() - start
    assert len(attempts) >= 3, attempts
    # google-api-core gives up as soon as the next (jittered) sleep would overrun the budget, so a
    # call may end before 3 s; it never runs on for the default 60 s
    assert 0.25 <= took < 10, took
    assert gcp.failure(info.value, "get bucket").reason == "CloudUnavailable"
