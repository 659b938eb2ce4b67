"""The quality gate over the whole tree: ruff (lint and format) over the product, the tests, the
benchmarks and hack/'s Python; mypy over the product and tests/support (the fakes and fixtures'
machinery, where ``runtime.kube_api.KubeApi`` is checked against the client facade and the fake).
Configuration lives in pyproject.toml ([tool.ruff], [tool.mypy]); fix the code rather than silencing
the tools. The shell programs render puts into pods are checked by shellcheck in test_programs.py."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: every folder holding Python the project maintains
TREE = ("operator", "tests", "bench", "hack")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize(
    "check",
    [("ruff", "check", *TREE), ("ruff", "format", "--check", *TREE)],
    ids=["ruff-lint", "ruff-format"],
)
def test_ruff(check: tuple[str, ...]) -> None:
    out = run(*check)
    assert out.returncode == 0, f"`{' '.join(check)}` found problems:\n{out.stdout}{out.stderr}"


def test_ruff_sees_every_python_file() -> None:
    """No folder of the tree escapes the lint: what ruff lists is every *.py outside its excludes."""
    listed = {Path(p) for p in run("ruff", "check", "--show-files", *TREE).stdout.split() if p.endswith(".py")}
    excluded = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["extend-exclude"]
    want = {
        p
        for folder in TREE
        for p in (ROOT / folder).rglob("*.py")
        if not any(p.is_relative_to(ROOT / e) for e in excluded) and "__pycache__" not in p.parts
    }
    assert want and want <= listed, sorted(str(p) for p in want - listed)[:10]


def test_mypy() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert {"operator/featurestore_operator", "tests/support"} <= set(config["files"])
    out = run("mypy")
    assert out.returncode == 0, f"mypy found problems:\n{out.stdout}{out.stderr}"
