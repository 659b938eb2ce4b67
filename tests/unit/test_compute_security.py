"""spec.compute as a namespace editor would attack it: the Ray address, the pods the engines run,
and the config the engines copy into ConfigMaps (issue 25)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import types
import uuid
from pathlib import Path

import pytest
import yaml
from featurestore_operator.api import ConditionType as T
from featurestore_operator.api import OperatorConfig, SpecError, parse_featurestore, resolve
from featurestore_operator.backends.base import Ready
from featurestore_operator.backends.planned import planned_endpoints
from featurestore_operator.reconcile.desired import desired
from featurestore_operator.reconcile.observe import RepoRevision
from featurestore_operator.reconcile.outcomes import BackendResults
from featurestore_operator.render import (
    ApiVersions,
    Endpoints,
    OnlineEndpoint,
    RepoSource,
    SecretKey,
    compute,
    render,
)
from featurestore_operator.render.hardening import OUT_OF_MESH
from featurestore_operator.render.names import Names

from tests.support.prerequisites import need_module

CONFIG = OperatorConfig(gcp_project="my-gcp-project", gcp_region="us-central1", compute_enabled=True)


def _ray_store(address: str, namespace: str = "team-a"):
    doc = {
        "apiVersion": "featurestore.kubeflow.org/v1alpha1",
        "kind": "FeatureStore",
        "metadata": {"name": "s", "namespace": namespace, "uid": "u-1"},
        "spec": {"project": "p", "provider": "local", "compute": {"engine": "ray", "ray": {"address": address}}},
    }
    fs = parse_featurestore(doc)
    return fs.model_copy(update={"spec": resolve(fs.spec, CONFIG)})


@pytest.mark.parametrize(
    "address",
    [
        "ray-head.team-a.svc.cluster.local:6379",
        "ray-head.team-a.svc:6379",
        "ray://ray-head.team-a.svc.cluster.local:10001",
    ],
)
def test_ray_address_may_name_a_service_of_the_stores_own_namespace(address):
    assert _ray_store(address).spec.compute.ray.address == address


@pytest.mark.parametrize(
    "address",
    [
        "ray-head.kube-system.svc.cluster.local:6379",  # another namespace
        "ray-head.team-b.svc:6379",
        "ray://ray-head.team-b.svc.cluster.local:10001",
        "ray-head.team-b:6379",  # namespace without .svc (resolved through the search path)
        "10.0.0.7:6379",  # pod / node IP
        "169.254.169.254:80",  # metadata server
        "[::1]:6379",  # IPv6 literal
        "::1:6379",
        "evil.example.com:6379",  # outside the cluster
        "ray-head.team-a.svc.cluster.local.evil.com:6379",
        "user@ray-head:6379",  # userinfo
        "ray://team-a@evil.example.com:10001",
        "ray-head.team-a.svc.cluster.local:6379@evil.example.com:6379",
        "ray-head:6379",  # a bare name falls through the resolver's search path to the node's domains
        "metadata:80",  # ... e.g. metadata.google.internal on GKE
        "ray://ray-head:10001",
        "ray-head:6379/../x",
        "ray-head:0",
        "ray-head:65536",
        "ray-head:99999",
        "ray-head.team-a.svc.cluster.localx:6379",
        "http://ray-head:8265",
        "RAY-HEAD:6379",
        "ray-head:6379 ",
        "ray-head:6379\n",
        "0x0a000001:6379",
        "localhost:6379",
        "kubernetes.default.svc:443",
    ],
)
def test_ray_address_outside_the_stores_namespace_is_refused_naming_the_field(address):
    with pytest.raises(SpecError) as err:
        _ray_store(address)
    assert "spec.compute.ray.address" in str(err.value), str(err.value)


# --------------------------------------------------------------------------- every pod, fenced and hardened

ROOT = Path(__file__).resolve().parents[2]
UID = "0b5e9a52-8c1e-4a43-9b2e-5c0d7f6b1a11"
#: every optional CRD present: every optional object (RayCluster, PodDefault, ...) is rendered
ALL_KINDS = ApiVersions(
    optional_kinds=frozenset({"PodDefault", "AuthorizationPolicy", "SparkApplication", "RayCluster", "Certificate"})
)


def _load(doc: dict):
    doc["metadata"].setdefault("uid", UID)
    fs = parse_featurestore(doc)
    return fs.model_copy(update={"spec": resolve(fs.spec, CONFIG)})


def _variants():
    """Every example, plus stores that turn on what the examples leave off."""
    out = []
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        stores = [d for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") == "FeatureStore"]
        out += [pytest.param(_load(doc), id=path.stem) for doc in stores]  # operator-config.yaml holds none
    base = {"apiVersion": "featurestore.kubeflow.org/v1alpha1", "kind": "FeatureStore"}
    everything = {
        "offlineServer": {"enabled": True},
        "ui": {"enabled": True},
        "registry": {"server": {"enabled": True}},
        "featureServer": {"metrics": {"enabled": True}},
        "featureRepo": {"git": {"url": "git@example.com:org/repo.git"}},
    }
    for name, spec in {
        "local-everything": {"provider": "local", **everything},
        "kuberay-no-gsa": {"provider": "gcp", "compute": {"engine": "ray", "ray": {"kubeRay": {"workers": 1}}}},
        "local-kuberay": {"provider": "local", "compute": {"engine": "ray", "ray": {"kubeRay": {}}}},
        "secure": {"provider": "local", **everything, "authz": {"type": "kubernetes"}, "tls": {"enabled": True}},
    }.items():
        doc = {**base, "metadata": {"name": "s", "namespace": "team-a"}, "spec": {"project": "p", **spec}}
        out.append(pytest.param(_load(doc), id=name))
    return out


def pod_templates(node, path="$"):
    """Every pod template anywhere in an object (Deployment, StatefulSet, Job, CronJob, RayCluster
    groups, and any kind added later): a mapping with metadata and a spec holding containers."""
    if isinstance(node, dict):
        if isinstance(node.get("spec"), dict) and "containers" in node["spec"] and "metadata" in node:
            yield path, node
        for k, v in node.items():
            yield from pod_templates(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from pod_templates(v, f"{path}[{i}]")


def selects(selector: dict, labels: dict) -> bool:
    """A Kubernetes label selector (matchLabels, matchExpressions In/NotIn/Exists/DoesNotExist)."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        op, has = e["operator"], e["key"] in labels
        ok = {
            "In": has and labels.get(e["key"]) in e.get("values", []),
            "NotIn": not has or labels.get(e["key"]) not in e.get("values", []),
            "Exists": has,
            "DoesNotExist": not has,
        }[op]
        if not ok:
            return False
    return True


