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

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ..api import FeatureStore, OperatorConfig
from ..render import tls as render_tls
from ..render.inputs import ServingTls
from .base import BackendContext
from .certificates import Issuer, Key, issue, new_key, pem_cert, pem_key

CA_CERT, CA_KEY, TLS_CERT, TLS_KEY = "ca.crt", "ca.key", "tls.crt", "tls.key"
CA_VALIDITY = dt.timedelta(days=3650)
CERT_VALIDITY = dt.timedelta(days=365)
RENEW_BEFORE = dt.timedelta(days=30)


def secret_name(fs: FeatureStore) -> str:
    return f"{fs.metadata.name}-feast-tls"


@dataclass(frozen=True)
class TlsMaterial:
    """What :func:`ensure` decided: the Secret's data and the render input."""

    #: what the operator's Secret must hold (None: cert-manager writes the Secret)
    data: dict[str, str] | None
    #: None while cert-manager has not issued the certificate yet
    serving: ServingTls | None


def _new_ca(fs: FeatureStore, now: dt.datetime) -> tuple[Key, x509.Certificate]:
    key = new_key()
    cn = f"{fs.metadata.namespace}/{fs.metadata.name} feast CA"
    return key, issue(key, cn, now=now, validity=CA_VALIDITY, ca=True)


def _new_server_cert(
    fs: FeatureStore, ca_key: Key, ca: x509.Certificate, now: dt.datetime
) -> tuple[Key, x509.Certificate]:
    key = new_key()
    names = render_tls.dns_names(fs)
    return key, issue(key, names[-1], now=now, validity=CERT_VALIDITY, names=names, issuer=Issuer(ca_key, ca.subject))


def _load_ca(data: dict[str, str], now: dt.datetime) -> tuple[Key, x509.Certificate] | None:
    try:
        key = serialization.load_pem_private_key(data[CA_KEY].encode(), password=None)
        cert = x509.load_pem_x509_certificate(data[CA_CERT].encode())
    except (KeyError, ValueError):
        return None
    if not isinstance(key, Key) or cert.not_valid_after_utc - now < RENEW_BEFORE:
        return None
    return key, cert


def _server_cert_valid(fs: FeatureStore, data: dict[str, str], ca: x509.Certificate, now: dt.datetime) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(data[TLS_CERT].encode())
        serialization.load_pem_private_key(data[TLS_KEY].encode(), password=None)
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName
        )
    except (KeyError, ValueError, x509.ExtensionNotFound):
        return False
    return (
        cert.issuer == ca.subject
        and sorted(sans) == sorted(render_tls.dns_names(fs))
        and cert.not_valid_after_utc - now >= RENEW_BEFORE
    )


def ensure(fs: FeatureStore, current: dict[str, str] | None, now: dt.datetime) -> TlsMaterial:
    """The Secret data the store needs (``current`` when still good) and the render input."""
    data = dict(current or {})
    loaded = _load_ca(data, now)
    if loaded is None:
        ca_key, ca = _new_ca(fs, now)
        data = {CA_KEY: pem_key(ca_key), CA_CERT: pem_cert(ca)}
    else:
        ca_key, ca = loaded
    if not _server_cert_valid(fs, data, ca, now):
        key, cert = _new_server_cert(fs, ca_key, ca, now)
        data.update({TLS_KEY: pem_key(key), TLS_CERT: pem_cert(cert)})
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
