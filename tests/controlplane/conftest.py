"""Fixtures of the control-plane tier that run the real operator process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.kubelet import FakeKubelet
from tests.support.operator_process import OperatorProcess


@pytest.fixture
def operator(control_plane, featurestore_crd, namespace) -> Iterator[OperatorProcess]:
    """The operator on the default (local) provider, watching this test's namespace only: no other
    test's stores (or namespaces being garbage collected) reach its workers or its metrics."""
    proc = OperatorProcess(control_plane.kubeconfig, env={"FSO_RESYNC_SECONDS": "10"}, args=["--namespace", namespace])
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()
        print(proc.log_text()[-15000:])  # shown by pytest when the test failed


@pytest.fixture
def kubelet(kube_api) -> FakeKubelet:
    return FakeKubelet(kube_api)
