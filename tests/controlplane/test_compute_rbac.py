"""spec.compute on the real API server: what the engines create is allowed by exactly what the
store's rendered RoleBinding grants, in its namespace only.

* The operator's chart rules (compute.enabled) let it apply the rendered ServiceAccount and
  RoleBinding under its own token: RBAC's escalation check passes through `bind` on the two
  compute ClusterRoles only (binding cluster-admin is refused).
* Feast's own engine code (``KubernetesComputeEngine``, ``SparkApplicationComputeEngine`` of
  feast 0.67; the k8s one with the two no-op methods Feast 0.67 forgot, see
  render/compute.K8S_ENGINE_BROKEN_IN), run in a subprocess authenticated as the store's compute KSA with the rendered
  ``materialize.yaml``, creates its ConfigMap + indexed Job / ConfigMap + SparkApplication, polls
  and deletes them. The SparkApplication is validated by the Spark Operator's CRD
  (tests/support/crds) and carries the store's KSA, image, sizes and staging path.
* The same token may not touch another namespace, Secrets, RoleBindings or (k8s engine) pods.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.prerequisites import need_module
from tests.support.rbac import can

need_module("feast", "feast 0.67 is needed: the test runs Feast's own engine code", module=True)

from featurestore_operator.api import OperatorConfig, parse_featurestore, resolve  # noqa: E402
from featurestore_operator.backends.planned import planned_endpoints  # noqa: E402
from featurestore_operator.render import Endpoints, OnlineEndpoint, render  # noqa: E402
from featurestore_operator.render.compute import JOB_CONFIG_KEY  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "featurestore-operator"
CONFIG = OperatorConfig(gcp_project="my-gcp-project", gcp_region="us-central1", compute_enabled=True)
SPARK = ("sparkoperator.k8s.io", "v1beta2", "sparkapplications")

#: Runs Feast's engine in a child process (its kube client reads $KUBECONFIG: the compute KSA's).
ENGINE_SCRIPT = r"""
import datetime as dt, json, sys, types, yaml
from kubernetes.client.exceptions import ApiException
from feast.repo_config import RepoConfig
kind, job_id = sys.argv[1], sys.argv[2]
raw = yaml.safe_load(open(sys.argv[3]))
offline = raw["offline_store"]
if kind == "spark":  # RepoConfig imports the spark offline store's module, i.e. pyspark (300 MB, not
    raw["offline_store"] = {"type": "bigquery"}  # installed here): build with a stand-in, ship the rendered one
config = RepoConfig(**raw)
out = {}
fv = types.SimpleNamespace(name="driver_hourly_stats")
if kind == "k8s":
    from feast.infra.compute_engines.kubernetes.k8s_engine import KubernetesComputeEngine

    class Engine(KubernetesComputeEngine):  # Feast 0.67 leaves these abstract (K8S_ENGINE_BROKEN_IN)
        def update(self, *args, **kwargs):
            pass

        def teardown_infra(self, *args, **kwargs):
            pass

    engine = Engine(repo_config=config, offline_store=None, online_store=None)
    parts = ["gs://b/staging/x/part-0.parquet", "gs://b/staging/x/part-1.parquet"]
    job = engine._create_kubernetes_job(job_id, parts, fv)
    out["error"] = repr(job.error()) if job.error() else None
    out["status"] = job.status().name
    engine._print_pod_logs(job.job_id(), fv)  # lists the Job's pods (none run on this control plane)
    out["job"] = engine.batch_v1.read_namespaced_job(job.job_id(), engine.namespace).to_dict()
    engine.batch_v1.delete_namespaced_job(job.job_id(), engine.namespace, propagation_policy="Background")
    engine.v1.delete_namespaced_config_map(engine._configmap_name(job_id), engine.namespace)
