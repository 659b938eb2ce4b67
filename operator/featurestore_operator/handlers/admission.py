"""The validating admission webhook: the model, the operator config and the admin policy (and, on
update, the immutable fields) at ``kubectl apply`` time (docs/security/admission-webhook.md).

What it checks: CREATE, and UPDATEs that change ``spec``. Everything else is admitted at once:
DELETE, subresources (status), and metadata-only updates (finalizers, labels, annotations), so a
policy tightened after a store was admitted never blocks the operator's own finalizer removal or
a user's clean-up. The operator re-checks everything in reconcile (the webhook can be down or
bypassed).

Who serves it: EVERY replica, from process start, leader or not (``serve`` runs outside kopf's
operator loop, which only the leader runs); the chart's Service selects all operator pods. The
HTTPS server is our own (``handlers.webhook_server``: bounded in concurrent requests, body size and
read time, since any pod can reach the port); kopf never creates or patches any webhook
configuration (no ``settings.admission.managed``).

The ValidatingWebhookConfiguration is a chart template. Its caBundle comes from either

* cert-manager's CA injector (``cert-manager.io/inject-ca-from``): the operator reads the issued
  ``tls.crt``/``tls.key`` from ``config.webhook_cert_dir`` (re-read when they change); or
* the operator: one self-signed certificate kept in the Secret ``config.webhook_secret`` (in the
  operator's namespace, shared by all replicas; the first replica makes it, the others read it,
  a resourceVersion-guarded write decides a race), whose certificate it writes as the caBundle of
  the ONE configuration ``config.webhook_configuration`` (get + patch on that name only). Every
  replica re-checks both every ``KEEP_SECONDS`` (a ``helm upgrade --force`` that drops the
  caBundle heals itself).

Without either (development), a throw-away self-signed certificate for this process only.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import logging
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..api import GROUP, OperatorConfig
from ..api.review import message, review
from ..runtime.kube import Kube
from . import webhook_server

log = logging.getLogger(__name__)

CERT_VALIDITY = dt.timedelta(days=3650)
#: A kept certificate with less than this left is replaced (by whichever replica sees it first).
RENEW_BEFORE = dt.timedelta(days=30)
KEEP_SECONDS = 30.0
VWC = ("ValidatingWebhookConfiguration", "admissionregistration.k8s.io/v1")
NAMES_ANNOTATION = f"{GROUP}/webhook-names"
EXPIRES_ANNOTATION = f"{GROUP}/webhook-not-after"


# --------------------------------------------------------------------------- the review


def decide(request: dict[str, Any], config: OperatorConfig) -> tuple[bool, str]:
    """(allowed, why not) for one AdmissionReview ``request``. Only a new or changed spec is
    reviewed: deletes, subresources and metadata-only updates always pass (the class of
    clean-up writes a tightened policy must never block)."""
    operation = request.get("operation")
    if operation not in ("CREATE", "UPDATE") or request.get("subResource"):
        return True, ""
    obj = request.get("object") or {}
    old = request.get("oldObject") if operation == "UPDATE" else None
    if old is not None and old.get("spec") == obj.get("spec"):
        return True, ""
    problems = review(dict(obj), config, dict(old) if old is not None else None)
    return not problems, message(problems)


def respond(body: dict[str, Any], config: OperatorConfig) -> dict[str, Any]:
    """The AdmissionReview answer to ``body`` (admission.k8s.io/v1)."""
    request = body.get("request") or {}
    allowed, why = decide(request, config)
    response: dict[str, Any] = {"uid": request.get("uid", ""), "allowed": allowed}
    if not allowed:
        response["status"] = {"code": 422, "reason": "Invalid", "message": why}
    return {
        "apiVersion": body.get("apiVersion") or "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": response,
    }


# --------------------------------------------------------------------------- certificates


def _split(value: str) -> tuple[str, str]:
    namespace, _, name = value.partition("/")
    return namespace, name


def hostnames(config: OperatorConfig) -> list[str]:
    """Names the certificate must hold: the Service's DNS names, the configured host, loopback."""
    names: list[str] = []
    if config.webhook_service:
        ns, name = _split(config.webhook_service)
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


def _usable(secret: dict[str, Any] | None, names: list[str], now: dt.datetime) -> bool:
    """The kept certificate covers ``names`` and is not about to expire (the operator's own
    annotations say so: only admins write the operator's namespace)."""
    if not secret:
        return False
    data = secret.get("data") or {}
    notes = (secret.get("metadata") or {}).get("annotations") or {}
    try:
        expires = dt.datetime.fromisoformat(notes.get(EXPIRES_ANNOTATION, ""))
    except ValueError:
        return False
    kept = set(notes.get(NAMES_ANNOTATION, "").split(","))
    return bool(data.get("tls.crt") and data.get("tls.key")) and set(names) <= kept and expires - now > RENEW_BEFORE


def _write(directory: Path, data: dict[str, str]) -> None:
    key = directory / "tls.key"
    key.touch(mode=0o600)
    for name in ("tls.crt", "tls.key"):
        content = base64.b64decode(data[name])
        if not (directory / name).exists() or (directory / name).read_bytes() != content:
            (directory / name).write_bytes(content)


