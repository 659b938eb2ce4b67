"""The troubleshooting table (docs/operations/troubleshooting.md) names every condition reason the
code can set, and nothing else (reasons collected statically from operator/ by tests/support/reasons.py)."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

from tests.support.reasons import emitted_reasons

PAGE = Path(__file__).resolve().parents[2] / "docs" / "operations" / "troubleshooting.md"


def documented_reasons() -> set[str]:
    section = PAGE.read_text()
    reasons: set[str] = set()
    for line in section.splitlines():
        if not line.startswith("| ") or line.startswith(("| condition", "|---")):
            continue
        first = line.split("|")[1]
        for group in first.split(";"):
            _, _, names = group.partition("/")
            reasons.update(n.strip() for n in names.split(",") if re.fullmatch(r"[A-Z][A-Za-z0-9]+", n.strip()))
    return reasons


def test_collector_finds_reasons_of_every_kind():
    found = emitted_reasons()
    # a backend outcome, a condition builder, a state table, a conditional reason, an f-string
    assert {"Conflict", "ApplyFailed", "Maintenance", "Adopting", "*Failed"} <= found


def test_every_emitted_reason_is_documented():
    documented = documented_reasons()
    missing = sorted(
        r for r in emitted_reasons() if not (fnmatch.filter(documented, r) if "*" in r else r in documented)
    )
    assert not missing, f"add these reasons to the table in docs/operations/troubleshooting.md: {missing}"


def test_no_stale_rows():
    emitted = emitted_reasons()
    patterns = [r for r in emitted if "*" in r]
    stale = sorted(
        r for r in documented_reasons() if r not in emitted and not any(fnmatch.fnmatch(r, p) for p in patterns)
    )
    assert not stale, f"docs/operations/troubleshooting.md names reasons the code never sets: {stale}"
