"""The admission webhook (handlers/admission.py) without a cluster: what it reviews and what it
always admits, the certificate the replicas share, and the caBundle it writes into the chart's
configuration. The real API server calls it in tests/controlplane/test_admission.py and
tests/controlplane/test_webhook_chart.py."""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime as dt
import ipaddress
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from featurestore_operator.api import OperatorConfig
from featurestore_operator.handlers import admission
from featurestore_operator.handlers.admission import (
    decide,
    hostnames,
    inject_ca,
    keep_certificate,
    respond,
    self_signed,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.fake_kube import FakeKube

LOOSE = OperatorConfig(policy='{"maxReplicas": 20}')
TIGHT = OperatorConfig(policy='{"maxReplicas": 2}')


def fs(replicas: int = 5, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "featurestore.kubeflow.org/v1alpha1",
        "kind": "FeatureStore",
        "metadata": {"name": "fs", "namespace": "team-a", "uid": "u1", **meta},
        "spec": {"project": "p", "featureServer": {"replicas": replicas}},
    }


def request(
    operation: str, obj: dict[str, Any] | None, old: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    return {"uid": "req-1", "operation": operation, "object": obj, "oldObject": old, **extra}


def test_a_store_admitted_under_a_loose_policy_is_refused_on_create_under_the_tight_one() -> None:
    assert decide(request("CREATE", fs()), LOOSE) == (True, "")
    allowed, why = decide(request("CREATE", fs()), TIGHT)
    assert not allowed and "spec.featureServer.replicas" in why and "maxReplicas" in why


META = st.fixed_dictionaries(
    {},
    optional={
        "finalizers": st.lists(st.sampled_from(["featurestore.kubeflow.org/finalizer", "example.com/x"]), max_size=2),
        "labels": st.dictionaries(st.sampled_from(["a", "b", "app"]), st.text(max_size=5), max_size=3),
        "annotations": st.dictionaries(st.sampled_from(["note", "x/y"]), st.text(max_size=20), max_size=2),
        "deletionTimestamp": st.just("2026-01-01T00:00:00Z"),
    },
)


@settings(max_examples=60, deadline=None)
@given(before=META, after=META)
def test_metadata_only_updates_always_pass_even_when_the_spec_breaks_the_policy(before: dict, after: dict) -> None:
    """The class of the 422 on finalizer removal: with the spec unchanged, any change of metadata
    (finalizers added or removed, labels, annotations, a deletion in progress) is admitted."""
    allowed, why = decide(request("UPDATE", fs(**after), fs(**before)), TIGHT)
    assert allowed, why


@pytest.mark.parametrize("operation", ["DELETE", "CONNECT"])
def test_deletes_always_pass(operation: str) -> None:
    assert decide(request(operation, None, fs()), TIGHT) == (True, "")


def test_status_updates_pass() -> None:
    changed = fs()
    changed["status"] = {"phase": "Ready"}
    assert decide(request("UPDATE", changed, fs(), subResource="status"), TIGHT) == (True, "")


def test_spec_changes_are_still_reviewed() -> None:
    allowed, why = decide(request("UPDATE", fs(replicas=6), fs(replicas=5)), TIGHT)
    assert not allowed and "maxReplicas" in why
    assert decide(request("UPDATE", fs(replicas=2), fs(replicas=5)), TIGHT)[0]  # back under the ceiling


def test_the_answer_is_an_admission_review_naming_the_request() -> None:
    body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request("CREATE", fs())}
    out = respond(body, TIGHT)
    assert out["apiVersion"] == "admission.k8s.io/v1" and out["kind"] == "AdmissionReview"
    assert out["response"]["uid"] == "req-1" and out["response"]["allowed"] is False
    assert out["response"]["status"]["code"] == 422 and "maxReplicas" in out["response"]["status"]["message"]
    body["request"] = request("UPDATE", fs(finalizers=[]), fs(finalizers=["featurestore.kubeflow.org/finalizer"]))
    assert respond(body, TIGHT)["response"] == {"uid": "req-1", "allowed": True}


# --------------------------------------------------------------------------- certificates


def test_self_signed_certificate_names_the_service_and_loopback(tmp_path: Path) -> None:
    config = OperatorConfig(webhook_enabled=True, webhook_service="fso-system/fso-webhook")
    certfile, keyfile = self_signed(hostnames(config), tmp_path)
    cert = x509.load_pem_x509_certificate(certfile.read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"fso-webhook.fso-system.svc", "fso-webhook.fso-system.svc.cluster.local", "localhost"} <= set(
        sans.get_values_for_type(x509.DNSName)
    )
    assert ipaddress.ip_address("127.0.0.1") in sans.get_values_for_type(x509.IPAddress)
    assert keyfile.stat().st_mode & 0o077 == 0  # the key is not readable by others


def test_cert_manager_directory_is_used_as_is(tmp_path: Path) -> None:
    for name in ("tls.crt", "tls.key", "ca.crt"):
        (tmp_path / name).write_text("x")
    files = admission._files(OperatorConfig(webhook_enabled=True, webhook_cert_dir=tmp_path), tmp_path / "other")
    assert files == (tmp_path / "tls.crt", tmp_path / "tls.key", tmp_path / "ca.crt")


KEPT = OperatorConfig(
    webhook_enabled=True,
    webhook_service="fso/fso-webhook",
    webhook_secret="fso/fso-webhook-tls",
    webhook_configuration="fso-webhook",
)


def test_replicas_share_one_certificate_kept_in_the_secret(tmp_path: Path) -> None:
    """Two replicas start at once against the chart's empty Secret: both serve the SAME certificate
    (the guarded write lets one win; the other reads the winner's), and a restart reuses it."""
    kube = FakeKube()
    kube.put(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {"name": "fso-webhook-tls", "namespace": "fso"},
        }
    )
    a, b, c = (tmp_path / n for n in "abc")
    for d in (a, b, c):
        d.mkdir()

    async def both() -> None:
        await asyncio.gather(keep_certificate(kube, KEPT, a), keep_certificate(kube, KEPT, b))
        await keep_certificate(kube, KEPT, c)

    asyncio.run(both())
    assert (a / "tls.crt").read_bytes() == (b / "tls.crt").read_bytes() == (c / "tls.crt").read_bytes()
    assert (a / "tls.key").read_bytes() == (b / "tls.key").read_bytes()
    secret = kube.objects[("Secret", "fso", "fso-webhook-tls")]
    assert base64.b64decode(secret["data"]["tls.crt"]) == (a / "tls.crt").read_bytes()
    assert "POST" not in [m for m, k in kube.writes if k == "Secret"]  # the chart's Secret: never created


