"""The admin policy's verdict is computed once per pass (reconcile) and handed to every cloud backend
(BackendContext.verdict); each backend refuses on it before any cloud call, and computes it itself
only when called outside a pass (issue 29: the policy ran up to four times per pass)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from featurestore_operator.api import OperatorConfig, parse_featurestore, resolve
from featurestore_operator.backends.base import BackendContext, Failed
from featurestore_operator.backends.gcs import GcsBackend
from featurestore_operator.backends.memorystore import MemorystoreBackend
from featurestore_operator.backends.policy import Verdict, verdict
from featurestore_operator.backends.workload_identity import WorkloadIdentity

CONFIG = OperatorConfig(default_provider="gcp", gcp_project="my-proj", gcp_region="us-central1")
GSA = "feast-team-a@my-proj.iam.gserviceaccount.com"


def store(**spec: Any):
    fs = parse_featurestore(
        {
            "apiVersion": "featurestore.kubeflow.org/v1alpha1",
            "kind": "FeatureStore",
            "metadata": {"name": "fs", "namespace": "team-a", "uid": "u-1"},
            "spec": {"project": "p", "gcp": {"serviceAccount": GSA}, **spec},
        }
    )
    return fs.model_copy(update={"spec": resolve(fs.spec, CONFIG)})


async def _no_secret(name: str) -> None:
    return None


def no_client(*args: Any) -> Any:
    raise AssertionError("a cloud client was built: the refusal must come before any call")


BACKENDS = {
    "memorystore": lambda: MemorystoreBackend(CONFIG, client_factory=no_client),
    "gcs": lambda: GcsBackend(CONFIG, client_factory=no_client),
    "workload-identity": lambda: WorkloadIdentity(CONFIG, client_factory=no_client, pool="my-proj.svc.id.goog"),
}


@pytest.mark.parametrize("kind", list(BACKENDS))
def test_a_backend_refuses_on_the_verdict_it_was_handed(kind):
    fs = store()
    assert verdict(fs, CONFIG).refusal is None  # its own config would allow the store
    refused = Verdict((("spec.gcp.serviceAccount", "refused by this pass's verdict"),))
    ctx = BackendContext(config=CONFIG, get_secret=_no_secret, verdict=refused)
    out = asyncio.run(BACKENDS[kind]().ensure(fs, ctx))
    assert isinstance(out, Failed) and out.reason == "PolicyViolation", out
    assert "spec.gcp.serviceAccount: refused by this pass's verdict" in out.message


@pytest.mark.parametrize("kind", list(BACKENDS))
def test_outside_a_pass_a_backend_computes_the_verdict_itself(kind):
    fs = store(gcp={"serviceAccount": GSA, "project": "evil-project"})
    assert verdict(fs, CONFIG).refusal and "spec.gcp.project" in (verdict(fs, CONFIG).refusal or "")
    ctx = BackendContext(config=CONFIG, get_secret=_no_secret)
    out = asyncio.run(BACKENDS[kind]().ensure(fs, ctx))
    assert isinstance(out, Failed) and out.reason == "PolicyViolation" and "spec.gcp.project" in out.message, out
