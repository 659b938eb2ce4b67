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


def ensure(fs: FeatureStore, current: dict[str, str] | None, now: dt.datetime) -> TlsMaterial:
    """The Secret data the store needs (``current`` when still good) and the render input."""
    from . import certs  # cryptography: only in a process that serves a store with TLS

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


async def ensure_serving(fs: FeatureStore, ctx: BackendContext, now: dt.datetime) -> TlsMaterial | None:
    """What reconcile calls each pass: None when ``spec.tls`` is off, else the material (apply
    ``data`` as Secret :func:`secret_name`, pass ``serving`` as ``Endpoints.serving_tls``)."""
    if not fs.spec.tls.enabled:
        return None
    return ensure(fs, await ctx.get_secret(secret_name(fs)), now)
