"""Serving TLS for the Feast servers (``spec.tls``): a per-store CA and a server certificate for the
store's Service names, kept in the Secret ``<fs>-feast-tls`` (keys ca.crt, ca.key, tls.crt, tls.key).

Not pure (keys are random), so it lives here, with the same shape as the online-store Secret flow:
:func:`ensure` takes the Secret's current data and returns what it must hold. Existing material is
kept while it is valid for the current names and not within :data:`RENEW_BEFORE` of expiry, so a
resync writes nothing; a renewal issues a new server certificate from the same CA (clients keep
trusting it) and the secrets hash in the server pod templates rolls them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ..api import FeatureStore, OperatorConfig
from ..render import tls as render_tls
from ..render.inputs import ServingTls
from .base import BackendContext

CA_CERT, CA_KEY, TLS_CERT, TLS_KEY = "ca.crt", "ca.key", "tls.crt", "tls.key"
CA_VALIDITY = dt.timedelta(days=3650)
CERT_VALIDITY = dt.timedelta(days=365)
RENEW_BEFORE = dt.timedelta(days=30)


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
    loaded = certs.load_ca(data, now)
    if loaded is None:
        ca_key, ca = certs.new_ca(fs, now)
        data = {CA_KEY: certs.pem_key(ca_key), CA_CERT: certs.pem_cert(ca)}
    else:
        ca_key, ca = loaded
    if not certs.server_cert_valid(fs, data, ca, now):
        key, cert = certs.new_server_cert(fs, ca_key, ca, now)
        data.update({TLS_KEY: certs.pem_key(key), TLS_CERT: certs.pem_cert(cert)})
    return TlsMaterial(data, ServingTls(secret=secret_name(fs), ca_pem=data[CA_CERT]))


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
