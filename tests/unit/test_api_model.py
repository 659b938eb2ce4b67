"""The API model: defaults, validation messages that name the field and the fix, resolution."""

from __future__ import annotations

import pytest
from featurestore_operator.api import OperatorConfig, Provider, SpecError, parse_featurestore, resolve

BASE = {
    "apiVersion": "featurestore.kubeflow.org/v1alpha1",
    "kind": "FeatureStore",
    "metadata": {"name": "fs1", "namespace": "ns"},
}


def manifest(spec: dict, **meta) -> dict:
    return {**BASE, "metadata": {**BASE["metadata"], **meta}, "spec": spec}


def errors(spec: dict, **meta) -> str:
    with pytest.raises(SpecError) as info:
        parse_featurestore(manifest(spec, **meta))
    return str(info.value)


def test_defaults_are_explicit():
    fs = parse_featurestore(manifest({"project": "p"}))
    spec = fs.spec
    assert spec.registry.cache_ttl_seconds == 60
    assert spec.materialization.schedule == "0 * * * *"
    assert spec.feature_server.replicas == 1
    assert spec.feature_server.keep_alive_timeout == 30
    assert spec.kubeflow.pod_default is True


@pytest.mark.parametrize(
    "spec, meta, field, hint",
    [
        (
            {"project": "p", "onlineStore": {"memorystore": {"tier": "HUGE"}}},
            {},
            "spec.onlineStore.memorystore.tier",
            "BASIC",
        ),
        (
            {"project": "p", "onlineStore": {"memorystore": {"memorySizeGb": 301}}},
            {},
            "spec.onlineStore.memorystore.memorySizeGb",
            "300",
        ),
        (
            {"project": "p", "onlineStore": {"memorystore": {"memorySizeGb": 0}}},
            {},
            "spec.onlineStore.memorystore.memorySizeGb",
            "1",
        ),
        (
            {"project": "p", "materialization": {"schedule": "every hour"}},
            {},
            "spec.materialization.schedule",
            "5 fields",
        ),
        (
            {"project": "p", "materialization": {"schedule": "61 * * * *"}},
            {},
            "spec.materialization.schedule",
            "5 fields",
        ),
        (
            {"project": "p", "materialization": {"schedule": "TZ=UTC 0 * * * *"}},
            {},
            "spec.materialization.schedule",
            "timeZone",
        ),
        (
            {"project": "p", "materialization": {"timeZone": "Mars/Olympus_Mons"}},
            {},
            "spec.materialization.timeZone",
            "not an IANA time zone",
        ),
        ({"project": "p", "featureServer": {"replicaz": 2}}, {}, "spec.featureServer.replicaz", "unknown field"),
        ({}, {}, "spec.project", "required"),
        ({"project": "p"}, {"name": "x" * 41}, "metadata.name", "40"),
        (
            {"project": "p", "onlineStore": {"memorystore": {"instanceId": "9-starts-with-digit"}}},
            {},
            "spec.onlineStore.memorystore.instanceId",
            "pattern",
        ),
        ({"project": "p", "offlineStore": {"gcs": {"bucket": "b" * 64}}}, {}, "spec.offlineStore.gcs.bucket", "63"),
        ({"project": "p", "onlineStore": {}}, {}, "spec.onlineStore", "exactly one"),
        ({"project": "p", "onlineStore": {"memorystore": {}, "inCluster": {}}}, {}, "spec.onlineStore", "exactly one"),
        (
            {"project": "p", "featureServer": {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}}},
            {},
            "spec.featureServer.autoscaling",
            "maxReplicas",
        ),
        (
            {"project": "p", "featureRepo": {"git": {"url": "file:///etc/passwd"}}},
            {},
            "spec.featureRepo.git.url",
            "pattern",
        ),
        (
            {"project": "p", "featureRepo": {"git": {"url": "https://x/y.git", "path": "../../etc"}}},
            {},
            "spec.featureRepo.git.path",
            "..",
        ),
        (
            {"project": "p", "featureRepo": {"git": {"url": "https://x/y.git", "ref": "main; rm -rf /"}}},
            {},
            "spec.featureRepo.git.ref",
            "pattern",
        ),
        ({"project": "p-1"}, {}, "spec.project", "pattern"),
        ({"project": "p", "provider": "local", "onlineStore": {"memorystore": {}}}, {}, "spec", "provider gcp"),
    ],
)
def test_bad_input_names_field_and_allowed_values(spec, meta, field, hint):
    message = errors(spec, **meta)
    assert f"{field}:" in message
    assert hint in message


def test_resolve_fills_provider_dependent_defaults():
    fs = parse_featurestore(manifest({"project": "p", "provider": "gcp"}))
    config = OperatorConfig(gcp_project="my-project", gcp_region="us-central1")
    spec = resolve(fs.spec, config)
    assert spec.online_store.memorystore is not None
    assert spec.online_store.memorystore.network == "projects/my-project/global/networks/default"
    assert spec.offline_store.gcs is not None
    assert spec.gcp.project == "my-project"
    assert spec.registry.server.enabled is False
    assert spec.images.feast == config.feast_image


def test_resolve_local_default_provider():
    spec = resolve(parse_featurestore(manifest({"project": "p"})).spec, OperatorConfig())
    assert spec.provider is Provider.LOCAL
    assert spec.online_store.in_cluster is not None and spec.offline_store.in_cluster is not None
    assert spec.registry.server.enabled is True  # notebooks cannot mount the volume


def test_resolve_gcp_without_project_names_the_fix():
    fs = parse_featurestore(manifest({"project": "p", "provider": "gcp"}))
    with pytest.raises(SpecError) as info:
        resolve(fs.spec, OperatorConfig())
    paths = [p for p, _ in info.value.problems]
    assert "spec.gcp.project" in paths and "spec.gcp.region" in paths
    assert "gcpProject" in str(info.value)


def test_operator_config_from_env_validates(monkeypatch):
    monkeypatch.setenv("FSO_DEFAULT_PROVIDER", "gcp")
    monkeypatch.setenv("FSO_NAMESPACES", "a, b")
    cfg = OperatorConfig()
    assert cfg.default_provider is Provider.GCP and cfg.namespaces == ["a", "b"]
    monkeypatch.setenv("FSO_RESYNC_SECONDS", "1")
    with pytest.raises(Exception) as info:
        OperatorConfig()
    assert "resync_seconds" in str(info.value)


def test_roundtrip_is_stable():
    fs = parse_featurestore(manifest({"project": "p", "materialization": {"featureViews": ["a", "b"]}}))
    again = parse_featurestore(manifest(fs.spec.wire()))
    assert again.spec == fs.spec
