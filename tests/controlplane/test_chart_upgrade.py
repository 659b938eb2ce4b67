"""The CRD upgrade path, with the real helm binary on a real control plane of its own: install the
previous chart (as committed before the CRD moved from crds/ to templates/crds.yaml), then
`helm upgrade` to this chart. Helm never upgrades crds/, so before this change a new schema never
reached the cluster; now the upgrade replaces it, existing FeatureStores survive, and neither an
upgrade nor `helm uninstall` deletes the CRD (helm.sh/resource-policy: keep)."""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.support.controlplane import ControlPlane
from tests.support.helm import CHART, ROOT, helm

#: main before templates/crds.yaml: its chart installs the CRD from crds/ (with the `feast` category).
PREVIOUS = "adb3284bb7d0bce7b9b0706d25d2f49e8876d5fe"
CRD = "featurestores.featurestore.kubeflow.org"
G = "featurestore.kubeflow.org"


def previous_chart(tmp_path: Path) -> Path:
    archive = tmp_path / "previous.tar"
    out = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "-o", str(archive), PREVIOUS, "charts/featurestore-operator"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if out.returncode != 0:
        pytest.fail(f"cannot read the previous chart from git ({PREVIOUS}): {out.stderr}", pytrace=False)
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "previous", filter="data")
    return tmp_path / "previous" / "charts" / "featurestore-operator"


@pytest.fixture
def plane(control_plane):
    cp = ControlPlane(control_plane.binaries, with_controller_manager=False)
    cp.start()
    try:
        yield cp
    finally:
        cp.stop()


def _crd(cp: ControlPlane) -> dict:
    return cp.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{CRD}")


def test_upgrade_from_previous_chart_upgrades_the_crd_and_keeps_it(plane, helm_bin, tmp_path):
    old = previous_chart(tmp_path)
    kc = plane.kubeconfig
    helm(helm_bin, "install", "fso", str(old), "-n", "fso", "--create-namespace", kubeconfig=kc)
    before = _crd(plane)
    assert "feast" in before["spec"]["names"]["categories"]  # what the old chart installed
    plane.request("POST", "/api/v1/namespaces", {"metadata": {"name": "team-a"}})
    plane.request(
        "POST",
        f"/apis/{G}/v1alpha1/namespaces/team-a/featurestores",
        {
            "apiVersion": f"{G}/v1alpha1",
            "kind": "FeatureStore",
            "metadata": {"name": "demo"},
            "spec": {"project": "demo"},
        },
    )

    # the CRD came from crds/ and carries no Helm ownership: Helm refuses to adopt it silently
    refused = helm(helm_bin, "upgrade", "fso", str(CHART), "-n", "fso", kubeconfig=kc, check=False)
    assert refused.returncode != 0 and "ownership" in refused.stderr, refused.stderr
    # the documented one-time step (README: upgrading from 0.1.0)
    helm(helm_bin, "upgrade", "fso", str(CHART), "-n", "fso", "--take-ownership", kubeconfig=kc)
    after = _crd(plane)
    assert after["spec"]["names"]["categories"] == ["kubeflow"]
    columns = [c["name"] for c in after["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert columns == ["Ready", "Reason", "Online", "Age", "Message", "Server", "Commit"]
    pod = after["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["featureServer"]
    assert "pod" in pod["properties"]  # a field the previous CRD did not have
    assert after["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert plane.request("GET", f"/apis/{G}/v1alpha1/namespaces/team-a/featurestores/demo")["spec"]["project"] == "demo"

    # later upgrades need nothing special
    helm(helm_bin, "upgrade", "fso", str(CHART), "-n", "fso", "--set", "resyncSeconds=60", kubeconfig=kc)
    helm(helm_bin, "uninstall", "fso", "-n", "fso", kubeconfig=kc)
    assert _crd(plane)["metadata"]["name"] == CRD  # kept: deleting it would delete every FeatureStore
    assert (
        plane.request("GET", f"/apis/{G}/v1alpha1/namespaces/team-a/featurestores/demo")["metadata"]["name"] == "demo"
    )
