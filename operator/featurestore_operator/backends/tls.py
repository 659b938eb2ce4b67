"""Serving TLS for the Feast servers (``spec.tls``): server certificates from per-store CAs, kept in
the Secret ``<fs>-feast-tls`` (keys ca.crt, tls.crt, tls.key, and next.crt/next.key while a renewal
is staged).

The CA's private key never leaves the operator's memory: each CA signs exactly one server
certificate and its key is dropped, so no Secret anywhere (the tenant's namespace included) holds a
key that could sign for other names. Each CA is also name-constrained (critical X.509 name
constraints) to the store's namespace under ``svc`` and its Services' names (``render.tls``).

Renewal without a moment of distrust: :data:`STAGE_BEFORE` before the serving certificate's
expiry a *next* certificate is issued from a new CA and that CA joins ``ca.crt`` (the bundle
clients trust, via the client ConfigMap); :data:`RENEW_BEFORE` before expiry the next certificate
becomes the serving one (the secrets hash rolls the servers). ``ca.crt`` holds only this store's
constrained CAs that have not expired, newest last, at most :data:`BUNDLE_MAX`. A Secret of an
older release (with ``ca.key``, an unconstrained CA) is replaced at once: that key was readable in
the tenant's namespace, so nothing it signed is trusted any more.

Not pure (keys are random), so it lives here: :func:`ensure` takes the Secret's current data and
returns what it must hold; valid material is kept, so a resync writes nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ..api import FeatureStore, OperatorConfig
from ..render import tls as render_tls
from ..render.inputs import ServingTls
from .base import BackendContext

CA_CERT, TLS_CERT, TLS_KEY = "ca.crt", "tls.crt", "tls.key"
NEXT_CERT, NEXT_KEY = "next.crt", "next.key"
CERT_VALIDITY = dt.timedelta(days=365)
#: a CA outlives the one certificate it signs by this much (clients keep it while that one serves)
CA_EXTRA = dt.timedelta(days=30)
RENEW_BEFORE = dt.timedelta(days=30)
STAGE_BEFORE = 2 * RENEW_BEFORE
BUNDLE_MAX = 3


def secret_name(fs: FeatureStore) -> str:
    return render_tls.ca_secret_name(fs)


@dataclass(frozen=True)
class TlsMaterial:
    """What :func:`ensure` decided: the Secret's data and the render input."""

    #: what the operator's Secret must hold (None: cert-manager writes the Secret)
    data: dict[str, str] | None
    #: None while cert-manager has not issued the certificate yet
    serving: ServingTls | None


def ensure(fs: FeatureStore, current: dict[str, str] | None, now: dt.datetime) -> TlsMaterial:
    """The Secret data the store needs (``current`` when still good) and the render input."""
    from . import certs  # cryptography (~8 MiB resident): only in a process that serves a store with TLS

    data = dict(current or {})
    bundle = certs.own_cas(fs, data.get(CA_CERT, ""), now)
    serving = certs.pair(fs, data, TLS_CERT, TLS_KEY, bundle, now, RENEW_BEFORE)
    staged = certs.pair(fs, data, NEXT_CERT, NEXT_KEY, bundle, now, RENEW_BEFORE)
    if serving is None:
        serving, staged = staged or certs.new_pair(fs, now, CERT_VALIDITY, CA_EXTRA), None
    elif staged is None and certs.expires_within(serving.cert, now, STAGE_BEFORE):
        staged = certs.new_pair(fs, now, CERT_VALIDITY, CA_EXTRA)
    out = {TLS_CERT: serving.cert_pem, TLS_KEY: serving.key_pem}
    if staged is not None:
        out.update({NEXT_CERT: staged.cert_pem, NEXT_KEY: staged.key_pem})
    new_cas = [p.ca for p in (serving, staged) if p is not None and p.ca is not None]
    out[CA_CERT] = certs.bundle_pem([*bundle, *new_cas][-BUNDLE_MAX:])
    if out == data:
        return TlsMaterial(current, ServingTls(secret=secret_name(fs), ca_pem=data[CA_CERT]))
    return TlsMaterial(out, ServingTls(secret=secret_name(fs), ca_pem=out[CA_CERT]))


def issued(fs: FeatureStore, config: OperatorConfig, current: dict[str, str] | None) -> TlsMaterial:
    """cert-manager's Secret, read only: serving once it holds a key pair; clients get its ca.crt."""
    name = render_tls.secret_name(fs, config)
    if not current or not current.get(TLS_CERT) or not current.get(TLS_KEY):
        return TlsMaterial(None, None)
    return TlsMaterial(None, ServingTls(secret=name, ca_pem=current.get(CA_CERT, "")))


async def ensure_serving(fs: FeatureStore, ctx: BackendContext, now: dt.datetime) -> TlsMaterial | None:
    """What reconcile calls each pass: None when ``spec.tls`` is off, else the material (apply
    ``data``, when set, as Secret :func:`secret_name`; pass ``serving`` as ``Endpoints.serving_tls``)."""
    if not fs.spec.tls.enabled:
        return None
    if ctx.config.tls_issuer:
        return issued(fs, ctx.config, await ctx.get_secret(render_tls.secret_name(fs, ctx.config)))
    return ensure(fs, await ctx.get_secret(secret_name(fs)), now)
