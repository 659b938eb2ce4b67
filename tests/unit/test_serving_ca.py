"""The per-store serving CA cannot vouch for anything but the store's own names, and its key is in no
Secret: attacks a namespace editor (who reads every Secret of the namespace) or a leaked CA would try."""

from __future__ import annotations

import datetime as dt
import ssl
import tempfile
from pathlib import Path

import pytest
from cryptography import x509
from featurestore_operator.api import OperatorConfig, parse_featurestore, resolve
from featurestore_operator.backends import certs, tls
from featurestore_operator.backends.certificates import Issuer, issue, new_key, pem_cert, pem_key
from featurestore_operator.render import tls as render_tls

from tests.unit.test_security_render import _handshake

NOW = dt.datetime.now(dt.UTC)


def _fs(name: str = "sec", namespace: str = "team"):
    doc = {
        "apiVersion": "featurestore.kubeflow.org/v1alpha1",
        "kind": "FeatureStore",
        "metadata": {"name": name, "namespace": namespace, "uid": "0b5e9a52-8c1e-4a43-9b2e-5c0d7f6b1a11"},
        "spec": {
            "project": "p",
            "provider": "local",
            "featureRepo": {"configMap": {"name": "r"}},
            "tls": {"enabled": True},
        },
    }
    fs = parse_featurestore(doc)
    return fs.model_copy(update={"spec": resolve(fs.spec, OperatorConfig())})


def _serves(ca_pem: str, cert_pem: str, key_pem: str, hostname: str) -> bool:
    """A real OpenSSL handshake: does a client trusting ``ca_pem`` accept this certificate for ``hostname``?"""
    with tempfile.TemporaryDirectory() as d:
        Path(d, "c").write_text(cert_pem)
        Path(d, "k").write_text(key_pem)
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.load_cert_chain(Path(d, "c"), Path(d, "k"))
        client = ssl.create_default_context(cadata=ca_pem)
        try:
            _handshake(server, client, hostname)
        except ssl.SSLCertVerificationError:
            return False
    return True


def test_no_secret_holds_a_ca_key():
    """The Secret (tenant-readable) holds the CA certificate and the servers' key pair only: the one
    private key in it is the server's, no CA in ca.crt belongs to it."""
    fs = _fs()
    for data in (
        tls.ensure(fs, None, NOW).data,
        tls.ensure(fs, tls.ensure(fs, None, NOW).data, NOW + tls.CERT_VALIDITY - tls.STAGE_BEFORE).data,
    ):
        assert data is not None and set(data) <= {"ca.crt", "tls.crt", "tls.key", "next.crt", "next.key"}
        keys = {k for k, v in data.items() if "PRIVATE KEY" in v}
        assert keys <= {"tls.key", "next.key"}, keys
        from cryptography.hazmat.primitives import serialization

        own = [serialization.load_pem_private_key(data[k].encode(), None).public_key() for k in keys]
        cas = x509.load_pem_x509_certificates(data["ca.crt"].encode())
        assert not [ca for ca in cas if ca.public_key() in own], "a CA key is in the Secret"


def test_ca_is_name_constrained_to_the_store():
    fs = _fs()
    data = tls.ensure(fs, None, NOW).data
    assert data is not None
    [ca] = x509.load_pem_x509_certificates(data["ca.crt"].encode())
    nc = ca.extensions.get_extension_for_class(x509.NameConstraints)
    assert nc.critical
    assert sorted(n.value for n in nc.value.permitted_subtrees) == sorted(render_tls.permitted_subtrees(fs))
    for host in render_tls.dns_names(fs):
        assert _serves(data["ca.crt"], data["tls.crt"], data["tls.key"], host), host


@pytest.mark.parametrize(
    "name",
    [
        "api.other.svc.cluster.local",  # another namespace's Service
        "api.other.svc",
        "api.other",
        "kubernetes.default.svc.cluster.local",
        "sec-feature-server",  # the bare Service name: a subtree for it would permit <x>.sec-feature-server
        "x.sec-feature-server",  # = Service x of a namespace named sec-feature-server
        "team.svc.other",
        "www.example.com",
        "10.96.0.1",
    ],
)
def test_a_leaf_for_another_name_signed_by_a_store_ca_fails_verification(name):
    """Were a store CA's key ever in hostile hands, what it signs for a name outside the store is
    refused by every client trusting it (OpenSSL enforces the constraints)."""
    fs = _fs()
    ca_key, ca = certs.new_ca(fs, NOW, dt.timedelta(days=1))
    key = new_key()
    leaf = issue(key, "x", now=NOW, validity=dt.timedelta(days=1), names=[name], issuer=Issuer(ca_key, ca.subject))
    assert not _serves(pem_cert(ca), pem_cert(leaf), pem_key(key), name)
    inside = issue(
        key,
        "x",
        now=NOW,
        validity=dt.timedelta(days=1),
        names=["evil.team.svc.cluster.local"],
        issuer=Issuer(ca_key, ca.subject),
    )
    assert _serves(pem_cert(ca), pem_cert(inside), pem_key(key), "evil.team.svc.cluster.local"), "control"


def test_an_older_release_secret_with_a_ca_key_is_replaced():
    """A Secret written before this change (ca.key, an unconstrained CA): that key was readable in the
    namespace, so its CA is dropped from ca.crt and a new constrained one issues the server certificate."""
    fs = _fs()
    old_key = new_key()
    old_ca = issue(old_key, "team/sec feast CA", now=NOW, validity=dt.timedelta(days=3650), ca=True)
    leaf_key = new_key()
    names = render_tls.dns_names(fs)
    leaf = issue(
        leaf_key, names[-1], now=NOW, validity=tls.CERT_VALIDITY, names=names, issuer=Issuer(old_key, old_ca.subject)
    )
    legacy = {
        "ca.key": pem_key(old_key),
        "ca.crt": pem_cert(old_ca),
        "tls.crt": pem_cert(leaf),
        "tls.key": pem_key(leaf_key),
    }
    data = tls.ensure(fs, legacy, NOW).data
    assert data is not None and "ca.key" not in data
    assert pem_cert(old_ca) not in data["ca.crt"] and data["tls.crt"] != legacy["tls.crt"]
    # what the old key signs is no longer trusted by clients of the new bundle
    assert not _serves(data["ca.crt"], legacy["tls.crt"], legacy["tls.key"], names[-1])


def test_another_stores_ca_is_not_trusted():
    """ca.crt keeps only CAs constrained to THIS store: material copied from another store's Secret
    (another namespace) is replaced, not extended."""
    other = tls.ensure(_fs(namespace="other"), None, NOW).data
    assert other is not None
    data = tls.ensure(_fs(), other, NOW).data
    assert data is not None and other["ca.crt"] not in data["ca.crt"] and data["tls.crt"] != other["tls.crt"]