def _render_all(fs):
    config = CONFIG.model_copy(update={"istio": True})
    return render(fs, planned_endpoints(fs), config, ALL_KINDS, RepoSource("a1b2c3d4e5f60718")).objects


def _fences(objects, pod_labels):
    return [
        p
        for p in objects
        if p["kind"] == "NetworkPolicy"
        and selects(p["spec"]["podSelector"], pod_labels)
        and {"Ingress", "Egress"} <= set(p["spec"].get("policyTypes", []))
    ]


@pytest.mark.parametrize("fs", _variants())
def test_every_rendered_pod_is_fenced_both_ways_and_hardened(fs):
    objects = _render_all(fs)
    templates = [(o, path, t) for o in objects for path, t in pod_templates(o)]
    assert templates, "no pod rendered"
    for obj, path, template in templates:
        what = f"{obj['kind']} {obj['metadata']['name']} {path}"
        labels = template["metadata"].get("labels") or {}
        assert _fences(objects, labels), f"{what}: no NetworkPolicy with Ingress and Egress selects it"
        pod = template["spec"]
        sec = pod.get("securityContext") or {}
        assert sec.get("runAsNonRoot") is True, what
        assert (sec.get("seccompProfile") or {}).get("type") == "RuntimeDefault", what
        for c in [*pod.get("initContainers", []), *pod["containers"]]:
            csec = c.get("securityContext") or {}
            assert csec.get("allowPrivilegeEscalation") is False, f"{what}/{c['name']}"
            assert (csec.get("capabilities") or {}).get("drop") == ["ALL"], f"{what}/{c['name']}"
            assert csec.get("readOnlyRootFilesystem") is True, f"{what}/{c['name']}"
            assert not csec.get("privileged"), f"{what}/{c['name']}"
        for vol in pod.get("volumes", []):
            if "emptyDir" in vol:
                assert vol["emptyDir"].get("sizeLimit"), f"{what}: emptyDir {vol['name']} unbounded"
        # in the mesh like the servers, unless the component's opt-out is justified (render/hardening.py)
        if (template["metadata"].get("annotations") or {}).get("sidecar.istio.io/inject") == "false":
            assert labels.get("app.kubernetes.io/component") in OUT_OF_MESH, f"{what}: unjustified sidecar opt-out"
        # the token only for Workload Identity, or a server reviewing its callers' tokens
        server_with_k8s_auth = obj["kind"] == "Deployment" and fs.spec.authz.type.value == "kubernetes"
        wants_token = server_with_k8s_auth or bool(fs.spec.gcp.service_account)
        assert pod.get("automountServiceAccountToken") is wants_token, what


