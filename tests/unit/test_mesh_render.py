"""Mesh-correct rendering (docs/security/mesh.md): port names and appProtocol say what each server
speaks (TLS included), Jobs and the in-cluster Redis join the mesh exactly when Istio runs native
sidecars, and AuthorizationPolicy uses the version the API server serves."""

from __future__ import annotations

from typing import Any

import pytest
from featurestore_operator.api import OperatorConfig, parse_featurestore, resolve
from featurestore_operator.backends.planned import planned_endpoints
from featurestore_operator.render import ApiVersions, Endpoints, RepoSource, ServingTls, render


def _objects(tls: bool = False, config: OperatorConfig | None = None, versions: ApiVersions | None = None):
    config = config or OperatorConfig()
    doc = {
        "apiVersion": "featurestore.kubeflow.org/v1alpha1",
        "kind": "FeatureStore",
        "metadata": {"name": "demo", "namespace": "team", "uid": "0b5e9a52-8c1e-4a43-9b2e-5c0d7f6b1a11"},
        "spec": {
            "project": "demo",
            "provider": "local",
            "featureRepo": {"configMap": {"name": "repo"}},
            "registry": {"server": {"enabled": True}},
            "offlineServer": {"enabled": True},
            "ui": {"enabled": True},
            "tls": {"enabled": tls},
        },
    }
    fs = parse_featurestore(doc)
    fs = fs.model_copy(update={"spec": resolve(fs.spec, config)})
    planned = planned_endpoints(fs)
    endpoints = Endpoints(planned.online, planned.offline, ServingTls("demo-tls", "PEM") if tls else None)
    return render(fs, endpoints, config, versions or ApiVersions(), RepoSource("r")).objects


def _service_ports(objects: list[dict[str, Any]]) -> dict[str, list[tuple[str, str]]]:
    return {
        o["metadata"]["name"]: [(p["name"], p.get("appProtocol", "")) for p in o["spec"]["ports"]]
        for o in objects
        if o["kind"] == "Service"
    }


def test_plain_servers_are_http_and_grpc():
    ports = _service_ports(_objects())
    assert ports["demo-feature-server"][0] == ("http", "http")
    assert ports["demo-registry-server"] == [("grpc", "grpc")]
    assert ports["demo-offline-server"] == [("grpc-flight", "grpc")]
    assert ports["demo-ui"] == [("http", "http")]


def test_tls_servers_are_never_named_http_or_grpc():
    ports = _service_ports(_objects(tls=True))
    assert ports["demo-feature-server"][0] == ("https", "https")
    assert ports["demo-registry-server"] == [("tls", "tls")]
    assert ports["demo-offline-server"] == [("tls-flight", "tls")]
    assert ports["demo-ui"] == [("https", "https")]
    for o in _objects(tls=True):  # probes and container ports follow the names
        if o["kind"] == "Deployment":
            [c] = o["spec"]["template"]["spec"]["containers"]
            names = {p["name"] for p in c["ports"]}
            assert not names & {"http", "grpc", "grpc-flight"}, o["metadata"]["name"]


def _annotations(objects: list[dict[str, Any]], component: str) -> dict[str, str]:
    for o in objects:
        if o["metadata"]["labels"].get("app.kubernetes.io/component") != component:
            continue
        if o["kind"] in ("Job", "StatefulSet"):
            return o["spec"]["template"]["metadata"].get("annotations") or {}
        if o["kind"] == "CronJob":
            return o["spec"]["jobTemplate"]["spec"]["template"]["metadata"].get("annotations") or {}
    raise AssertionError(component)


@pytest.mark.parametrize("native", [True, False])
def test_jobs_and_redis_join_the_mesh_with_native_sidecars_only(native):
    objects = _objects(config=OperatorConfig(istio_native_sidecars=native))
    for component in ("materialization", "feature-repo", "online-store"):
        inject = _annotations(objects, component).get("sidecar.istio.io/inject")
        assert inject == (None if native else "false"), component
    redis_ap = [o for o in objects if o["kind"] == "AuthorizationPolicy" and o["metadata"]["name"] == "demo-redis"]
    assert bool(redis_ap) == native


def test_authorization_policy_version_follows_discovery():
    def versions(objects: list[dict[str, Any]]) -> set[str]:
        return {o["apiVersion"] for o in objects if o["kind"] == "AuthorizationPolicy"}

    assert versions(_objects()) == {"security.istio.io/v1"}
    old = ApiVersions(authorization_policy="security.istio.io/v1beta1")
    assert versions(_objects(versions=old)) == {"security.istio.io/v1beta1"}


def test_discovery_picks_v1_and_falls_back_to_v1beta1():
    import asyncio

    from featurestore_operator.reconcile.versions import discovery

    from tests.support.fake_kube import FakeKube

    kube = FakeKube()
    assert asyncio.run(discovery(kube).versions()).authorization_policy == "security.istio.io/v1"
    kube.not_served_versions.add("security.istio.io/v1")  # Istio before 1.22
    old = asyncio.run(discovery(kube).versions())
    assert old.authorization_policy == "security.istio.io/v1beta1" and "AuthorizationPolicy" in old.optional_kinds
