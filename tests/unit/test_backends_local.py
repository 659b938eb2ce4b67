"""In-cluster and external backends with a plain async ``get_secret`` (a dict lookup)."""

from __future__ import annotations

import asyncio
import re

import pytest
from featurestore_operator.api import OperatorConfig, parse_featurestore, resolve
from featurestore_operator.backends.base import BackendContext, Deleted, Failed, Ready
from featurestore_operator.backends.external import ExternalRedisBackend
from featurestore_operator.backends.incluster import InClusterOfflineBackend, InClusterRedisBackend
from featurestore_operator.render import OfflineEndpoint, OnlineEndpoint, SecretKey

CONFIG = OperatorConfig()


def ctx(secrets: dict[str, dict[str, str]], reads: list[str] | None = None) -> BackendContext:
    async def get_secret(name: str) -> dict[str, str] | None:
        if reads is not None:
            reads.append(name)
        return secrets.get(name)

    return BackendContext(config=CONFIG, get_secret=get_secret)


def make_fs(online: dict | None = None, namespace: str = "team-a"):
    spec: dict = {"project": "demo", "provider": "local"}
    if online is not None:
        spec["onlineStore"] = online
    fs = parse_featurestore(
        {
            "apiVersion": "featurestore.kubeflow.org/v1alpha1",
            "kind": "FeatureStore",
            "metadata": {"name": "demo", "namespace": namespace, "uid": "u1"},
            "spec": spec,
        }
    )
    return fs.model_copy(update={"spec": resolve(fs.spec, CONFIG)})


def run(coro):
    return asyncio.run(coro)


# --- in-cluster Redis --------------------------------------------------------------------------


def test_incluster_generates_password_when_secret_missing():
    reads: list[str] = []
    out = run(InClusterRedisBackend().ensure(make_fs(), ctx({}, reads)))
    assert isinstance(out, Ready)
    assert out.endpoint == OnlineEndpoint(
        host="demo-redis.team-a.svc.cluster.local", port=6379, password=SecretKey("demo-online-store", "password")
    )
    assert re.fullmatch(r"[0-9a-f]{48}", out.secret["password"])
    assert set(out.secret) == {"password"}
    assert reads == ["demo-online-store"]


def test_incluster_passwords_differ_between_stores():
    a = run(InClusterRedisBackend().ensure(make_fs(), ctx({})))
    b = run(InClusterRedisBackend().ensure(make_fs(), ctx({})))
    assert a.secret["password"] != b.secret["password"]


def test_incluster_reuses_existing_password():
    out = run(InClusterRedisBackend().ensure(make_fs(), ctx({"demo-online-store": {"password": "keep-me"}})))
    assert out.secret == {"password": "keep-me"}


def test_incluster_regenerates_empty_password():
    out = run(InClusterRedisBackend().ensure(make_fs(), ctx({"demo-online-store": {"password": ""}})))
    assert len(out.secret["password"]) == 48


def test_incluster_offline_claim():
    out = run(InClusterOfflineBackend().ensure(make_fs(), ctx({})))
    assert isinstance(out, Ready) and out.endpoint == OfflineEndpoint(claim="demo-feast-data")
    assert out.secret is None


@pytest.mark.parametrize("backend", [InClusterRedisBackend(), InClusterOfflineBackend(), ExternalRedisBackend()])
def test_no_cleanup_needed(backend):
    fs = make_fs()
    assert backend.needs_cleanup(fs) is False
    assert run(backend.delete(fs, ctx({}))) == Deleted(True)


# --- external Redis ----------------------------------------------------------------------------


def ext_fs(tls: bool = False):
    return make_fs({"external": {"secretRef": {"name": "my-redis"}, "tls": tls}})


def test_external_plain():
    out = run(
        ExternalRedisBackend().ensure(
            ext_fs(), ctx({"my-redis": {"host": "redis.example.com", "port": "6380", "password": "pw"}})
        )
    )
    assert isinstance(out, Ready)
    assert out.endpoint == OnlineEndpoint(
        host="redis.example.com", port=6380, tls=False, password=SecretKey("my-redis", "password"), ca=None
    )
    assert out.secret is None  # the user's Secret is used directly, never copied
    assert "pw" not in out.message


def test_external_tls_with_ca():
    data = {"host": "10.0.0.5", "port": "6378", "password": "pw", "ca.crt": "-----BEGIN CERTIFICATE-----"}
    out = run(ExternalRedisBackend().ensure(ext_fs(tls=True), ctx({"my-redis": data})))
    assert out.endpoint == OnlineEndpoint(
        host="10.0.0.5",
        port=6378,
        tls=True,
        password=SecretKey("my-redis", "password"),
        ca=SecretKey("my-redis", "ca.crt"),
    )
    assert "ca.crt" in out.message


def test_external_tls_without_ca_and_no_password():
    out = run(ExternalRedisBackend().ensure(ext_fs(tls=True), ctx({"my-redis": {"host": "r", "port": "6379"}})))
    assert out.endpoint == OnlineEndpoint(host="r", port=6379, tls=True, password=None, ca=None)
    assert "system CAs" in out.message and "no password" in out.message


def test_external_ca_ignored_without_tls():
    out = run(ExternalRedisBackend().ensure(ext_fs(), ctx({"my-redis": {"host": "r", "port": "1", "ca.crt": "x"}})))
    assert out.endpoint.ca is None


def test_external_secret_missing():
    out = run(ExternalRedisBackend().ensure(ext_fs(), ctx({})))
    assert isinstance(out, Failed) and out.reason == "SecretNotFound" and out.retryable
    assert "spec.onlineStore.external.secretRef.name" in out.message
    assert "'my-redis'" in out.message and "namespace team-a" in out.message


@pytest.mark.parametrize(
    "data, key",
    [
        ({"port": "6379"}, "'host'"),
        ({"host": "  ", "port": "6379"}, "'host'"),
        ({"host": "a,ssl=false", "port": "6379"}, "'host'"),
        ({"host": "redis://a", "port": "6379"}, "'host'"),
        ({"host": "a:6379", "port": "6379"}, "'host'"),
        ({"host": "a"}, "'port'"),
        ({"host": "a", "port": "http"}, "'port'"),
        ({"host": "a", "port": "0"}, "'port'"),
        ({"host": "a", "port": "70000"}, "'port'"),
    ],
)
def test_external_invalid_keys(data, key):
    out = run(ExternalRedisBackend().ensure(ext_fs(), ctx({"my-redis": data})))
    assert isinstance(out, Failed) and out.reason == "InvalidSecret" and out.retryable
    assert key in out.message and "team-a/my-redis" in out.message


def test_external_port_whitespace_tolerated():
    out = run(ExternalRedisBackend().ensure(ext_fs(), ctx({"my-redis": {"host": "r.svc\n", "port": " 6379\n"}})))
    assert out.endpoint.host == "r.svc" and out.endpoint.port == 6379