@pytest.mark.parametrize("fs", _variants())
def test_pods_feasts_engines_create_are_fenced_too(fs):
    """The k8s engine's Jobs and the SparkApplication's driver/executors are built by Feast from the
    job config: the labels it gives them must put them under the store's fence."""
    objects = _render_all(fs)
    [cm] = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-feast-config")]
    job = yaml.safe_load(cm["data"].get(compute.JOB_CONFIG_KEY) or "{}")
    engine = job.get("batch_engine") or {}
    pod_labels = []
    if engine.get("type") == "k8s":
        pod_labels.append({"feast-materializer": "pod", **engine["labels"]})  # k8s_engine._create_job_definition
    if engine.get("type") == "spark_application":
        for role in ("driver", "executor"):  # Spark's spark.kubernetes.<role>.label.<key> conf
            prefix = f"spark.kubernetes.{role}.label."
            conf = engine.get("spark_conf") or {}
            pod_labels.append({k[len(prefix) :]: v for k, v in conf.items() if k.startswith(prefix)})
    for labels in pod_labels:
        assert _fences(objects, labels), f"{engine['type']} pods {labels} are not fenced"


@pytest.mark.parametrize("fs", [v for v in _variants() if "ray" in v.id or "kuberay" in v.id])
def test_ray_head_admits_only_the_stores_own_pods_and_requires_a_token(fs):
    objects = _render_all(fs)
    clusters = [o for o in objects if o["kind"] == "RayCluster"]
    for rc in clusters:
        assert rc["spec"]["authOptions"] == {"mode": "token"}
        head = rc["spec"]["headGroupSpec"]["template"]["metadata"]["labels"]
        fences = _fences(objects, head)
        peers = [peer for f in fences for rule in f["spec"].get("ingress", []) for peer in rule.get("from", [])]
        assert peers, "the head admits nobody at all?"
        for peer in peers:
            assert set(peer) == {"podSelector"}, f"{peer}: another namespace or an IP block reaches the Ray head"
            other_store = {**head, "app.kubernetes.io/instance": "other", "featurestore.kubeflow.org/name": "other"}
            assert not selects(peer["podSelector"], other_store)
            assert not selects(peer["podSelector"], {"app": "notebook"})
    if fs.spec.compute.ray and fs.spec.compute.ray.kube_ray:
        assert clusters


def _admits(objects, pod_labels, caller, port):
    """Whether the NetworkPolicies selecting ``pod_labels`` admit a same-namespace pod ``caller`` on ``port``
    (a pod selected by none is open; a rule without ports admits every port)."""
    fences = [p for p in objects if p["kind"] == "NetworkPolicy" and selects(p["spec"]["podSelector"], pod_labels)]
    if not fences:
        return True
    return any(
        any("podSelector" in peer and selects(peer["podSelector"], caller) for peer in rule.get("from", []))
        and (not rule.get("ports") or any(p["port"] == port for p in rule["ports"]))
        for f in fences
        for rule in f["spec"].get("ingress", [])
    )


