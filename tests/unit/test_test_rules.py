"""Rules the test suite keeps so that it can fail: a skip of something this machine can run fails
under CI (tests/support/prerequisites.py), and an ``UPDATE_GOLDEN=1`` run never reports a pass nor
writes under CI (tests/support/golden.py). Checked by running small pytest sessions for real."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.prerequisites import REPO_ROOT

#: the only places that may call pytest's skips directly
SKIP_HELPERS = {REPO_ROOT / "tests" / "support" / "prerequisites.py", REPO_ROOT / "tests" / "support" / "golden.py"}
SKIPS = {"skip", "importorskip", "skipif"}


def _direct_skips(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and node.attr in SKIPS:
            base = node.value
            if (isinstance(base, ast.Name) and base.id == "pytest") or (
                isinstance(base, ast.Attribute) and base.attr == "mark"
            ):
                found.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno} pytest...{node.attr}")
    return found


def test_every_skip_goes_through_the_shared_helpers():
    """``pytest.skip``/``importorskip``/``mark.skip(if)`` stay skips under CI=true: tests call
    prerequisites.missing / need_module / need_tool (fail under CI) or not_here (the skips CI allows)."""
    files = [p for d in ("tests", "bench") for p in (REPO_ROOT / d).rglob("*.py") if p not in SKIP_HELPERS]
    assert len(files) > 100
    found = [hit for p in files for hit in _direct_skips(p)]
    assert not found, "direct skips (use tests/support/prerequisites.py):\n" + "\n".join(found)


def _session(tmp_path: Path, body: str, **env: str) -> str:
    """Run ``body`` as a pytest session in ``tmp_path`` (no plugins: fast); its verbose output."""
    (tmp_path / "test_it.py").write_text(body)
    clean = {k: v for k, v in os.environ.items() if k not in ("CI", "FSO_REQUIRE_CONTROLPLANE", "UPDATE_GOLDEN")}
    clean.update(PYTHONPATH=os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "operator")]))
    clean.update(PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-rA", "-p", "no:cacheprovider", "--rootdir", str(tmp_path)],
        cwd=tmp_path,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    return out.stdout + out.stderr


GOLDEN_TESTS = """
from pathlib import Path
from tests.support import golden

def check(name):
    golden.check(Path(__file__).parent / name, "new output\\n", "the output", "pytest")

def test_differs():
    check("differs.txt")

def test_same():
    check("same.txt")

def test_absent():
    check("absent.txt")
"""


def _goldens(tmp_path: Path) -> None:
    (tmp_path / "differs.txt").write_text("old output\n")
    (tmp_path / "same.txt").write_text("new output\n")
    (tmp_path / "absent.txt").unlink(missing_ok=True)


def test_update_golden_rewrites_and_never_passes(tmp_path: Path):
    _goldens(tmp_path)
    out = _session(tmp_path, GOLDEN_TESTS, UPDATE_GOLDEN="1")
    for name in ("differs", "same", "absent"):
        assert f"test_it.py::test_{name} SKIPPED" in out, (name, out)
        assert (tmp_path / f"{name}.txt").read_text() == "new output\n"
    assert out.count("rewritten") == 2 and out.count("unchanged") == 1, out


def test_goldens_compare_without_update_and_ci_refuses_to_rewrite(tmp_path: Path):
    _goldens(tmp_path)
    out = _session(tmp_path, GOLDEN_TESTS)
    assert "test_it.py::test_same PASSED" in out and "the output changed" in out, out
    assert "test_it.py::test_differs FAILED" in out and "test_it.py::test_absent FAILED" in out, out
    out = _session(tmp_path, GOLDEN_TESTS, UPDATE_GOLDEN="1", CI="true")
    assert out.count("refused under CI=true") >= 3 and " PASSED" not in out and " SKIPPED" not in out, out
    assert (tmp_path / "differs.txt").read_text() == "old output\n", "CI rewrote a golden"
    assert not (tmp_path / "absent.txt").exists(), "CI wrote a golden"


MISSING_TESTS = """
from tests.support.prerequisites import need_module, need_tool, not_here

def test_module():
    need_module("no_such_module_fso", "a test double")

def test_tool():
    need_tool("no-such-tool-fso", "a Debian package")

def test_kind():
    not_here("Docker + kind")
"""


@pytest.mark.parametrize("env, want", [({}, "SKIPPED"), ({"CI": "true"}, "FAILED")], ids=["developer", "ci"])
def test_missing_prerequisites_fail_under_ci(tmp_path: Path, env: dict[str, str], want: str):
    out = _session(tmp_path, MISSING_TESTS, **env)
    for name, outcome in (("test_module", want), ("test_tool", want), ("test_kind", "SKIPPED")):
        assert f"test_it.py::{name} {outcome}" in out, (name, out)
