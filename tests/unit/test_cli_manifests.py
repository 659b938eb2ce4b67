"""`validate` and `render` refuse a near miss of a FeatureStore (a misspelled kind or group, the
Feast Operator's feast.dev kind), naming it, instead of exiting 0 with nothing printed; a file of
other kinds only (a feature repo ConfigMap, an empty file) is skipped with a note, exit 0, so
`validate -f examples/` works."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

GOOD = "apiVersion: featurestore.kubeflow.org/v1alpha1\nkind: FeatureStore\nmetadata: {name: x}\nspec: {project: p}\n"
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: repo}\ndata: {a.py: ''}\n"

CASES = {
    "misspelled-kind": (GOOD.replace("kind: FeatureStore", "kind: FeatureStor"), "'FeatureStor' is not a FeatureStore"),
    "lowercase-kind": (GOOD.replace("kind: FeatureStore", "kind: Featurestore"), "expected apiVersion"),
    "misspelled-group": (GOOD.replace("kubeflow.org", "kubeflow.com"), "'featurestore.kubeflow.com/v1alpha1'"),
    "wrong-version": (GOOD.replace("v1alpha1", "v1"), "expected apiVersion featurestore.kubeflow.org/v1alpha1"),
    "feast-operator": (GOOD.replace("featurestore.kubeflow.org/v1alpha1", "feast.dev/v1"), "Feast Operator's"),
}
SKIPPED = {
    "only-configmap": (CONFIGMAP, "no FeatureStore in this file (1 ConfigMap): skipped"),
    "empty": ("# nothing here\n", "no FeatureStore in this file (no documents): skipped"),
}


def _run(command: str, path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "featurestore_operator.cli", command, "-f", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("command", ["validate", "render"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_no_featurestore_is_an_error(tmp_path, command, case):
    text, expected = CASES[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    out = _run(command, path)
    assert out.returncode == 1, out
    assert expected in out.stderr and out.stdout == "", out.stderr
    assert str(path) in out.stderr  # the message names the file


@pytest.mark.parametrize("command", ["validate", "render"])
@pytest.mark.parametrize("case", sorted(SKIPPED))
def test_no_featurestore_at_all_is_skipped_with_a_note(tmp_path, command, case):
    text, expected = SKIPPED[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    out = _run(command, path)
    assert out.returncode == 0, out
    assert out.stderr == f"note: {path}: {expected}\n" and out.stdout == "", out


def test_other_kinds_beside_a_featurestore_are_skipped(tmp_path):
    path = tmp_path / "both.yaml"
    path.write_text(CONFIGMAP + "---\n" + GOOD)
    out = _run("validate", path)
    assert out.returncode == 0 and out.stdout == "featurestore/x: valid\n", out
