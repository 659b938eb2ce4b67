"""The certificate work behind :mod:`.tls` (keys, the per-store CA, server certificates), in a module
of its own so the operator imports `cryptography` (~10 MiB resident) only once a store asks for
TLS; most stores never do (bench/memory.py)."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..api import FeatureStore
from .tls import CA_CERT, CA_KEY, CA_VALIDITY, CERT_VALIDITY, RENEW_BEFORE, TLS_CERT, TLS_KEY, dns_names


def _common_name(text: str) -> x509.NameAttribute:
    """X.509 caps a CN at 64 characters (cryptography raises beyond), and a Service's full name in a
    long namespace exceeds it; clients verify the subjectAltNames, which carry every name in full."""
    return x509.NameAttribute(NameOID.COMMON_NAME, text[:64])


def pem_key(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def pem_cert(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def new_ca(fs: FeatureStore, now: dt.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([_common_name(f"{fs.metadata.namespace}/{fs.metadata.name} feast CA")])
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


def new_server_cert(
    fs: FeatureStore, ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, now: dt.datetime
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    names = dns_names(fs)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([_common_name(names[-1])]))
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


def load_ca(data: dict[str, str], now: dt.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None:
    try:
        key = serialization.load_pem_private_key(data[CA_KEY].encode(), password=None)
        cert = x509.load_pem_x509_certificate(data[CA_CERT].encode())
    except (KeyError, ValueError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or cert.not_valid_after_utc - now < RENEW_BEFORE:
        return None
    return key, cert


def server_cert_valid(fs: FeatureStore, data: dict[str, str], ca: x509.Certificate, now: dt.datetime) -> bool:
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
