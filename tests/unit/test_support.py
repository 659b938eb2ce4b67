"""Test support that decides verdicts: the one wait_for (retries "not yet", never a broken invariant),
the log check (tolerates only transient client errors it names) and concurrently (set-up steps at
the same time: every failure still reaches the test)."""

from __future__ import annotations

import itertools
import threading

import pytest

from tests.support.concurrently import concurrently
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


def test_concurrently_runs_the_steps_at_the_same_time_and_returns_each_result_by_name():
    both = threading.Barrier(2, timeout=10)  # broken (an error) unless both steps wait at once
    main = threading.current_thread()

    def step(value: str) -> tuple[str, bool]:
        both.wait()
        return value, threading.current_thread() is main

    assert concurrently({"a": lambda: step("A"), "b": lambda: step("B")}) == {"a": ("A", True), "b": ("B", False)}


def test_concurrently_lets_every_step_finish_then_raises_the_first_failure():
    finished = []

    def fails() -> None:
        raise AssertionError("feast apply failed")

    def slow() -> None:
        threading.Event().wait(0.2)
        finished.append("slow")

    with pytest.raises(AssertionError, match="feast apply failed"):
        concurrently({"slow": slow, "fails": fails, "after": lambda: finished.append("after")})
    assert sorted(finished) == ["after", "slow"], "a failing step cut another short (its clean-up too)"
