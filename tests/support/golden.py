"""Golden files (render goldens, the generated reference pages): compared, or rewritten on request.

``UPDATE_GOLDEN=1`` rewrites a golden that differs and then SKIPS the comparison with "rewritten"
(or "unchanged"): a rewrite run compares the output with itself, proves nothing, and so never
reports a pass. Under ``CI=true`` it is refused (the test fails): CI checks goldens, never writes
them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.prerequisites import REPO_ROOT, truthy

ENV = "UPDATE_GOLDEN"


def rewriting() -> bool:
    """Whether this run rewrites goldens (fails the test when asked to under CI)."""
    if not truthy(ENV):
        return False
    if truthy("CI"):
        pytest.fail(f"{ENV}=1 is refused under CI=true: CI checks goldens, it never rewrites them", pytrace=False)
    return True


def rewrite(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` when it differs, then skip saying which it was."""
    where = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
    if path.exists() and path.read_text() == text:
        pytest.skip(f"{ENV}=1: {where} unchanged (nothing compared)")
    path.write_text(text)
    pytest.skip(f"{ENV}=1: {where} rewritten: review the diff, then run without {ENV}")


def check(path: Path, text: str, what: str, how: str) -> None:
    """``path`` must hold exactly ``text``; with ``UPDATE_GOLDEN=1`` rewrite it instead (see module)."""
    if rewriting():
        rewrite(path, text)
    assert path.exists(), f"no golden {path.name} ({what}): run {ENV}=1 {how}"
    assert path.read_text() == text, f"{what} changed: review, then run {ENV}=1 {how}"
