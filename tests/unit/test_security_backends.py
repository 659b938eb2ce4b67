"""The two calls reconcile makes for data-plane security: serving TLS material and Secret hashes."""

from __future__ import annotations

import asyncio
import datetime as dt

from cryptography import x509
from featurestore_operator.api import OperatorConfig, parse_featurestore, resolve
from featurestore_operator.backends import rotation as rotation_backend
from featurestore_operator.backends import tls as tls_backend
from featurestore_operator.backends.base import BackendContext
from featurestore_operator.backends.planned import planned_endpoints
from featurestore_operator.render import render
from featurestore_operator.render import tls as render_tls
from featurestore_operator.render.names import Names
from featurestore_operator.render.rotation import SECRETS_HASH_ANNOTATION

NOW = dt.datetime(2026, 11, 29, tzinfo=dt.UTC)


def _fs(**spec):
    doc = {
        "apiVersion": "featurestore.kubeflow.org/v1alpha1",
        "kind": "FeatureStore",
        "metadata": {"name": "sec", "namespace": "team", "uid": "u1"},
        "spec": {"project": "p", "provider": "local", **spec},
    }
    fs = parse_featurestore(doc)
    return fs.model_copy(update={"spec": resolve(fs.spec, OperatorConfig())})


def _ctx(secrets: dict[str, dict[str, str]]) -> BackendContext:
    async def get_secret(name: str) -> dict[str, str] | None:
        return secrets.get(name)

    return BackendContext(config=OperatorConfig(), get_secret=get_secret)


def test_serving_tls_is_none_when_off_and_stable_when_on():
    assert asyncio.run(tls_backend.ensure_serving(_fs(), _ctx({}), NOW)) is None
    fs = _fs(tls={"enabled": True})
    first = asyncio.run(tls_backend.ensure_serving(fs, _ctx({}), NOW))
    assert first is not None and first.serving.secret == "sec-feast-tls"
    again = asyncio.run(tls_backend.ensure_serving(fs, _ctx({"sec-feast-tls": first.data}), NOW))
    assert again == first


def test_serving_tls_for_the_longest_names():
    """A 63-character namespace and store name: the SANs hold every Service name, the pass does not crash."""
    doc = {
        "apiVersion": "featurestore.kubeflow.org/v1alpha1",
        "kind": "FeatureStore",
        "metadata": {"name": "s" * 40, "namespace": "n" * 63, "uid": "u1"},
        "spec": {"project": "p", "provider": "local", "tls": {"enabled": True}},
    }
    fs = parse_featurestore(doc)
    fs = fs.model_copy(update={"spec": resolve(fs.spec, OperatorConfig())})
    material = tls_backend.ensure(fs, None, NOW)
    cert = x509.load_pem_x509_certificate(material.data["tls.crt"].encode())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert sorted(sans) == sorted(render_tls.dns_names(fs))


def _feature_server_digest(fs, endpoints, secrets) -> str:
    hashes = asyncio.run(rotation_backend.secret_hashes(fs, endpoints, _ctx(secrets)))
    assert all(v not in str(hashes) for data in secrets.values() for v in data.values())
    out = render(fs, endpoints, OperatorConfig(), secrets=hashes)
    d = next(o for o in out.objects if o["kind"] == "Deployment" and o["metadata"]["name"] == Names(fs).feature_server)
    return d["spec"]["template"]["metadata"]["annotations"][SECRETS_HASH_ANNOTATION]


def test_a_rotated_redis_password_changes_the_feature_server_digest_once():
    fs = _fs()
    endpoints = planned_endpoints(fs)
    secret = Names(fs).online_secret
    a = _feature_server_digest(fs, endpoints, {secret: {"password": "one"}})
    assert _feature_server_digest(fs, endpoints, {secret: {"password": "one"}}) == a
    b = _feature_server_digest(fs, endpoints, {secret: {"password": "two"}})
    assert b != a
    assert _feature_server_digest(fs, endpoints, {secret: {"password": "two"}}) == b
