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
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..api import FeatureStore
from ..render.inputs import ServingTls
from ..render.names import Names
from .base import BackendContext

CA_CERT, CA_KEY, TLS_CERT, TLS_KEY = "ca.crt", "ca.key", "tls.crt", "tls.key"
CA_VALIDITY = dt.timedelta(days=3650)
CERT_VALIDITY = dt.timedelta(days=365)
RENEW_BEFORE = dt.timedelta(days=30)


def secret_name(fs: FeatureStore) -> str:
    return f"{fs.metadata.name}-feast-tls"


def dns_names(fs: FeatureStore) -> list[str]:
    """Every name a client may use for any of the store's servers."""
    names = Names(fs)
    ns = fs.metadata.namespace
    out: list[str] = []
    for svc in (names.feature_server, names.registry_server, names.offline_server, names.ui):
        out += [svc, f"{svc}.{ns}", f"{svc}.{ns}.svc", names.svc_host(svc)]
    return out


@dataclass(frozen=True)
class TlsMaterial:
    """What :func:`ensure` decided: the Secret's data and the render input."""

    data: dict[str, str]
    serving: ServingTls


def _pem_key(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _pem_cert(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _new_ca(fs: FeatureStore, now: dt.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, f"{fs.metadata.namespace}/{fs.metadata.name} feast CA")]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _new_server_cert(
    fs: FeatureStore, ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, now: dt.datetime
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    names = dns_names(fs)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[-1])]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + CERT_VALIDITY)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _load_ca(data: dict[str, str], now: dt.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None:
    try:
        key = serialization.load_pem_private_key(data[CA_KEY].encode(), password=None)
        cert = x509.load_pem_x509_certificate(data[CA_CERT].encode())
    except (KeyError, ValueError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or cert.not_valid_after_utc - now < RENEW_BEFORE:
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
        and sorted(sans) == sorted(dns_names(fs))
        and cert.not_valid_after_utc - now >= RENEW_BEFORE
    )


def ensure(fs: FeatureStore, current: dict[str, str] | None, now: dt.datetime) -> TlsMaterial:
    """The Secret data the store needs (``current`` when still good) and the render input."""
    data = dict(current or {})
    loaded = _load_ca(data, now)
    if loaded is None:
        ca_key, ca = _new_ca(fs, now)
        data = {CA_KEY: _pem_key(ca_key), CA_CERT: _pem_cert(ca)}
    else:
        ca_key, ca = loaded
    if not _server_cert_valid(fs, data, ca, now):
        key, cert = _new_server_cert(fs, ca_key, ca, now)
        data.update({TLS_KEY: _pem_key(key), TLS_CERT: _pem_cert(cert)})
    return TlsMaterial(data, ServingTls(secret=secret_name(fs), ca_pem=data[CA_CERT]))


async def ensure_serving(fs: FeatureStore, ctx: BackendContext, now: dt.datetime) -> TlsMaterial | None:
    """What reconcile calls each pass: None when ``spec.tls`` is off, else the material (apply
    ``data`` as Secret :func:`secret_name`, pass ``serving`` as ``Endpoints.serving_tls``)."""
    if not fs.spec.tls.enabled:
        return None
    return ensure(fs, await ctx.get_secret(secret_name(fs)), now)
