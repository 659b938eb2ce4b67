"""spec.compute as a namespace editor would attack it: the Ray address, the pods the engines run,
and the config the engines copy into ConfigMaps (issue 25)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from featurestore_operator.api import OperatorConfig, SpecError, parse_featurestore, resolve
from featurestore_operator.backends.planned import planned_endpoints
from featurestore_operator.render import ApiVersions, RepoSource, compute, render

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
        out.append(pytest.param(_load(yaml.safe_load(path.read_text())), id=path.stem))
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
