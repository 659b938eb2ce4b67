"""The quality gate: ruff (lint and format) and mypy keep operator/ clean. Configuration lives in
pyproject.toml ([tool.ruff], [tool.mypy]); fix the code rather than silencing the tools."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize(
    "check",
    [("ruff", "check", "operator"), ("ruff", "format", "--check", "operator")],
    ids=["ruff-lint", "ruff-format"],
)
def test_ruff(check: tuple[str, ...]) -> None:
    out = run(*check)
    assert out.returncode == 0, f"`{' '.join(check)}` found problems:\n{out.stdout}{out.stderr}"


def test_mypy() -> None:
    out = run("mypy")
    assert out.returncode == 0, f"mypy found problems:\n{out.stdout}{out.stderr}"
