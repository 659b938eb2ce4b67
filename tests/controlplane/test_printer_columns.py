"""`kubectl get fs` answers "is it OK, and if not why" from the CRD's printer columns, read by the
real kubectl from the real API server: Ready, Reason, Online, Age; `-o wide` adds Message and
Server, and Server stays empty until status carries the feature server's URL (which the operator
writes only once the feature server is available)."""

from __future__ import annotations

import subprocess
from pathlib import Path

G = "featurestore.kubeflow.org"


def _get(kubectl_bin: str, control_plane, namespace: str, tmp_path: Path, *extra: str) -> list[list[str]]:
    out = subprocess.run(
        [kubectl_bin, "--cache-dir", str(tmp_path / "kube-cache"), "get", "fs", "-n", namespace, *extra],
        capture_output=True,
        text=True,
        timeout=60,
        env=control_plane.env(),
    )
    assert out.returncode == 0, out.stderr
    # columns are separated by at least two spaces (the message holds single spaces)
    return [[c.strip() for c in line.split("  ") if c.strip()] for line in out.stdout.splitlines()]


def _status(control_plane, namespace: str, status: dict) -> None:
    control_plane.request(
        "PATCH",
        f"/apis/{G}/v1alpha1/namespaces/{namespace}/featurestores/demo/status",
        {"status": status},
        content_type="application/merge-patch+json",
    )


def test_columns_follow_status(control_plane, featurestore_crd, kubectl_bin, namespace, tmp_path):
    control_plane.request(
        "POST",
        f"/apis/{G}/v1alpha1/namespaces/{namespace}/featurestores",
        {
            "apiVersion": f"{G}/v1alpha1",
            "kind": "FeatureStore",
            "metadata": {"name": "demo"},
            "spec": {"project": "demo"},
        },
    )
    _status(
        control_plane,
        namespace,
        {
            "phase": "Provisioning",
            "endpoints": {"onlineStore": "10.0.0.3:6378"},
            "conditions": [
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "Creating",
                    "message": "OnlineStore: creating, 3m elapsed, usually 5-10 min",
                    "lastTransitionTime": "2026-11-29T00:00:00Z",
                }
            ],
        },
    )
    rows = _get(kubectl_bin, control_plane, namespace, tmp_path)
    assert rows[0] == ["NAME", "READY", "REASON", "ONLINE", "AGE"]
    assert rows[1][:4] == ["demo", "False", "Creating", "10.0.0.3:6378"]

    wide = _get(kubectl_bin, control_plane, namespace, tmp_path, "-o", "wide")
    assert wide[0] == ["NAME", "READY", "REASON", "ONLINE", "AGE", "MESSAGE", "SERVER", "COMMIT"]
    # nothing under SERVER: the feature server is not serving yet
    assert wide[1][0] == "demo" and wide[1][5:] == ["OnlineStore: creating, 3m elapsed, usually 5-10 min"]

    url = f"http://demo-feature-server.{namespace}.svc.cluster.local:6566"
    _status(
        control_plane,
        namespace,
        {
            "phase": "Ready",
            "endpoints": {"featureServer": url},
            "featureRepo": {"servingCommit": "c" * 40},
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Ready",
                    "message": "all parts are ready",
                    "lastTransitionTime": "2026-11-29T00:05:00Z",
                }
            ],
        },
    )
    wide = _get(kubectl_bin, control_plane, namespace, tmp_path, "-o", "wide")
    assert wide[1][:4] == ["demo", "True", "Ready", "10.0.0.3:6378"]
    assert wide[1][5:] == ["all parts are ready", url, "c" * 40]