async def keep_certificate(kube: Kube, config: OperatorConfig, directory: Path) -> None:
    """Make sure the Secret ``config.webhook_secret`` holds a usable certificate (make one when it
    does not: create the Secret, or a resourceVersion-guarded patch; a replica that loses the race
    reads the winner's) and write it to ``directory`` for the server."""
    assert config.webhook_secret
    namespace, name = _split(config.webhook_secret)
    names = hostnames(config)
    for _ in range(5):
        secret = await kube.get("Secret", "v1", namespace, name)
        now = dt.datetime.now(dt.UTC)
        if secret is not None and _usable(secret, names, now):
            _write(directory, secret["data"])
            return
        with tempfile.TemporaryDirectory(prefix="fso-webhook-new-") as scratch:
            certfile, keyfile = await asyncio.to_thread(self_signed, names, Path(scratch))
            data = {
                "tls.crt": base64.b64encode(certfile.read_bytes()).decode(),
                "tls.key": base64.b64encode(keyfile.read_bytes()).decode(),
            }
        notes = {NAMES_ANNOTATION: ",".join(names), EXPIRES_ANNOTATION: (now + CERT_VALIDITY).isoformat()}
        if secret is None:
            body = {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "Opaque",
                "data": data,
                "metadata": {"name": name, "namespace": namespace, "annotations": notes},
            }
            written = await kube.create(body)
        else:
            written = await kube.patch_guarded(secret, {"data": data, "metadata": {"annotations": notes}})
        if written is not None:
            log.info(
                "webhook certificate kept in Secret %s/%s (valid until %s)", namespace, name, notes[EXPIRES_ANNOTATION]
            )
            _write(directory, data)
            return
    raise RuntimeError(f"could not keep the webhook certificate in Secret {namespace}/{name} (written concurrently)")


async def inject_ca(kube: Kube, name: str, cadata: bytes) -> bool:
    """Write ``cadata`` as the caBundle of every webhook of the ValidatingWebhookConfiguration
    ``name`` (the chart's; never created here). False when it does not exist."""
    bundle = base64.b64encode(cadata).decode()
    for _ in range(5):
        vwc = await kube.get(*VWC, None, name)
        if vwc is None:
            log.error("ValidatingWebhookConfiguration %s not found: the chart installs it (webhook.enabled)", name)
            return False
        hooks = vwc.get("webhooks") or []
        if all((h.get("clientConfig") or {}).get("caBundle") == bundle for h in hooks):
            return True
        patched = [{**h, "clientConfig": {**(h.get("clientConfig") or {}), "caBundle": bundle}} for h in hooks]
        if await kube.patch_guarded(vwc, {"webhooks": patched}) is not None:
            log.info("caBundle of ValidatingWebhookConfiguration %s written", name)
            return True
    return False


# --------------------------------------------------------------------------- the server


def _files(config: OperatorConfig, directory: Path) -> tuple[Path, Path, Path]:
    """(certfile, keyfile, CA file of the caBundle)."""
    if config.webhook_cert_dir:
        d = config.webhook_cert_dir
        ca = d / "ca.crt"
        return d / "tls.crt", d / "tls.key", ca if ca.exists() else d / "tls.crt"
    return directory / "tls.crt", directory / "tls.key", directory / "tls.crt"


async def _keep(kube: Kube, config: OperatorConfig, directory: Path) -> None:
    """The kept certificate and the caBundle, re-checked every KEEP_SECONDS."""
    while True:
        await asyncio.sleep(KEEP_SECONDS)
        try:
            if config.webhook_secret and not config.webhook_cert_dir:
                await keep_certificate(kube, config, directory)
            if config.webhook_configuration:
                await inject_ca(kube, config.webhook_configuration, _files(config, directory)[2].read_bytes())
        except Exception as err:  # noqa: BLE001 - the API may be briefly unreachable: next round
            log.warning("webhook certificate upkeep: %s: %s", type(err).__name__, err)


async def serve(kube: Kube, config: OperatorConfig, ready: asyncio.Event | None = None) -> None:
    """Serve admission reviews until cancelled (every replica). ``ready`` is set once listening."""
    directory = Path(tempfile.mkdtemp(prefix="fso-webhook-"))
    if not config.webhook_cert_dir:
        if config.webhook_secret:
            await keep_certificate(kube, config, directory)
        else:
            self_signed(hostnames(config), directory)

    def admit(body: dict[str, Any]) -> dict[str, Any]:
        return respond(body, config)

    certfile, keyfile, cafile = _files(config, directory)
    keeper = asyncio.create_task(_keep(kube, config, directory), name="webhook certificate upkeep")
    try:
        async for _listening in webhook_server.run(config.webhook_port, certfile, keyfile, admit):
            if config.webhook_configuration:
                await inject_ca(kube, config.webhook_configuration, cafile.read_bytes())
            log.info("admission webhook serving on port %d", config.webhook_port)
            if ready is not None:
                ready.set()
    finally:
        keeper.cancel()
        await asyncio.gather(keeper, return_exceptions=True)