def test_an_expiring_or_foreign_certificate_is_replaced(tmp_path: Path) -> None:
    kube = FakeKube()
    stale = {
        admission.NAMES_ANNOTATION: ",".join(hostnames(KEPT)),
        admission.EXPIRES_ANNOTATION: (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).isoformat(),
    }
    kube.put(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "fso-webhook-tls", "namespace": "fso", "annotations": stale},
            "data": {"tls.crt": base64.b64encode(b"old").decode(), "tls.key": base64.b64encode(b"old").decode()},
        }
    )
    asyncio.run(keep_certificate(kube, KEPT, tmp_path))
    assert (tmp_path / "tls.crt").read_bytes() != b"old"
    x509.load_pem_x509_certificate((tmp_path / "tls.crt").read_bytes())


def vwc(*bundles: str) -> dict[str, Any]:
    hooks = [
        {
            "name": f"h{i}.example.com",
            "clientConfig": {"service": {"namespace": "fso", "name": "fso-webhook"}, **({"caBundle": b} if b else {})},
        }
        for i, b in enumerate(bundles)
    ]
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "fso-webhook"},
        "webhooks": hooks,
    }


def test_ca_bundle_goes_into_every_webhook_of_the_one_named_configuration() -> None:
    kube = FakeKube()
    kube.put(vwc("", "b2xk"))
    other = vwc("")
    other["metadata"]["name"] = "someone-elses"
    kube.put(other)
    untouched = copy.deepcopy(kube.objects[("ValidatingWebhookConfiguration", "", "someone-elses")])
    assert asyncio.run(inject_ca(kube, "fso-webhook", b"CA"))
    live = kube.objects[("ValidatingWebhookConfiguration", "", "fso-webhook")]
    assert [h["clientConfig"]["caBundle"] for h in live["webhooks"]] == [base64.b64encode(b"CA").decode()] * 2
    assert live["webhooks"][0]["clientConfig"]["service"] == {"namespace": "fso", "name": "fso-webhook"}
    assert kube.objects[("ValidatingWebhookConfiguration", "", "someone-elses")] == untouched
    before = copy.deepcopy(kube.writes)
    assert asyncio.run(inject_ca(kube, "fso-webhook", b"CA"))
    assert kube.writes == before  # already right: no write


def test_a_missing_configuration_is_never_created() -> None:
    kube = FakeKube()
    assert not asyncio.run(inject_ca(kube, "fso-webhook", b"CA"))
    assert kube.writes == [] and not kube.objects


def test_a_replica_is_ready_only_once_it_serves_the_webhook() -> None:
    from featurestore_operator.runtime.health import Health

    async def answers() -> list[int]:
        import aiohttp

        from tests.support.process import free_port

        health, port = Health(), free_port()
        health.needs_webhook, health.leading = True, False  # a stand-by: healthy
        await health.start(port, "127.0.0.1")
        try:
            codes = []
            async with aiohttp.ClientSession() as session:
                for _ in range(2):
                    for path in ("/healthz", "/readyz"):
                        async with session.get(f"http://127.0.0.1:{port}{path}") as r:
                            codes.append(r.status)
                    health.webhook.set()
            return codes
        finally:
            await health.stop()

    assert asyncio.run(answers()) == [200, 503, 200, 200]
