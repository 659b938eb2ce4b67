"""docs/concepts/index.md shows what `kubectl get fs -o wide` and `kubectl describe fs` print for a
real store: the real operator reconciling on the real API server (pods run by the test kubelet
stand-in), read by the real kubectl. `UPDATE_README=1` rewrites the page's sample from this run; otherwise the sample
must have the same columns and the same conditions (type, status, reason) as this run."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from kubernetes import client

from tests.controlplane.test_operator import G, P, V, fs_manifest, get_fs, make_ready
from tests.support.operator_process import OperatorProcess
from tests.support.waiting import wait_for

PAGE = Path(__file__).resolve().parents[2] / "docs" / "concepts" / "index.md"
SECTION = re.compile(r"(<!-- kubectl:start -->\n)(.*?)(<!-- kubectl:end -->)", re.S)


def _kubectl(kubectl_bin: str, *args: str) -> str:
    out = subprocess.run([kubectl_bin, *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _conditions(describe: str) -> list[tuple[str, ...]]:
    """(type, status, reason) rows of the Conditions table of `kubectl describe`."""
    rows = re.findall(
        r"^\s+Last Transition Time:.*\n\s+Message:.*\n(?:\s+Observed Generation:.*\n)?"
        r"\s+Reason:\s+(\S+)\n\s+Status:\s+(\S+)\n\s+Type:\s+(\S+)",
        describe,
        re.M,
    )
    return sorted((t, s, r) for r, s, t in rows)


@pytest.fixture
def crd_api(kube_api):
    return client.CustomObjectsApi(kube_api)


@pytest.fixture
def team_a(kube_api):
    """The sample's namespace name (the sample is printed as is, so column widths stay true)."""
    core = client.CoreV1Api(kube_api)
    # a Kubeflow profile namespace, labelled as the profile controller does (the sample's Kubeflow
    # condition is Configured)
    labels = {"app.kubernetes.io/part-of": "kubeflow-profile"}
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="team-a", labels=labels)))
    try:
        yield "team-a"
    finally:
        core.delete_namespace("team-a")


@pytest.fixture
def team_a_operator(control_plane, featurestore_crd, team_a):
    """The operator watching the sample's namespace."""
    with OperatorProcess(
        control_plane.kubeconfig, env={"FSO_RESYNC_SECONDS": "10"}, args=["--namespace", team_a]
    ) as op:
        yield op


def test_readme_sample_matches_a_real_run(team_a_operator, crd_api, kubelet, team_a, kubectl_bin):
    namespace = team_a
    crd_api.create_namespaced_custom_object(G, V, namespace, P, fs_manifest("driver-stats"))
    wait_for(
        lambda: (
            make_ready(kubelet, namespace, "driver-stats") >= 0
            and get_fs(crd_api.api_client, namespace, "driver-stats").get("status", {}).get("phase") == "Ready"
        ),
        timeout=90,
        interval=1,
        what="Ready",
    )
    wide = _kubectl(kubectl_bin, "get", "fs", "-n", namespace, "-o", "wide")
    describe = _kubectl(kubectl_bin, "describe", "fs", "-n", namespace, "driver-stats")
    sample = f"$ kubectl get fs -n team-a -o wide\n{wide}\n$ kubectl describe fs -n team-a driver-stats\n{describe}"
    text = PAGE.read_text()
    match = SECTION.search(text)
    assert match, "docs/concepts/index.md lost its <!-- kubectl:start/end --> markers"
    if os.environ.get("UPDATE_README") == "1":
        PAGE.write_text(SECTION.sub(lambda m: m.group(1) + "```\n" + sample + "```\n" + m.group(3), text))
        return
    shown = match.group(2)
    assert wide.splitlines()[0] in shown, "the page's `kubectl get fs -o wide` columns differ from a real run"
    assert _conditions(shown) == _conditions(describe), (
        "the page's `kubectl describe fs` conditions differ from a real run"
    )
