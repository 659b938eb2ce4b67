"""Test support that decides verdicts: the one wait_for (retries "not yet", never a broken invariant)
and the log check (tolerates only transient client errors it names)."""

from __future__ import annotations

import itertools

import pytest

from tests.support.logs import tracebacks
from tests.support.waiting import wait_for


def test_returns_the_first_truthy_value_after_not_yet_errors():
    calls = itertools.count()

    def eventually() -> int:
        n = next(calls)
        if n < 2:
            raise LookupError("404: not there yet")
        return n if n >= 3 else 0

    assert wait_for(eventually, timeout=5, interval=0.01) == 3


def test_an_assertion_inside_the_predicate_fails_at_once():
    calls = itertools.count()

    def invariant_broken() -> bool:
        next(calls)
        raise AssertionError("hostile case reached phase Failed")

    with pytest.raises(AssertionError, match="hostile case reached phase Failed"):
        wait_for(invariant_broken, timeout=30, interval=0.01)
    assert next(calls) == 1, "the predicate was retried after its invariant broke"


def test_timeout_names_what_and_the_last_value():
    with pytest.raises(
        AssertionError, match=r"timed out after 0s waiting for the store Ready; last: KeyError\('phase'\)"
    ):
        wait_for(lambda: {}["phase"], timeout=0.1, interval=0.01, what="the store Ready")


def test_tracebacks_tolerate_only_named_transient_client_errors():
    transient = (
        '{"message": "Traceback (most recent call last): ... urllib3.exceptions.ProtocolError: '
        "('Connection aborted.', RemoteDisconnected('Remote end closed connection'))\"}"
    )
    crash = '{"message": "Traceback (most recent call last): ... KeyError: \'spec\'"}'
    unnamed = '{"message": "Traceback (most recent call last): ... urllib3.exceptions.MaxRetryError: refused"}'
    assert tracebacks("\n".join([transient, crash, unnamed, '{"message": "ok"}'])) == [crash, unnamed]
