"""Fixtures of the control-plane tier that run the real operator process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.helm import NO_WEBHOOK, SESSION_CRD, Release, installed
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


@pytest.fixture
def release(control_plane, featurestore_crd, helm_bin, namespace, request) -> Iterator[Release]:
    """The chart installed into `namespace` for one test (tests/support/helm.py ``installed``).
    Without the webhook unless parametrized ``{"webhook": True}`` (indirect)."""
    webhook = getattr(request, "param", {}).get("webhook", False)
    values = ["--set", "resyncSeconds=10", *SESSION_CRD, *([] if webhook else NO_WEBHOOK)]
    with installed(control_plane, helm_bin, namespace, *values) as rel:
        yield rel


@pytest.fixture
def store_namespace(make_namespace) -> str:
    """Where the chart's operator manages stores (the release lives in ``namespace``)."""
    return make_namespace("chart-store")
