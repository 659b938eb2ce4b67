"""``authz: oidc``: the servers' rendered ``auth`` block makes Feast's own OIDC token parser (Feast
0.67, real) refuse a token whose ``aud`` or ``iss`` is not this store's, even when the provider's
key signed it. The provider is a local HTTPS OIDC provider (tests/support/oidc_provider.py); the
only thing the test adds to the rendered block is the trust of that provider's TLS certificate."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest
import yaml

from tests.support.prerequisites import need_module

need_module("feast", "feast is needed for the data-path tests", module=True)

from feast.permissions.auth.oidc_token_parser import OidcTokenParser  # noqa: E402
from feast.permissions.auth_model import OidcAuthConfig  # noqa: E402
from featurestore_operator import render  # noqa: E402
from featurestore_operator.api import OperatorConfig, parse_featurestore, resolve  # noqa: E402
from featurestore_operator.render import Endpoints, RepoSource  # noqa: E402
from starlette.authentication import AuthenticationError  # noqa: E402

from tests.support.oidc_provider import OidcProvider  # noqa: E402


@pytest.fixture(scope="module")
def provider():
    with tempfile.TemporaryDirectory() as d:
        idp = OidcProvider(Path(d))
        try:
            yield idp
        finally:
            idp.close()


def _server_auth(issuer: str, **oidc: str) -> dict:
    doc = {
        "apiVersion": "featurestore.kubeflow.org/v1alpha1",
        "kind": "FeatureStore",
        "metadata": {"name": "idp", "namespace": "team", "uid": "0b5e9a52-8c1e-4a43-9b2e-5c0d7f6b1a11"},
        "spec": {
            "project": "p",
            "provider": "local",
            "featureRepo": {"configMap": {"name": "repo"}},
            "authz": {"type": "oidc", "oidc": {"issuer": issuer, "clientId": "feast", **oidc}},
        },
    }
    fs = parse_featurestore(doc)
    fs = fs.model_copy(update={"spec": resolve(fs.spec, OperatorConfig())})
    return yaml.safe_load(render.render(fs, Endpoints(), OperatorConfig(), repo=RepoSource("r")).server_yaml)["auth"]


def _parser(provider: OidcProvider, auth: dict) -> OidcTokenParser:
    return OidcTokenParser(OidcAuthConfig(**auth, ca_cert_path=str(provider.ca_file)))


def _accepts(parser: OidcTokenParser, token: str) -> bool:
    try:
        asyncio.run(parser.user_details_from_access_token(token))
    except AuthenticationError:
        return False
    return True


def test_token_for_this_store_is_accepted(provider):
    parser = _parser(provider, _server_auth(provider.issuer))
    assert _accepts(parser, provider.token(aud="feast"))
    assert _accepts(parser, provider.token(aud=["other-app", "feast"]))


def test_token_with_another_audience_is_refused(provider):
    """Signed by the right provider for another client (another store, another app): refused."""
    parser = _parser(provider, _server_auth(provider.issuer))
    for aud in ("other-app", ["account"], None):
        assert not _accepts(parser, provider.token(aud=aud)), aud


def test_token_of_another_issuer_is_refused(provider):
    """The same signing key under another issuer name (another realm of a shared provider): refused."""
    parser = _parser(provider, _server_auth(provider.issuer))
    for iss in (f"{provider.issuer}/realms/other", "https://evil.example.com"):
        assert not _accepts(parser, provider.token(aud="feast", iss=iss)), iss


def test_explicit_audience_replaces_the_client_id(provider):
    parser = _parser(provider, _server_auth(provider.issuer, audience="feast-team"))
    assert _accepts(parser, provider.token(aud="feast-team"))
    assert not _accepts(parser, provider.token(aud="feast"))


def test_stock_feast_config_would_accept_them(provider):
    """Why the rendered block sets them: Feast verifies aud/iss only when configured."""
    auth = {k: v for k, v in _server_auth(provider.issuer).items() if k not in ("audience", "issuer")}
    parser = _parser(provider, auth)
    assert _accepts(parser, provider.token(aud="other-app", iss="https://evil.example.com"))
