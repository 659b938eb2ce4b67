"""The certificate half of :mod:`.tls` (the per-store CA and server certificates), in a module of its
own so the operator imports `cryptography` (~8 MiB resident, bench/memory.py) only once a store asks
for TLS. The X.509 building itself is :mod:`.certificates`, shared with the admission webhook."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ..api import FeatureStore
from ..render import tls as render_tls
from .certificates import Issuer, Key, issue, new_key, pem_cert, pem_key
from .tls import CA_CERT, CA_KEY, CA_VALIDITY, CERT_VALIDITY, RENEW_BEFORE, TLS_CERT, TLS_KEY

__all__ = ["load_ca", "new_ca", "new_server_cert", "pem_cert", "pem_key", "server_cert_valid"]


def new_ca(fs: FeatureStore, now: dt.datetime) -> tuple[Key, x509.Certificate]:
    key = new_key()
    cn = f"{fs.metadata.namespace}/{fs.metadata.name} feast CA"
    return key, issue(key, cn, now=now, validity=CA_VALIDITY, ca=True)


def new_server_cert(
    fs: FeatureStore, ca_key: Key, ca: x509.Certificate, now: dt.datetime
) -> tuple[Key, x509.Certificate]:
    key = new_key()
    names = render_tls.dns_names(fs)
    return key, issue(key, names[-1], now=now, validity=CERT_VALIDITY, names=names, issuer=Issuer(ca_key, ca.subject))


def load_ca(data: dict[str, str], now: dt.datetime) -> tuple[Key, x509.Certificate] | None:
    try:
        key = serialization.load_pem_private_key(data[CA_KEY].encode(), password=None)
        cert = x509.load_pem_x509_certificate(data[CA_CERT].encode())
    except (KeyError, ValueError):
        return None
    if not isinstance(key, Key) or cert.not_valid_after_utc - now < RENEW_BEFORE:
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
        and sorted(sans) == sorted(render_tls.dns_names(fs))
        and cert.not_valid_after_utc - now >= RENEW_BEFORE
    )
