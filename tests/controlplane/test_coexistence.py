"""Beside the Feast Operator's CRD (featurestores.feast.dev: same kind, plural and singular, short
name `feast`), every kubectl command README.md, docs/ and NOTES.txt document reaches OUR FeatureStore,
and `kubectl get feast` still reaches theirs (we take no `feast` category).

Real kubectl against the real API server, with a FeatureStore named `demo` in both groups in the
same namespace, so a command resolving to the wrong CRD would still find an object."""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.kubectl_docs import UNAMBIGUOUS, DocCommand, featurestore_commands

FEAST_CRD_FILE = (
    Path(__file__).resolve().parents[1] / "support" / "crds" / "feast-operator" / "featurestores.feast.dev.yaml"
)
FEAST_CRD = "featurestores.feast.dev"
OURS = "featurestore.kubeflow.org"


@pytest.fixture(scope="module")
def feast_operator_crd(control_plane, featurestore_crd) -> Iterator[str]:
    control_plane.install_crds([FEAST_CRD_FILE])
    try:
        yield FEAST_CRD
    finally:  # the control plane is shared by the session: leave it as it was
        control_plane.request("DELETE", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{FEAST_CRD}")
        control_plane.crd_names.remove(FEAST_CRD)


@pytest.fixture
def both_demos(control_plane, feast_operator_crd, namespace) -> str:
    ours = {
        "apiVersion": f"{OURS}/v1alpha1",
        "kind": "FeatureStore",
        "metadata": {"name": "demo"},
        "spec": {"project": "demo"},
    }
    base = f"/apis/{OURS}/v1alpha1/namespaces/{namespace}/featurestores"
    control_plane.request("POST", base, ours)
    control_plane.request(
        "PATCH",
        f"{base}/demo/status",
        {
            "status": {
                "phase": "Ready",
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "Ready",
                        "message": "all parts are ready",
                        "lastTransitionTime": "2026-11-29T00:00:00Z",
                    }
                ],
            }
        },
        content_type="application/merge-patch+json",
    )
    theirs = {
        "apiVersion": "feast.dev/v1",
        "kind": "FeatureStore",
        "metadata": {"name": "demo"},
        "spec": {"feastProject": "theirs"},
    }
    control_plane.request("POST", f"/apis/feast.dev/v1/namespaces/{namespace}/featurestores", theirs)
    return namespace


def kubectl(kubectl_bin: str, control_plane, args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    # a fresh discovery cache per test: kubectl must see the Feast CRD installed moments ago
    cmd = [kubectl_bin, "--cache-dir", str(tmp_path / "kube-cache"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=control_plane.env())


def runnable(cmd: DocCommand, namespace: str) -> list[str]:
    # the docs' placeholders and sample names -> this test's objects
    text = cmd.text.replace("<namespace>", namespace).replace("team-a", namespace).replace("$NS", namespace)
    text = text.replace("kubeflow-user-example-com", namespace)  # the examples' profile namespace
    text = text.replace("'$SHA'", "a" * 40)  # docs/concepts/feature-repos.md: pin a commit
    # the demo store has no git repo: the documented ref patch gets the URL a git store has
    text = text.replace('{"git":{"ref":', '{"git":{"url":"https://example.com/repo.git","ref":')
    tokens = [t.replace("NAME", "demo").replace("driver-stats", "demo") for t in shlex.split(text, comments=True)[1:]]
    tokens = [namespace if t == "NS" else t for t in tokens]
    if not {"-n", "--namespace", "-A", "--all-namespaces"} & set(tokens) and cmd.verb != "explain":
        tokens += ["-n", namespace]
    if cmd.verb == "wait" and not any(t.startswith("--timeout") for t in tokens):
        tokens.append("--timeout=20s")
    if cmd.verb == "delete":  # resolved and authorized by the API server; the demo objects stay for the rest
        tokens.append("--dry-run=server")
    return tokens


#: What each verb prints only when it reached our CRD.
def assert_ours(cmd: DocCommand, out: str) -> None:
    if cmd.verb == "get" and "jsonpath" in cmd.text:
        assert out.startswith(f"{OURS}/"), out
    elif cmd.verb == "get" and " -o yaml" in cmd.text:
        assert f"apiVersion: {OURS}/" in out, out
    elif cmd.verb == "get":
        header = out.splitlines()[0].split()
        assert header[:2] in (["NAME", "READY"], ["NAMESPACE", "NAME"]) and "REASON" in header, out
        assert "STATUS" not in header, f"{cmd.text!r} listed the Feast Operator's FeatureStores:\n{out}"
    elif cmd.verb == "describe":
        assert f"API Version:  {OURS}/v1alpha1" in out, out
    elif cmd.verb == "wait":
        assert f"featurestore.{OURS}/demo condition met" in out, out
    elif cmd.verb == "explain":
        assert OURS in out and "feast.dev" not in out and "onlineStore" in out, out
    else:
        assert OURS in out, out


def test_documented_commands_name_only_our_resource():
    cmds = featurestore_commands()
    # README/docs: get, wait, describe, explain; NOTES.txt: wait, get, describe
    assert {c.verb for c in cmds} >= {"get", "wait", "describe", "explain"}, cmds
    sources = {c.source for c in cmds}
    assert {"README.md", "charts/featurestore-operator/templates/NOTES.txt"} <= sources, sources
    assert any(s.startswith("docs/") for s in sources), sources
    ambiguous = [c for c in cmds if c.resource not in UNAMBIGUOUS]
    assert not ambiguous, f"use `fs` or featurestores.{OURS}: {ambiguous}"


def test_documented_commands_resolve_to_ours_beside_feast_operator(kubectl_bin, control_plane, both_demos, tmp_path):
    failures = []
    for cmd in featurestore_commands():
        args = runnable(cmd, both_demos)
        # a documented field read (-o jsonpath=...) prints a value, no header: read the object's
        # apiVersion with the same command instead, which names whose resource it resolved to
        args = ["-o=jsonpath={.apiVersion}" if a.startswith(("-o=jsonpath", "jsonpath=")) else a for a in args]
        args = [a for i, a in enumerate(args) if not (a == "-o" and i + 1 < len(args) and "jsonpath" in args[i + 1])]
        out = kubectl(kubectl_bin, control_plane, args, tmp_path)
        deadline = time.monotonic() + 60
        while cmd.verb == "explain" and out.returncode != 0 and time.monotonic() < deadline:
            time.sleep(2)  # the API server publishes a new CRD's OpenAPI schema asynchronously
            out = kubectl(kubectl_bin, control_plane, args, tmp_path)
        try:
            assert out.returncode == 0, out.stderr
            assert_ours(cmd, out.stdout)
        except AssertionError as err:
            failures.append(f"{cmd.source}: kubectl {shlex.join(args)}\n{err}")
    assert not failures, "\n\n".join(failures)


def test_feast_short_name_stays_the_feast_operators(kubectl_bin, control_plane, both_demos, tmp_path):
    out = kubectl(kubectl_bin, control_plane, ["get", "feast", "-n", both_demos, "-o", "name"], tmp_path)
    assert out.returncode == 0, out.stderr
    # our CRD had the category `feast`, which made this list ours (categories win over short names)
    assert out.stdout.split() == ["featurestore.feast.dev/demo"], out.stdout
    ours = kubectl(kubectl_bin, control_plane, ["get", "kubeflow", "-n", both_demos, "-o", "name"], tmp_path)
    assert f"featurestore.{OURS}/demo" in ours.stdout.split(), ours.stdout + ours.stderr
