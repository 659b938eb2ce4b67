"""Programs the rendered workloads run, kept as real files so ruff, mypy and shellcheck gate them
and unit tests run them (tests/unit/test_programs.py). Render reads them as package data and puts
their text into container arguments (``sh -c SCRIPT --`` / ``python -c SOURCE``); they are never
imported by the operator (the Python ones import Feast, which the operator process must not)."""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def source(name: str) -> str:
    """The text of the program file ``name`` of this package."""
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


#: Prepended to every Python program the operator runs with Feast: file registry writes replace
#: the file whole (registry_writes.py).
PRELUDE = "registry_writes.py"


#: Prepended before the prelude to programs that take Feast's definitions only from the registry.
SKIP_TYPECHECKS = "skip_typechecks.py"


@cache
def feast_program(name: str, typechecks: bool = True) -> str:
    """The text of the Python program ``name`` after the prelude, as a Feast container runs it;
    ``typechecks=False``: Feast's classes are not instrumented by typeguard (skip_typechecks.py)."""
    text = source(PRELUDE) + "\n\n" + source(name)
    return text if typechecks else source(SKIP_TYPECHECKS) + "\n\n" + text
