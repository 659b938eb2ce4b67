"""spec.compute: API validation, the rendered job config (checked by Feast's own config classes),
the engine's identity and RBAC objects, the conditions an engine cannot run under, and the
materialization summary parser and metrics."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import yaml
from featurestore_operator import metrics
from featurestore_operator.api import OperatorConfig, SpecError, parse_featurestore, resolve
from featurestore_operator.backends.planned import planned_endpoints
from featurestore_operator.render import (
    ApiVersions,
    Endpoints,
    OfflineEndpoint,
    OnlineEndpoint,
    RepoSource,
    SecretKey,
    compute,
    render,
)
from featurestore_operator.render.freshness import MAX_MESSAGE, parse_summary, termination_message
from prometheus_client import REGISTRY

from tests.support.prerequisites import need_module

ROOT = Path(__file__).resolve().parents[2]
CONFIG = OperatorConfig(gcp_project="my-gcp-project", gcp_region="us-central1", compute_enabled=True)
WITH_ENGINE_CRDS = ApiVersions(
    optional_kinds=frozenset({"PodDefault", "AuthorizationPolicy", "SparkApplication", "RayCluster"})
)
GSA = "feast-team-a@my-gcp-project.iam.gserviceaccount.com"
#: A Feast version without the k8s engine bug of 0.67 (compute.K8S_ENGINE_BROKEN_IN).
FIXED = "0.68.0"


def store(compute_spec: dict, provider: str = "gcp", **spec):
    doc = {
        "apiVersion": "featurestore.kubeflow.org/v1alpha1",
        "kind": "FeatureStore",
        "metadata": {"name": "s", "namespace": "team-a", "uid": "u-1"},
        "spec": {"project": "p", "provider": provider, "gcp": {"serviceAccount": GSA}, "compute": compute_spec, **spec},
    }
    fs = parse_featurestore(doc)
    return fs.model_copy(update={"spec": resolve(fs.spec, CONFIG)})


def example(name: str):
    doc = yaml.safe_load((ROOT / "examples" / name).read_text())
    doc["metadata"]["uid"] = "u-1"
    fs = parse_featurestore(doc)
    return fs.model_copy(update={"spec": resolve(fs.spec, CONFIG)})


def no_auth(fs) -> Endpoints:
    """The planned endpoints with an online store without AUTH: engines that copy their config into a
    ConfigMap are refused with one (test_compute_security.py)."""
    planned = planned_endpoints(fs)
    return Endpoints(online=OnlineEndpoint(planned.online.host, planned.online.port), offline=planned.offline)


def job_yaml(fs, versions: ApiVersions | None = None) -> dict | None:
    out = render(fs, planned_endpoints(fs), CONFIG, versions)
    [cm] = [
        o
        for o in out.objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"] == f"{fs.metadata.name}-feast-config"
    ]
    text = cm["data"].get(compute.JOB_CONFIG_KEY)
    return yaml.safe_load(text) if text else None


# --------------------------------------------------------------------------- API


@pytest.mark.parametrize(
    "bad, field",
    [
        ({"engine": "local", "ray": {}}, "settings of another engine"),
        (
            {"engine": "ray", "ray": {"address": "ray://h.team-a.svc:1", "kubeRay": {}}},
            "at most one of address or kubeRay",
        ),
        ({"engine": "ray", "ray": {"address": "ray://evil host;rm -rf /:1"}}, "address"),
        ({"engine": "ray", "ray": {"address": "http://h:10001"}}, "address"),
        (
            {
                "engine": "sparkApplication",
                "sparkApplication": {"sparkConf": {"spark.kubernetes.namespace": "kube-system"}},
            },
            "sparkConf",
        ),  # no free-form engine configuration: it could redirect namespaces or identities
        ({"engine": "sparkApplication", "sparkApplication": {"executor": {"memory": "2 g"}}}, "memory"),
        ({"engine": "kubernetes", "kubernetes": {"maxParallelism": 0}}, "maxParallelism"),
        ({"engine": "dask"}, "engine"),
    ],
)
def test_hostile_or_wrong_compute_specs_are_rejected(bad, field):
    with pytest.raises(SpecError) as err:
        store(bad)
    assert field in str(err.value), str(err.value)


def test_default_is_local_and_renders_nothing_new():
    fs = store({})
    assert fs.spec.compute.engine.value == "local"
    assert job_yaml(fs) is None
    assert compute.objects(fs, WITH_ENGINE_CRDS, True) == []
    assert compute.materialization_service_account(fs, True) == "s-feast"
    assert compute.problem(fs, planned_endpoints(fs), ApiVersions(), FIXED, True) is None


# --------------------------------------------------------------------------- rendered job config


def _feast_engine_config(job: dict):
    repo_config = need_module("feast.repo_config")
    return repo_config.get_batch_engine_config_from_type(job["batch_engine"]["type"])(**job["batch_engine"])


def test_kubernetes_engine_config_is_what_feast_reads():
    fs = example("kubernetes-compute.yaml")
    job = job_yaml(fs)
    cfg = _feast_engine_config(job)  # Feast's own pydantic model: unknown or mistyped keys fail here
    bucket = planned_endpoints(fs).offline.bucket
    assert cfg.namespace == "team-a" and cfg.max_parallelism == 8 and cfg.mini_batch_size == 5000
    assert cfg.service_account_name == "orders-feast", "workers get the data identity, not the RBAC one"
    assert cfg.synchronous is True and cfg.image == fs.spec.images.feast
    assert cfg.annotations == {"sidecar.istio.io/inject": "false"}
    assert cfg.resources == {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}}
    assert job["offline_store"] == {"type": "ray", "storage_path": f"gs://{bucket}/staging"}
    assert job["registry"]["path"] == f"gs://{bucket}/registry.pb"


def test_spark_application_engine_config_is_what_feast_reads():
    fs = example("sparkapplication-compute.yaml")
    job = job_yaml(fs)
    cfg = _feast_engine_config(job)
    assert (cfg.image, cfg.service_account, cfg.namespace) == (
        "ghcr.io/example/feast-spark:0.67.0",
        "sessions-feast-compute",
        "team-a",
    )
    assert (cfg.executor_instances, cfg.executor_cores, cfg.executor_memory, cfg.driver_memory) == (4, 2, "8g", "2g")
    bucket = planned_endpoints(fs).offline.bucket
    assert job["offline_store"] == {"type": "spark", "staging_location": f"gs://{bucket}/staging"}
    # Feast refuses file registries for this engine: the Job reads through the registry server
    assert job["registry"] == {
        "registry_type": "remote",
        "path": "sessions-registry-server.team-a.svc.cluster.local:6570",
    }


def test_ray_engine_and_offline_store_config_is_what_feast_reads():
    need_module("ray")
    from feast.infra.offline_stores.contrib.ray_offline_store.ray import RayOfflineStoreConfig

    fs = example("ray-compute.yaml")
    job = job_yaml(fs, WITH_ENGINE_CRDS)
    cfg = _feast_engine_config(job)
    # kubeRay: the run is a Ray job whose driver is a Ray node; Ray sets RAY_ADDRESS for it
    assert cfg.ray_address is None and cfg.write_concurrency == 8
    assert RayOfflineStoreConfig(**job["offline_store"]).ray_address is None
    assert (
        cfg.staging_location
        == job["offline_store"]["storage_path"]
        == f"gs://{planned_endpoints(fs).offline.bucket}/staging"
    )


def test_local_provider_stages_on_the_volume():
    fs = store({"engine": "ray"}, provider="local")
    job = job_yaml(fs)
    assert job["batch_engine"] == {
        "type": "ray.engine",
        "staging_location": "/data/staging",
        "target_partition_size_mb": 64,
    }
    assert job["offline_store"] == {"type": "ray", "storage_path": "/data/staging"}


def test_only_the_materialization_job_uses_the_engine_config():
    fs = example("kubernetes-compute.yaml")
    out = render(fs, no_auth(fs), CONFIG)
    assert "batch_engine" not in out.server_yaml
    [cron] = [o for o in out.objects if o["kind"] == "CronJob"]
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["FEAST_FS_YAML_FILE_PATH"] == f"/etc/feast/{compute.JOB_CONFIG_KEY}"
    assert pod["serviceAccountName"] == "orders-feast-compute"
    with_repo = store({"engine": "kubernetes"}, featureRepo={"configMap": {"name": "r"}})
    [apply] = [
        o
        for o in render(with_repo, planned_endpoints(with_repo), CONFIG, repo=RepoSource("r1")).objects
        if o["kind"] == "Job"
    ]
    apply_env = {e["name"]: e.get("value") for e in apply["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert apply_env["FEAST_FS_YAML_FILE_PATH"] == "/etc/feast/feature_store.yaml"
    assert apply["spec"]["template"]["spec"]["serviceAccountName"] == "s-feast"


# --------------------------------------------------------------------------- objects


@pytest.mark.parametrize(
    "engine, cluster_role",
    [("kubernetes", "featurestore-compute-kubernetes"), ("sparkApplication", "featurestore-compute-spark-application")],
)
def test_engines_that_create_objects_get_a_ksa_bound_to_the_charts_cluster_role(engine, cluster_role):
    fs = store({"engine": engine})
    sa, binding = compute.objects(fs, ApiVersions(), True)
    assert sa["kind"] == "ServiceAccount" and sa["metadata"]["name"] == "s-feast-compute"
    assert sa["metadata"]["annotations"] == {"iam.gke.io/gcp-service-account": GSA}
    assert binding["kind"] == "RoleBinding" and binding["metadata"]["namespace"] == "team-a"
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "s-feast-compute", "namespace": "team-a"}]
    assert compute.workload_identity_service_accounts(fs, True) == ["s-feast", "s-feast-compute"]


def test_kuberay_cluster_is_owned_and_runs_as_the_data_identity():
    fs = example("ray-compute.yaml")
    assert compute.objects(fs, ApiVersions(), True) == [], "no RayCluster before KubeRay's CRD exists"
    [rc] = compute.objects(fs, WITH_ENGINE_CRDS, True)
    assert rc["apiVersion"] == "ray.io/v1" and rc["metadata"]["name"] == "clicks-ray"
    assert rc["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    [workers] = rc["spec"]["workerGroupSpecs"]
    assert workers["replicas"] == workers["minReplicas"] == workers["maxReplicas"] == 4
    for group in (rc["spec"]["headGroupSpec"], workers):
        pod = group["template"]["spec"]
        assert pod["serviceAccountName"] == "clicks-feast"
        assert group["template"]["metadata"]["annotations"] == {"sidecar.istio.io/inject": "false"}
    assert workers["template"]["spec"]["containers"][0]["resources"]["limits"] == {"cpu": "2", "memory": "8Gi"}
    assert compute.workload_identity_service_accounts(fs, True) == ["clicks-feast"]


# --------------------------------------------------------------------------- conditions


def test_missing_engine_operator_is_named():
    spark = example("sparkapplication-compute.yaml")
    msg = compute.problem(spark, no_auth(spark), ApiVersions(), FIXED, True)
    assert msg and "Kubeflow Spark Operator" in msg and "sparkoperator.k8s.io/v1beta2" in msg
    assert compute.problem(spark, no_auth(spark), WITH_ENGINE_CRDS, FIXED, True) is None
    plain_ray = store({"engine": "ray", "ray": {"address": "ray-head.team-a.svc.cluster.local:6379"}})
    assert compute.problem(plain_ray, planned_endpoints(plain_ray), ApiVersions(), FIXED, True) is None


def test_ray_client_address_is_reported_not_silently_broken():
    fs = store({"engine": "ray", "ray": {"address": "ray://ray-head.team-a.svc.cluster.local:10001"}})
    msg = compute.problem(fs, planned_endpoints(fs), WITH_ENGINE_CRDS, FIXED, True)
    assert msg and "Ray Client" in msg and "48682" in msg and "kubeRay" in msg


def test_kube_ray_runs_the_materialization_as_a_ray_job():
    fs = store({"engine": "ray", "ray": {"kubeRay": {}}})
    assert compute.problem(fs, planned_endpoints(fs), WITH_ENGINE_CRDS, FIXED, True) is None
    [cron] = [o for o in render(fs, planned_endpoints(fs), CONFIG, WITH_ENGINE_CRDS).objects if o["kind"] == "CronJob"]
    [c] = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in c["env"]}
    assert env["FEAST_RAY_JOBS_URL"]["value"] == f"http://{fs.metadata.name}-ray-head-svc.team-a.svc.cluster.local:8265"
    assert env["RAY_AUTH_TOKEN"]["valueFrom"] == {
        "secretKeyRef": {"name": f"{fs.metadata.name}-ray", "key": "auth_token"}
    }
    assert env["RAY_AUTH_MODE"]["value"] == "token"
    script = c["args"][1]
    assert "JobSubmissionClient" in script and "/dev/termination-log" in script
    assert "stop_job" in script and "signal.SIGTERM" in script, "a terminated pod stops its Ray job"


def test_kube_ray_needs_the_bucket():
    local = store({"engine": "ray", "ray": {"kubeRay": {}}}, provider="local")
    msg = compute.problem(local, planned_endpoints(local), WITH_ENGINE_CRDS, FIXED, True)
    assert "spec.compute.ray.kubeRay" in msg and "offlineStore.gcs" in msg


def test_engines_that_cannot_run_here_say_why():
    local_k8s = store({"engine": "kubernetes"}, provider="local")
    assert "offlineStore.gcs" in compute.problem(local_k8s, no_auth(local_k8s), ApiVersions(), FIXED, True)
    tls = store({"engine": "kubernetes"})
    endpoints = Endpoints(
        online=OnlineEndpoint("10.0.0.3", 6378, tls=True, ca=SecretKey("s", "ca.crt")),
        offline=OfflineEndpoint(bucket="b"),
    )
    assert "TLS" in compute.problem(tls, endpoints, ApiVersions(), FIXED, True)
    no_registry_server = store({"engine": "sparkApplication"})
    assert "registry.server.enabled" in compute.problem(
        no_registry_server, no_auth(no_registry_server), WITH_ENGINE_CRDS, FIXED, True
    )


# --------------------------------------------------------------------------- freshness


def test_summary_is_parsed_strictly():
    good = json.dumps(
        {"v": 1, "views": {"b": "2026-11-29T22:00:00+00:00", "a": "2026-11-29T21:00:00"}, "truncated": False}
    )
    s = parse_summary("some log line\n" + good)
    assert [v.name for v in s.views] == ["a", "b"]
    assert s.views[0].materialized_until == dt.datetime(2026, 11, 29, 21, tzinfo=dt.UTC)
    assert s.views[1].lag_seconds(dt.datetime(2026, 11, 29, 22, 30, tzinfo=dt.UTC)) == 1800
    hostile = json.dumps(
        {
            "v": 1,
            "views": {
                "../x": "2026-11-29T22:00:00",
                "ok": "yesterday",
                "n": 5,
                "fine": "2026-11-29",
                "nl\n": "2026-11-29",  # "$" alone admits a trailing newline
            },
        }
    )
    assert [v.name for v in parse_summary(hostile).views] == ["fine"]
    for junk in (None, "", "not json", "[]", json.dumps({"v": 2, "views": {}}), "x" * (MAX_MESSAGE + 1)):
        assert parse_summary(junk) is None, junk


def test_termination_message_of_the_materialize_container():
    pod = {
        "status": {
            "containerStatuses": [
                {"name": "istio-proxy", "state": {"terminated": {"message": "nope"}}},
                {"name": "materialize", "state": {"terminated": {"exitCode": 0, "message": '{"v":1,"views":{}}'}}},
            ]
        }
    }
    assert termination_message(pod) == '{"v":1,"views":{}}'
    assert termination_message({"status": {}}) is None


def test_freshness_metrics_follow_the_reported_views():
    def value(name, view):
        return REGISTRY.get_sample_value(name, {"namespace": "ns", "featurestore": "fs", "feature_view": view})

    metrics.record_freshness("ns", "fs", {"a": 1000.0, "b": 1500.0}, now=2000.0)
    assert value("featurestore_feature_view_freshness_lag_seconds", "a") == 1000.0
    assert value("featurestore_feature_view_materialized_until_timestamp_seconds", "b") == 1500.0
    metrics.record_freshness("ns", "fs", {"b": 1900.0}, now=2000.0)
    assert value("featurestore_feature_view_freshness_lag_seconds", "a") is None, (
        "a view that went away loses its series"
    )
    metrics.forget_freshness("ns", "fs")
    assert value("featurestore_feature_view_freshness_lag_seconds", "b") is None


def test_feast_067_k8s_engine_bug_is_reported():
    fs = example("kubernetes-compute.yaml")
    plain = Endpoints(online=OnlineEndpoint("10.0.0.3", 6379), offline=planned_endpoints(fs).offline)
    msg = compute.problem(fs, plain, ApiVersions(), CONFIG.feast_version, True)
    assert msg and "update/teardown_infra" in msg and "ray" in msg
    assert compute.problem(fs, plain, ApiVersions(), FIXED, True) is None
    k8s_engine = need_module("feast.infra.compute_engines.kubernetes.k8s_engine")
    abstract = k8s_engine.KubernetesComputeEngine.__abstractmethods__
    if CONFIG.feast_version.startswith(compute.K8S_ENGINE_BROKEN_IN):
        assert abstract == {"update", "teardown_infra"}, "Feast fixed its k8s engine: drop K8S_ENGINE_BROKEN_IN"
