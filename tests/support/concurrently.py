"""Independent set-up steps of one fixture, run at the same time.

A data-path fixture mostly waits: on its subprocesses (``feast apply``, a materialization pod, a Ray
node starting), each a cold Python start that keeps ONE core busy for seconds while pytest sleeps.
On a 2-core machine the other core idles; two independent steps at once use it. Each step keeps
its own processes, ports and directories (nothing is shared between them but the machine), and
every step's result is checked exactly as before: this only changes when a step runs.

    runs = concurrently({"one": lambda: _run(...), "split": lambda: _run(...)})

The calling thread takes steps too, first the first one: put a step that starts long-lived
processes first, so they get ``ManagedProcess``'s die-with-pytest guard (PR_SET_PDEATHSIG, which
only the main thread may set). Every step runs to its end (its own clean-up included) even when
another fails; the first failure (in the given order) is then raised.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["concurrently"]


def concurrently(steps: Mapping[str, Callable[[], Any]], workers: int = 2) -> dict[str, Any]:
    """Run ``steps`` (name -> call), ``workers`` at a time; their results by name, in order."""
    names = iter(list(steps))
    first = next(names, None)  # the calling thread's
    lock = threading.Lock()
    results: dict[str, Any] = {}
    errors: dict[str, BaseException] = {}

    def take(name: str | None = None) -> None:
        while True:
            if name is None:
                with lock:
                    name = next(names, None)
            if name is None:
                return
            try:
                results[name] = steps[name]()
            except BaseException as err:  # noqa: BLE001 - raised below, after every step ended
                errors[name] = err
            name = None

    helpers = [threading.Thread(target=take, name=f"setup-{i}", daemon=True) for i in range(workers - 1)]
    for thread in helpers:
        thread.start()
    take(first)
    for thread in helpers:
        thread.join()
    for name in steps:
        if name in errors:
            raise errors[name]
    return {name: results[name] for name in steps}
