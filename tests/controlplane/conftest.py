"""Fixtures of the control-plane tier that run the real operator process."""

from __future__ import annotations

import pytest

from tests.support.kubelet import FakeKubelet
from tests.support.operator_process import OperatorProcess


@pytest.fixture(scope="module")
def operator(control_plane, featurestore_crd):
    """The operator, watching all namespaces, on the default (local) provider."""
    proc = OperatorProcess(control_plane.kubeconfig, env={"FSO_RESYNC_SECONDS": "10"})
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()
        print(proc.log_text()[-15000:])  # shown by pytest when a test of the module failed


@pytest.fixture
def kubelet(kube_api) -> FakeKubelet:
    return FakeKubelet(kube_api)
