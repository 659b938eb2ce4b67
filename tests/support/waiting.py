"""Polling for tests against real processes: the one ``wait_for``.

Waits are sized for a loaded 2-core machine (five test sessions, etcd, kube-apiserver and the
operator share it): a reaction the operator shows in a second when idle can take 20-40 s there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(fn: Callable[[], T | None], timeout: float = 60.0, interval: float = 0.25, what: str = "condition") -> T:
    """Call ``fn`` until it returns something truthy and return that; fail after ``timeout``.

    Any exception but ``AssertionError`` means "not yet" (a 404 before an object exists, a refused
    connection while a server restarts). An ``AssertionError`` raised by ``fn`` fails the test at
    once: an invariant asserted inside a wait must hold on every poll, not eventually."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = fn()
            if value:
                return value
            last = value
        except AssertionError:
            raise
        except Exception as err:  # noqa: BLE001 - not there yet
            last = err
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")
        time.sleep(interval)