@pytest.mark.parametrize("fs", [v for v in _variants() if "kuberay" in v.id or v.id == "ray-compute"])
def test_only_the_materialization_pod_reaches_the_ray_jobs_api_and_nothing_else_of_ray(fs):
    """kubeRay: the CronJob pod submits each run to the head's Jobs API (8265); no other store pod
    reaches any Ray port, and the materialization pod none but 8265 (GCS 6379, client 10001, ...)."""
    objects = _render_all(fs)
    [rc] = [o for o in objects if o["kind"] == "RayCluster"]
    head = rc["spec"]["headGroupSpec"]["template"]["metadata"]["labels"]
    worker = rc["spec"]["workerGroupSpecs"][0]["template"]["metadata"]["labels"]
    [cron] = [o for o in objects if o["kind"] == "CronJob"]
    materialize = cron["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    assert _admits(objects, head, materialize, 8265)
    for port in (6379, 10001, 8080, 52365):
        assert not _admits(objects, head, materialize, port), port
    servers = [
        t["metadata"]["labels"]
        for o in objects
        if o["kind"] in ("Deployment", "StatefulSet", "Job")
        for _, t in pod_templates(o)
    ]
    assert servers
    for labels in servers:
        for port in (8265, 6379, 10001):
            assert not _admits(objects, head, labels, port), (labels, port)
            assert not _admits(objects, worker, labels, port), (labels, port)
    assert _admits(objects, head, worker, 6379) and _admits(objects, worker, head, 12345), "Ray nodes reach each other"
    redis = [t["metadata"]["labels"] for o in objects if o["kind"] == "StatefulSet" for _, t in pod_templates(o)]
    for labels in redis:  # the job's driver and workers write the rows
        assert _admits(objects, labels, worker, 6379) and _admits(objects, labels, head, 6379)


def test_ray_versions_without_token_authentication_are_refused():
    doc = {
        "apiVersion": "featurestore.kubeflow.org/v1alpha1",
        "kind": "FeatureStore",
        "metadata": {"name": "s", "namespace": "team-a"},
        "spec": {"project": "p", "compute": {"engine": "ray", "ray": {"kubeRay": {"rayVersion": "2.51.9"}}}},
    }
    with pytest.raises(SpecError) as err:
        _load(doc)
    assert "spec.compute.ray.kubeRay.rayVersion" in str(err.value) and "token" in str(err.value)


# --------------------------------------------------------------------------- no secret in any ConfigMap

#: a Redis AUTH string the backend hands over (never known to render)
AUTH = "auth-" + uuid.uuid4().hex


def _engine_config_maps(job_text: str, env: dict[str, str]) -> list[dict]:
    """The ConfigMaps Feast 0.67's engine writes when the materialization pod runs ``job_text`` with
    ``env``: Feast's own code (feast/repo_config.py loads the file through os.path.expandvars; the
    engines dump the loaded RepoConfig: k8s_engine._create_configuration_map,
    spark_application.compute._create_configmap), with a client that records the ConfigMap."""
    need_module("feast")
    from feast.repo_config import RepoConfig

    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        raw = yaml.safe_load(os.path.expandvars(job_text))  # exactly what load_repo_config does
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    written: list[dict] = []
    recorder = types.SimpleNamespace(create_namespaced_config_map=lambda namespace, body: written.append(body))
    fv = types.SimpleNamespace(name="driver_hourly_stats")
    kind = raw["batch_engine"]["type"]
    if kind == "k8s":
        from feast.infra.compute_engines.kubernetes.k8s_engine import KubernetesComputeEngine as K8s

        config = RepoConfig(**raw)
        engine = types.SimpleNamespace(repo_config=config, batch_engine_config=config.batch_engine, v1=recorder)
        engine._configmap_name = lambda job_id: f"feast-{job_id}"
        K8s._create_configuration_map(engine, "j1", ["gs://b/staging/p-0.parquet"], fv, config.batch_engine.namespace)
    elif kind == "spark_application":
        from feast.infra.compute_engines.spark_application.compute import SparkApplicationComputeEngine as Spark

        offline = raw["offline_store"]  # the spark offline store imports pyspark: build with a stand-in
        config = RepoConfig(**{**raw, "offline_store": {"type": "bigquery"}})
        engine = types.SimpleNamespace(repo_config=config, config=config.batch_engine, core_v1=recorder)
        engine._build_driver_repo_config = lambda: {**Spark._build_driver_repo_config(engine), "offline_store": offline}
        now = dt.datetime.now(dt.UTC)
        task = types.SimpleNamespace(feature_view=fv, start_time=now - dt.timedelta(hours=1), end_time=now)
        Spark._create_configmap(engine, "j1", [task])
    return written


def _materialization_env(objects: list[dict], secrets: dict[str, dict[str, str]]) -> tuple[str | None, dict]:
    """(config file, env) of the materialization container: its Secret-backed env resolved."""
    for obj in objects:
        if obj["kind"] != "CronJob":
            continue
        [c] = obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        env = {}
        for e in c.get("env", []):
            ref = (e.get("valueFrom") or {}).get("secretKeyRef")
            env[e["name"]] = secrets.get(ref["name"], {}).get(ref["key"], "") if ref else e.get("value", "")
        return env.get("FEAST_FS_YAML_FILE_PATH"), env
    return None, {}


@pytest.mark.parametrize("fs", _variants())
def test_no_configmap_the_operator_or_an_engine_writes_carries_the_redis_auth(fs):
    planned = planned_endpoints(fs)
    online = dataclasses.replace(planned.online, password=SecretKey(Names(fs).online_secret, "password"))
    backends = BackendResults(
        {T.ONLINE_STORE: Ready(online, secret={"password": AUTH}), T.OFFLINE_STORE: Ready(planned.offline)},
        fs.status,
    )
    want = desired(fs, backends, RepoRevision("a1b2c3d4e5f60718"), CONFIG, ALL_KINDS, fs.status)
    config_maps = [o for o in want.objects if o["kind"] == "ConfigMap"]
    assert any(o["kind"] == "Secret" and o["metadata"]["name"] == Names(fs).online_secret for o in want.objects)
    path, env = _materialization_env(want.objects, {Names(fs).online_secret: {"password": AUTH}})
    if path and path.endswith(compute.JOB_CONFIG_KEY):  # the run uses an engine: what would it write?
        [own] = [o for o in config_maps if compute.JOB_CONFIG_KEY in o["data"]]
        config_maps += _engine_config_maps(own["data"][compute.JOB_CONFIG_KEY], env)
    for cm in config_maps:
        assert AUTH not in json.dumps(cm), f"ConfigMap {cm['metadata']['name']} holds the Redis AUTH string"


@pytest.mark.parametrize("example", ["kubernetes-compute", "sparkapplication-compute"])
def test_an_engine_that_would_copy_the_auth_into_a_configmap_does_not_run_and_says_why(example):
    fs = _load(yaml.safe_load((ROOT / "examples" / f"{example}.yaml").read_text()))
    endpoints = planned_endpoints(fs)
    assert endpoints.online.password is not None, "Memorystore with AUTH (the default)"
    objects = render(fs, endpoints, CONFIG, ALL_KINDS, RepoSource("a1b2c3d4e5f60718")).objects
    assert not [o for o in objects if o["kind"] == "CronJob"], "fail closed: no materialization runs the engine"
    msg = compute.problem(fs, endpoints, ALL_KINDS, "0.68.0", True)
    assert msg and "ConfigMap" in msg and "${REDIS_PASSWORD}" in msg and "AUTH" in msg, msg
    # without AUTH the same engine runs (nothing secret to copy)
    plain = Endpoints(online=OnlineEndpoint(endpoints.online.host, endpoints.online.port), offline=endpoints.offline)
    objects = render(fs, plain, CONFIG, ALL_KINDS, RepoSource("a1b2c3d4e5f60718")).objects
    assert [o for o in objects if o["kind"] == "CronJob"]


@pytest.mark.parametrize(
    "url, port",
    [
        ("https://github.com/org/repo.git", 443),
        ("https://git.example.com:8443/org/repo.git", 8443),
        ("ssh://git@git.example.com:2222/org/repo.git", 2222),
        ("git@github.com:org/repo.git", 22),
        ("https://user:pa55@git.example.com/org/repo.git", 443),
    ],
)
def test_store_egress_admits_the_feature_repos_git_port_and_no_wildcard(url, port):
    doc = {
        "apiVersion": "featurestore.kubeflow.org/v1alpha1",
        "kind": "FeatureStore",
        "metadata": {"name": "s", "namespace": "team-a"},
        "spec": {"project": "p", "provider": "local", "featureRepo": {"git": {"url": url}}},
    }
    objects = _render_all(_load(doc))
    [fence] = [o for o in objects if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "s-feast-pods"]
    egress = fence["spec"]["egress"]
    assert all(rule.get("to") or rule.get("ports") for rule in egress), "an empty egress rule allows everything"
    open_ports = {p["port"] for rule in egress if not rule.get("to") for p in rule["ports"]}
    assert port in open_ports
    assert open_ports <= {53, 443, 6443, 15012, 22, 6379, port}, open_ports