else:
    from feast.infra.compute_engines.spark_application.compute import SparkApplicationComputeEngine
    engine = SparkApplicationComputeEngine(repo_config=config, offline_store=None, online_store=None)
    driver_config = engine._build_driver_repo_config
    engine._build_driver_repo_config = lambda: {**driver_config(), "offline_store": offline}
    now = dt.datetime.now(dt.timezone.utc)
    task = types.SimpleNamespace(feature_view=fv, start_time=now - dt.timedelta(hours=1), end_time=now)
    engine._create_configmap(job_id, [task])
    apps = ("sparkoperator.k8s.io", "v1beta2", config.batch_engine.namespace, "sparkapplications")
    cr = engine._build_spark_application_cr(job_id)
    try:
        bad = json.loads(json.dumps(cr))
        bad["metadata"]["name"] += "-bad"
        bad["spec"]["driver"]["cores"] = 0
        engine.custom_api.create_namespaced_custom_object(*apps, bad)
        out["bad"] = "accepted"
    except ApiException as e:
        out["bad"] = e.status
    engine.custom_api.create_namespaced_custom_object(*apps, cr)
    out["status"] = engine.custom_api.get_namespaced_custom_object(*apps, cr["metadata"]["name"])
    out["configmap"] = engine.core_v1.read_namespaced_config_map(f"feast-sa-{job_id}", apps[2]).data
    engine._cleanup(job_id)
