"""Fixtures of the data-path tier."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def shared_once() -> Iterator[Callable[[str, Callable[[], Any], Callable[[Any], None]], Any]]:
    """``shared_once(key, make, close)``: set-up that several modules need unchanged, made by the
    first module that asks and closed at the end of the session. Only for what is small to keep
    (a redis-server, a few files): a Ray cluster stays module-scoped (~1 GB while it lives)."""
    made: dict[str, Any] = {}
    closers: list[Callable[[], None]] = []

    def once(key: str, make: Callable[[], Any], close: Callable[[Any], None]) -> Any:
        if key not in made:
            made[key] = value = make()
            closers.append(lambda: close(value))
        return made[key]

    yield once
    for close in reversed(closers):
        close()
