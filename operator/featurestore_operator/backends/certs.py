"""The certificate half of :mod:`.tls` (per-store CAs and server certificates), in a module of its
own so the operator imports `cryptography` (~8 MiB resident, bench/memory.py) only once a store asks
for TLS. The X.509 building itself is :mod:`.certificates`, shared with the admission webhook."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from ..api import FeatureStore
from ..render import tls as render_tls
from .certificates import Issuer, Key, issue, new_key, pem_cert, pem_key

__all__ = ["Pair", "bundle_pem", "expires_within", "new_ca", "new_pair", "own_cas", "pair"]


@dataclass(frozen=True)
class Pair:
    """A server certificate and its key (PEM), and the CA that signed it when it is new (its key
    is gone: it signed this one certificate)."""

    cert: x509.Certificate
    cert_pem: str
    key_pem: str
    ca: x509.Certificate | None = None


def new_ca(fs: FeatureStore, now: dt.datetime, validity: dt.timedelta) -> tuple[Key, x509.Certificate]:
    """A CA name-constrained to the store's names (a unique subject: bundles hold several)."""
    ca_key = new_key()
    cn = f"feast CA {secrets.token_hex(4)} {fs.metadata.namespace}/{fs.metadata.name}"
    permitted = render_tls.permitted_subtrees(fs)
    return ca_key, issue(ca_key, cn, now=now, validity=validity, ca=True, permitted=permitted)


def new_pair(fs: FeatureStore, now: dt.datetime, validity: dt.timedelta, ca_extra: dt.timedelta) -> Pair:
    """A fresh CA (:func:`new_ca`) signs one server certificate; its key is dropped on return."""
    ca_key, ca = new_ca(fs, now, validity + ca_extra)
    key = new_key()
    names = render_tls.dns_names(fs)
    cert = issue(key, names[-1], now=now, validity=validity, names=names, issuer=Issuer(ca_key, ca.subject))
    return Pair(cert, pem_cert(cert), pem_key(key), ca)


def _constrained_for(fs: FeatureStore, ca: x509.Certificate) -> bool:
    try:
        nc = ca.extensions.get_extension_for_class(x509.NameConstraints)
        basic = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    permitted = [n.value for n in nc.value.permitted_subtrees or [] if isinstance(n, x509.DNSName)]
    return nc.critical and basic.ca and sorted(permitted) == sorted(render_tls.permitted_subtrees(fs))


def own_cas(fs: FeatureStore, pem: str, now: dt.datetime) -> list[x509.Certificate]:
    """The CAs of ``pem`` this store may keep trusting: name-constrained to its names, not expired.
    (An older release's unconstrained CA, whose key sat in the tenant's namespace, is dropped.)"""
    try:
        cas = x509.load_pem_x509_certificates(pem.encode()) if pem.strip() else []
    except ValueError:
        return []
    return [ca for ca in cas if ca.not_valid_after_utc > now and _constrained_for(fs, ca)]


def _signed_by_one_of(cert: x509.Certificate, cas: list[x509.Certificate]) -> bool:
    for ca in cas:
        try:
            cert.verify_directly_issued_by(ca)
            return True
        except (ValueError, TypeError, InvalidSignature):
            continue
    return False


def pair(
    fs: FeatureStore,
    data: dict[str, str],
    cert_key: str,
    key_key: str,
    cas: list[x509.Certificate],
    now: dt.datetime,
    renew_before: dt.timedelta,
) -> Pair | None:
    """The key pair under ``cert_key``/``key_key`` when it still serves: its key matches, one of
    ``cas`` signed it, its names are the store's, and it is not within ``renew_before`` of expiry."""
    try:
        cert = x509.load_pem_x509_certificate(data[cert_key].encode())
        key = serialization.load_pem_private_key(data[key_key].encode(), password=None)
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName
        )
    except (KeyError, ValueError, TypeError, x509.ExtensionNotFound):
        return None
    fresh = cert.not_valid_after_utc - now >= renew_before
    if key.public_key() != cert.public_key() or not fresh or sorted(sans) != sorted(render_tls.dns_names(fs)):
        return None
    return Pair(cert, data[cert_key], data[key_key]) if _signed_by_one_of(cert, cas) else None


def expires_within(cert: x509.Certificate, now: dt.datetime, window: dt.timedelta) -> bool:
    return cert.not_valid_after_utc - now < window


def bundle_pem(cas: list[x509.Certificate]) -> str:
    return "".join(pem_cert(ca) for ca in cas)