print("RESULT " + json.dumps(out, default=str))
"""


def _helm(helm_bin: str, *values: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [helm_bin, "template", "fso", str(CHART), "-n", "fso-system", *values],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def _store(example: str, namespace: str):
    doc = yaml.safe_load((ROOT / "examples" / example).read_text())
    doc["metadata"].update(namespace=namespace, uid=str(uuid.uuid4()))
    fs = parse_featurestore(doc)
    return fs.model_copy(update={"spec": resolve(fs.spec, CONFIG)})


def _job_config(objects: list[dict[str, Any]], tmp_path: Path) -> Path:
    [cm] = [o for o in objects if o["kind"] == "ConfigMap" and JOB_CONFIG_KEY in o.get("data", {})]
    path = tmp_path / JOB_CONFIG_KEY
    path.write_text(cm["data"][JOB_CONFIG_KEY])
    return path


def _run_engine(kind: str, job_id: str, config: Path, kubeconfig: str) -> dict[str, Any]:
    env = {**os.environ, "KUBECONFIG": kubeconfig, "FEAST_USAGE": "False", "REDIS_PASSWORD": "unused"}
    res = subprocess.run(
        [sys.executable, "-c", ENGINE_SCRIPT, kind, job_id, str(config)],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert res.returncode == 0, (
        f"Feast's {kind} engine failed under the compute KSA:\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}"
    )
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def _install_compute_roles(kube_api, helm_bin: str) -> list[dict[str, Any]]:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    docs = _helm(helm_bin, "--set", "compute.enabled=true")
    rbac = client.RbacAuthorizationV1Api(kube_api)
    for role in [
        d for d in docs if d["kind"] == "ClusterRole" and d["metadata"]["name"].startswith("featurestore-compute-")
    ]:
        try:
            rbac.create_cluster_role(role)
        except ApiException as err:
            if err.status != 409:
                raise
            rbac.replace_cluster_role(role["metadata"]["name"], role)
    return docs


def _apply(kube_api, objects: list[dict[str, Any]]) -> None:
    from kubernetes import dynamic

    dyn = dynamic.DynamicClient(kube_api)
    for obj in objects:
        # No ownerReference: the store these were rendered for does not exist, and the garbage
        # collector would delete them while the test uses them (RBAC is what is tested here).
        obj = {**obj, "metadata": {k: v for k, v in obj["metadata"].items() if k != "ownerReferences"}}
        res = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        res.server_side_apply(
            body=obj,
            namespace=obj["metadata"]["namespace"],
            field_manager="featurestore-operator",
            force_conflicts=True,
        )


def test_chart_grants_bind_on_the_compute_roles_only(helm_bin):
    docs = _helm(helm_bin, "--set", "compute.enabled=true")
    [operator] = [
        d for d in docs if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "fso-featurestore-operator"
    ]
    binds = [r for r in operator["rules"] if "bind" in r["verbs"]]
    compute_bind = {
        "apiGroups": ["rbac.authorization.k8s.io"],
        "resources": ["clusterroles"],
        "resourceNames": ["featurestore-compute-kubernetes", "featurestore-compute-spark-application"],
        "verbs": ["bind"],
    }
    # besides the compute roles, only the token reviewer role of authz kubernetes (test_chart_authz.py)
    assert compute_bind in binds and len(binds) == 2, binds
    [other] = [r for r in binds if r != compute_bind]
    assert other["resourceNames"] == [
        d["metadata"]["name"]
        for d in docs
        if d["kind"] == "ClusterRole" and d["metadata"]["name"].endswith("-feast-token-reviewer")
    ], other
    assert not any({"escalate", "impersonate", "*"} & set(r["verbs"]) for r in operator["rules"])
    assert [r["verbs"] for r in operator["rules"] if "pods" in r["resources"]] == [["list"]]
    compute_roles = {d["metadata"]["name"] for d in docs if d["kind"] == "ClusterRole"} - {"fso-featurestore-operator"}
    assert {"featurestore-compute-kubernetes", "featurestore-compute-spark-application"} <= compute_roles
    default = _helm(helm_bin)
    assert not [d for d in default if d["metadata"]["name"].startswith("featurestore-compute-")]


def test_operator_binds_and_feast_k8s_engine_creates_its_jobs(control_plane, kube_api, helm_bin, namespace, tmp_path):
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    docs = _install_compute_roles(kube_api, helm_bin)
    # The operator, under the chart's rules (compute.enabled), applies the store's compute KSA + binding.
    [operator_role] = [
        d for d in docs if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "fso-featurestore-operator"
    ]
    core, rbac = client.CoreV1Api(kube_api), client.RbacAuthorizationV1Api(kube_api)
    op_name = f"op-{namespace}"
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "operator"}})
    rbac.create_cluster_role({"metadata": {"name": op_name}, "rules": operator_role["rules"]})
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "operator"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": op_name},
            "subjects": [{"kind": "ServiceAccount", "name": "operator", "namespace": namespace}],
        },
    )
    try:
        from kubernetes import config as kube_config

        op_api = kube_config.new_client_from_config(
            config_file=control_plane.service_account_kubeconfig(namespace, "operator", str(tmp_path / "op.kubeconfig"))
        )
        fs = _store("kubernetes-compute.yaml", namespace)
        endpoints = Endpoints(online=OnlineEndpoint("10.0.0.3", 6379), offline=planned_endpoints(fs).offline)
        objects = render(fs, endpoints, CONFIG).objects
        identity = [o for o in objects if o["metadata"]["name"] == "orders-feast-compute"]
        assert {o["kind"] for o in identity} == {"ServiceAccount", "RoleBinding"}
        _apply(op_api, identity)
        with pytest.raises(ApiException) as denied:  # bind covers the two compute roles, nothing else
            client.RbacAuthorizationV1Api(op_api).create_namespaced_role_binding(
                namespace,
                {
                    "metadata": {"name": "steal"},
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "ClusterRole",
                        "name": "cluster-admin",
                    },
                    "subjects": [{"kind": "ServiceAccount", "name": "orders-feast-compute", "namespace": namespace}],
                },
            )
        assert denied.value.status == 403
        op_api.close()
    finally:
        rbac.delete_cluster_role(op_name)

    # Feast's KubernetesComputeEngine, as the compute KSA, with the rendered job config.
    kubeconfig = control_plane.service_account_kubeconfig(
        namespace, "orders-feast-compute", str(tmp_path / "sa.kubeconfig")
    )
    out = _run_engine("k8s", uuid.uuid4().hex[:8], _job_config(objects, tmp_path), kubeconfig)
    assert out["error"] is None, out
    job = out["job"]
    pod = job["spec"]["template"]["spec"]
    assert job["metadata"]["namespace"] == namespace
    assert job["spec"]["completions"] == 2 and job["spec"]["parallelism"] == 2
    # Feast asks for completionMode Indexed (workers read JOB_COMPLETION_INDEX): Kubernetes >= 1.22
    # (IndexedJob beta); this 1.20 API server drops the field, so there the workers could not run.
    assert job["spec"]["completion_mode"] in ("Indexed", None)
    assert pod["service_account_name"] == "orders-feast", "workers run as the data KSA, without the engine's RBAC"
    assert job["spec"]["template"]["metadata"]["annotations"] == {"sidecar.istio.io/inject": "false"}
    assert job["spec"]["template"]["metadata"]["labels"]["featurestore.kubeflow.org/compute-of"] == "orders"
    assert pod["containers"][0]["resources"]["limits"] == {"cpu": "1", "memory": "2Gi"}
    batch = client.BatchV1Api(kube_api)
    assert not [j for j in batch.list_namespaced_job(namespace).items if j.metadata.deletion_timestamp is None]

    user = f"system:serviceaccount:{namespace}:orders-feast-compute"
    other = "default"
    assert can(kube_api, user, "create", "jobs", "batch", namespace)
    for verb, resource, group, ns in [
        ("create", "jobs", "batch", other),
        ("get", "secrets", "", namespace),
        ("create", "pods", "", namespace),
        ("create", "rolebindings", "rbac.authorization.k8s.io", namespace),
        ("create", "sparkapplications", "sparkoperator.k8s.io", namespace),
        ("patch", "configmaps", "", namespace),
    ]:
        assert not can(kube_api, user, verb, resource, group, ns), (verb, resource, ns)


def test_feast_spark_application_validates_against_the_crd(control_plane, kube_api, helm_bin, namespace, tmp_path):
    from kubernetes import client

    _install_compute_roles(kube_api, helm_bin)
    fs = _store("sparkapplication-compute.yaml", namespace)
    endpoints = Endpoints(online=OnlineEndpoint("10.0.0.3", 6379), offline=planned_endpoints(fs).offline)
    objects = render(fs, endpoints, CONFIG).objects
    _apply(kube_api, [o for o in objects if o["metadata"]["name"] == "sessions-feast-compute"])
    kubeconfig = control_plane.service_account_kubeconfig(
        namespace, "sessions-feast-compute", str(tmp_path / "sa.kubeconfig")
    )
    out = _run_engine("spark", uuid.uuid4().hex[:8], _job_config(objects, tmp_path), kubeconfig)
    assert out["bad"] == 422, "the CRD's schema must reject driver.cores 0 (minimum 1)"
    app = out["status"]["spec"]
    assert app["driver"]["serviceAccount"] == "sessions-feast-compute"
    assert app["image"] == "ghcr.io/example/feast-spark:0.67.0"
    assert (app["driver"]["cores"], app["driver"]["memory"]) == (1, "2g")
    assert (app["executor"]["instances"], app["executor"]["cores"], app["executor"]["memory"]) == (4, 2, "8g")
    assert app["sparkVersion"] == "4.0.1" and app["type"] == "Python"
    driver_config = yaml.safe_load(out["configmap"]["feature_store.yaml"])
    bucket = planned_endpoints(fs).offline.bucket
    assert driver_config["offline_store"]["staging_location"] == f"gs://{bucket}/staging"
    assert driver_config["batch_engine"] == {"type": "spark.engine"}
    custom = client.CustomObjectsApi(kube_api)
    assert custom.list_namespaced_custom_object(*SPARK[:2], namespace, SPARK[2])["items"] == [], "engine cleaned up"
