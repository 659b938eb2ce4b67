"""render/offline.py: with compute.engine ray the offline server reads with Feast's ray offline store,
Ray in its own pod (never the store's RayCluster or ray.address), sized from its resources, with Ray's
token authentication; every other engine, and every other Feast workload, keeps the file store."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from featurestore_operator.api import OperatorConfig, parse_featurestore, resolve
from featurestore_operator.backends.planned import planned_endpoints
from featurestore_operator.cli import main
from featurestore_operator.render import render
from featurestore_operator.render.names import CONFIG_HASH_ANNOTATION
from featurestore_operator.render.offline import OFFLINE_CONFIG_KEY, OFFLINE_YAML

from tests.support.prerequisites import missing

CONFIG = OperatorConfig(gcp_project="my-gcp-project", gcp_region="us-central1", compute_enabled=True)
RESOURCES = {"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"cpu": "3", "memory": "4Gi"}}


def rendered(compute: dict[str, Any], offline_server: dict[str, Any] | None = None):
    doc = {
        "apiVersion": "featurestore.kubeflow.org/v1alpha1",
        "kind": "FeatureStore",
        "metadata": {"name": "clicks", "namespace": "team-a", "uid": "u-1"},
        "spec": {
            "project": "clicks",
            "provider": "gcp",
            "compute": compute,
            "offlineServer": {"enabled": True, **(offline_server or {})},
        },
    }
    fs = parse_featurestore(doc)
    fs = fs.model_copy(update={"spec": resolve(fs.spec, CONFIG)})
    return render(fs, planned_endpoints(fs, CONFIG), CONFIG)


def by_name(out, kind: str, name: str) -> dict[str, Any]:
    return next(o for o in out.objects if o["kind"] == kind and o["metadata"]["name"] == name)


def server(out, name: str = "clicks-offline-server") -> tuple[dict[str, Any], dict[str, Any]]:
    pod = by_name(out, "Deployment", name)["spec"]["template"]
    return pod, pod["spec"]["containers"][0]


def config_map(out) -> dict[str, str]:
    return by_name(out, "ConfigMap", "clicks-feast-config")["data"]


RAY_MODES = {
    "in-pod": {"engine": "ray"},
    "address": {"engine": "ray", "ray": {"address": "ray-head.team-a.svc.cluster.local:6379"}},
    "kubeRay": {"engine": "ray", "ray": {"kubeRay": {"workers": 2}}},
}


@pytest.mark.parametrize("compute", RAY_MODES.values(), ids=RAY_MODES.keys())
def test_ray_offline_server_reads_with_ray_in_its_own_pod(compute):
    out = rendered(compute, {"resources": RESOURCES})
    pod, container = server(out)
    offline = yaml.safe_load(config_map(out)[OFFLINE_CONFIG_KEY])["offline_store"]
    # never a cluster address: Ray Data does not run through Ray Client, the pod is no Ray node
    assert offline == {
        "type": "ray",
        "storage_path": f"gs://{out.server_yaml.split('gs://')[1].split('/')[0]}/staging",
        "ray_conf": {"num_cpus": 3, "object_store_memory": 1024**3},
    }, offline
    args = container["args"]
    assert args[: args.index("serve_offline")] == ["-f", OFFLINE_YAML]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["FEAST_FS_YAML_FILE_PATH"] == OFFLINE_YAML and env["RAY_AUTH_MODE"] == "token"
    assert not [k for k in env if k == "RAY_ADDRESS"]
    shm = next(v for v in pod["spec"]["volumes"] if v["name"] == "shm")["emptyDir"]
    assert shm == {"sizeLimit": "1088Mi", "medium": "Memory"}, "room above the 1 GiB object store"
    assert {"name": "shm", "mountPath": "/dev/shm"} in container["volumeMounts"]


def test_other_workloads_keep_the_file_store():
    out = rendered({"engine": "ray"})
    assert yaml.safe_load(out.server_yaml)["offline_store"] == {"type": "file"}
    for name in ("clicks-feature-server",):
        _, container = server(out, name)
        assert "/etc/feast/feature_store.yaml" in container["args"]
    # notebooks: through the offline server, which holds the engine
    assert yaml.safe_load(out.client_yaml)["offline_store"]["type"] == "remote"


def test_small_or_unset_resources_keep_ray_within_its_minimum():
    _, container = server(rendered({"engine": "ray"}))
    offline = yaml.safe_load(config_map(rendered({"engine": "ray"}))[OFFLINE_CONFIG_KEY])["offline_store"]
    # the default Feast resources: 2Gi limit, 100m request
    assert offline["ray_conf"] == {"num_cpus": 1, "object_store_memory": 512 * 1024**2}
    tiny = {"resources": {"requests": {"memory": "128Mi"}}}
    offline = yaml.safe_load(config_map(rendered({"engine": "ray"}, tiny))[OFFLINE_CONFIG_KEY])["offline_store"]
    assert offline["ray_conf"]["object_store_memory"] == 80 * 1024**2, "Ray refuses less than 75 MiB"


@pytest.mark.parametrize("engine", ["local", "kubernetes", "sparkApplication"])
def test_other_engines_serve_with_the_file_store(engine):
    out = rendered({"engine": engine})
    assert OFFLINE_CONFIG_KEY not in config_map(out)
    pod, container = server(out)
    assert "/etc/feast/feature_store.yaml" in container["args"]
    assert "RAY_AUTH_MODE" not in {e["name"] for e in container["env"]}
    assert "shm" not in {v["name"] for v in pod["spec"]["volumes"]}


def test_offline_server_restarts_when_its_own_config_changes_and_only_it():
    small = rendered({"engine": "ray"}, {"resources": {"limits": {"memory": "2Gi"}}})
    large = rendered({"engine": "ray"}, {"resources": {"limits": {"memory": "8Gi"}}})

    def hash_of(out, name: str) -> str:
        return by_name(out, "Deployment", name)["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]

    assert hash_of(small, "clicks-offline-server") != hash_of(large, "clicks-offline-server")
    assert hash_of(small, "clicks-feature-server") == hash_of(large, "clicks-feature-server")


def test_feast_loads_the_offline_servers_config(tmp_path, monkeypatch):
    try:
        from feast import repo_config
    except ImportError as err:
        missing(f"feast is not importable ({err}): pip install 'feast[redis,gcp]'")
    monkeypatch.setenv("REDIS_PASSWORD", "placeholder")
    text = config_map(rendered({"engine": "ray"}, {"resources": RESOURCES}))[OFFLINE_CONFIG_KEY]
    path = tmp_path / "feature_store.yaml"
    path.write_text(text.replace("<pending>", "10.0.0.3"))
    cfg = repo_config.load_repo_config(tmp_path, path)
    assert cfg.offline_store.type == "ray" and cfg.offline_store.ray_conf["num_cpus"] == 3
    assert cfg.offline_store.ray_address is None and not cfg.offline_store.use_kuberay


@pytest.mark.parametrize("enabled", [False, True])
def test_validate_notes_a_ray_store_whose_notebooks_retrieve_without_ray(enabled, tmp_path, capsys):
    doc = {
        "apiVersion": "featurestore.kubeflow.org/v1alpha1",
        "kind": "FeatureStore",
        "metadata": {"name": "clicks", "namespace": "team-a"},
        "spec": {"project": "clicks", "compute": {"engine": "ray"}, "offlineServer": {"enabled": enabled}},
    }
    path = tmp_path / "store.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert main(["validate", "-f", str(path)]) == 0
    err = capsys.readouterr().err
    noted = "note: featurestore/clicks: spec.compute.engine ray: without the offline server" in err
    assert noted is not enabled, err
    if noted:
        assert "spec.offlineServer.enabled: true" in err
