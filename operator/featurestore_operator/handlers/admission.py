"""The validating admission webhook: the model, the operator config and the admin policy (and, on
update, the immutable fields) at ``kubectl apply`` time, through kopf's public admission API.

``register(config)`` (called by main before kopf starts) adds the ``@kopf.on.validate`` handler
and a start-up handler that sets ``settings.admission``: kopf serves HTTPS on
``config.webhook_port`` and keeps the ValidatingWebhookConfiguration ``WEBHOOK_CONFIGURATION``
in sync (``settings.admission.managed``). Certificates:

* ``config.webhook_cert_dir`` (cert-manager, or any mounted Secret): ``tls.crt``/``tls.key`` and
  ``ca.crt`` when present; kopf reloads them when the files change;
* otherwise a self-signed certificate generated at start-up with ``cryptography`` in a child
  interpreter (kopf's own generator needs ``certbuilder``, not installed) for the Service's DNS names and
  ``config.webhook_host``; its certificate is the caBundle kopf writes into the configuration.

``config.webhook_service`` (NAMESPACE/NAME) makes the configuration point at that Service (what a
cluster needs: API servers do not resolve cluster DNS names in URLs); without it, at
``https://<webhook_host>:<port>`` (tests: the API server calls 127.0.0.1).

The operator re-checks everything in reconcile: the webhook can be down (failurePolicy Fail
refuses writes meanwhile, but an admin may delete the configuration) or bypassed.
"""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import kopf

from ..api import GROUP, PLURAL, VERSION, OperatorConfig
from ..api.review import message, review

log = logging.getLogger(__name__)

#: Name of the ValidatingWebhookConfiguration kopf manages (cluster-scoped).
WEBHOOK_CONFIGURATION = f"{PLURAL}.{GROUP}"
SERVICE_PORT = 443
CERT_VALIDITY = dt.timedelta(days=3650)


def register(config: OperatorConfig) -> None:
    """Add the admission handlers when ``config.webhook_enabled``; a no-op otherwise."""
    if not config.webhook_enabled:
        return

    @kopf.on.validate(GROUP, VERSION, PLURAL, id="policy", operations=["CREATE", "UPDATE"])
    def validate(body: kopf.Body, **kwargs: Any) -> None:
        # kopf passes the stored object as `old` on UPDATE (not in its WebhookFn protocol's signature)
        old = kwargs.get("old") if kwargs.get("operation") == "UPDATE" else None
        problems = review(dict(body), config, dict(old) if old else None)
        if problems:
            raise kopf.AdmissionError(message(problems), code=422)

    @kopf.on.startup()
    def admission_settings(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure(settings, config)


def configure(settings: kopf.OperatorSettings, config: OperatorConfig) -> None:
    settings.admission.server = server(config)
    settings.admission.managed = WEBHOOK_CONFIGURATION


def _service(config: OperatorConfig) -> tuple[str, str] | None:
    if not config.webhook_service:
        return None
    namespace, _, name = config.webhook_service.partition("/")
    return namespace, name


def hostnames(config: OperatorConfig) -> list[str]:
    """Names the certificate must hold: the Service's DNS names, the configured host, loopback."""
    names: list[str] = []
    svc = _service(config)
    if svc:
        ns, name = svc
        names += [f"{name}.{ns}.svc", f"{name}.{ns}.svc.cluster.local", f"{name}.{ns}"]
    if config.webhook_host:
        names.append(config.webhook_host)
    return [*names, "localhost", "127.0.0.1"]


def self_signed(names: list[str], directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate (its own CA) for ``names``; returns (certfile, keyfile). Made by a
    child interpreter: a one-off certificate is not worth keeping `cryptography` (~8 MiB resident,
    bench/memory.py) loaded in the operator for its whole life."""
    module = "featurestore_operator.backends.certificates"
    subprocess.run(
        [sys.executable, "-m", module, str(CERT_VALIDITY.days), str(directory), *names], check=True, timeout=120
    )
    return directory / "tls.crt", directory / "tls.key"


class ServiceWebhookServer:
    """kopf's WebhookServer, announced to the API server as a Service (clientConfig.service) instead
    of a URL. Implements kopf's public webhook-server protocol (a callable yielding client configs)."""

    def __init__(self, inner: kopf.WebhookServer, namespace: str, name: str, port: int = SERVICE_PORT):
        self.inner, self.namespace, self.name, self.port = inner, namespace, name, port

    async def __call__(self, fn: kopf.WebhookFn) -> AsyncIterator[kopf.WebhookClientConfig]:
        async for found in self.inner(fn):
            config = kopf.WebhookClientConfig(
                service=kopf.WebhookClientConfigService(
                    namespace=self.namespace, name=self.name, port=self.port, path=""
                )
            )
            if "caBundle" in found:
                config["caBundle"] = found["caBundle"]
            yield config


def server(config: OperatorConfig) -> kopf.WebhookServer | ServiceWebhookServer:
    """The HTTPS server kopf runs for the webhook (see the module docstring)."""
    if config.webhook_cert_dir:
        ca = config.webhook_cert_dir / "ca.crt"
        certfile, keyfile = config.webhook_cert_dir / "tls.crt", config.webhook_cert_dir / "tls.key"
        cafile: Path | None = ca if ca.exists() else None
    else:
        certfile, keyfile = self_signed(hostnames(config), Path(tempfile.mkdtemp(prefix="fso-webhook-")))
        cafile = certfile
    inner = kopf.WebhookServer(
        addr="0.0.0.0",
        port=config.webhook_port,
        host=config.webhook_host,
        certfile=str(certfile),
        pkeyfile=str(keyfile),
        cafile=str(cafile) if cafile else None,
    )
    svc = _service(config)
    if svc:
        return ServiceWebhookServer(inner, *svc)
    return inner
