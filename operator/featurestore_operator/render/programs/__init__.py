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
