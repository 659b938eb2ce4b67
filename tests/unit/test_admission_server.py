"""The admission webhook's server set-up (handlers/admission.py) without a cluster: certificates
and the client config the API server is given. The webhook itself is exercised by the real API
server in tests/controlplane/test_admission.py."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import kopf
from cryptography import x509
from featurestore_operator.api import OperatorConfig
from featurestore_operator.handlers.admission import ServiceWebhookServer, hostnames, self_signed, server


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
    srv = server(OperatorConfig(webhook_enabled=True, webhook_cert_dir=tmp_path, webhook_port=9555))
    assert isinstance(srv, kopf.WebhookServer)
    assert (srv.certfile, srv.pkeyfile, srv.cafile, srv.port) == (
        str(tmp_path / "tls.crt"),
        str(tmp_path / "tls.key"),
        str(tmp_path / "ca.crt"),
        9555,
    )


def test_service_client_config_replaces_the_url() -> None:
    class Inner:
        async def __call__(self, fn: Any) -> AsyncIterator[kopf.WebhookClientConfig]:
            yield kopf.WebhookClientConfig(url="https://10.0.0.1:9443", caBundle="Q0E=")

    async def first() -> kopf.WebhookClientConfig:
        async for config in ServiceWebhookServer(Inner(), "fso-system", "fso-webhook")(lambda *a, **k: None):
            return config
        raise AssertionError("nothing yielded")

    got = asyncio.run(first())
    assert got == {
        "service": {"namespace": "fso-system", "name": "fso-webhook", "port": 443, "path": ""},
        "caBundle": "Q0E=",
    }
