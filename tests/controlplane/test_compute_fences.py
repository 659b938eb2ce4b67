"""Fences on the real API server (Kubernetes 1.20):

* a NetworkPolicy the API server refuses holds back every workload it fences: they are not created
  (nor changed) in that pass, the failure list names why, and once the policy goes in they follow;
* the policies select the store's own namespace on 1.20, which sets no ``kubernetes.io/metadata.name``
  label on namespaces, and other namespaces only by that label (which 1.21+ sets itself).
"""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path

import yaml
from featurestore_operator.api import OperatorConfig, parse_featurestore, resolve
from featurestore_operator.backends.planned import planned_endpoints
from featurestore_operator.reconcile.applier import Applier
from featurestore_operator.reconcile.fences import fences, pod_labels, selects
from featurestore_operator.render import RepoSource, render
from featurestore_operator.runtime.cache import ObservedCache
from featurestore_operator.runtime.kube import Kube
from kubernetes import client

from tests.support.versions import V120

ROOT = Path(__file__).resolve().parents[2]
CONFIG = OperatorConfig(gcp_project="my-gcp-project", gcp_region="us-central1")
WORKLOADS = {"Deployment": "deployments", "StatefulSet": "statefulsets", "CronJob": "cronjobs", "Job": "jobs"}


def _objects(namespace: str, **spec) -> list[dict]:
    doc = yaml.safe_load((ROOT / "examples" / "local.yaml").read_text())
    doc["metadata"].update(namespace=namespace, uid="0b5e9a52-8c1e-4a43-9b2e-5c0d7f6b1a11")
    doc["spec"].update(spec)
    fs = parse_featurestore(doc)
    fs = fs.model_copy(update={"spec": resolve(fs.spec, CONFIG)})
    objects = render(fs, planned_endpoints(fs), CONFIG, V120, RepoSource("a1b2c3d4e5f60718")).objects
    # no ownerReference: the store they were rendered for does not exist (the garbage collector would
    # delete them); no optional CRD kinds: this API server has none of them
    out = []
    for o in objects:
        if o["apiVersion"].startswith(("kubeflow.org", "security.istio.io", "cert-manager.io")):
            continue
        o = copy.deepcopy(o)
        o["metadata"].pop("ownerReferences", None)
        out.append(o)
    return out


def _existing(kube_api, namespace: str) -> set[tuple[str, str]]:
    apps, batch, custom = client.AppsV1Api(kube_api), client.BatchV1Api(kube_api), client.CustomObjectsApi(kube_api)
    found = {("Deployment", d.metadata.name) for d in apps.list_namespaced_deployment(namespace).items}
    found |= {("StatefulSet", s.metadata.name) for s in apps.list_namespaced_stateful_set(namespace).items}
    found |= {("Job", j.metadata.name) for j in batch.list_namespaced_job(namespace).items}
    cronjobs = custom.list_namespaced_custom_object("batch", "v1beta1", namespace, "cronjobs")["items"]
    found |= {("CronJob", c["metadata"]["name"]) for c in cronjobs}
    return found


def test_a_refused_network_policy_holds_back_the_workloads_it_fences(control_plane, kube_api, namespace, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", control_plane.kubeconfig)
    objects = _objects(namespace)
    workloads = {(o["kind"], o["metadata"]["name"]) for o in objects if o["kind"] in WORKLOADS}
    assert workloads >= {("Deployment", "demo-feature-server"), ("CronJob", "demo-materialize")}, workloads
    broken = copy.deepcopy(objects)
    [fence] = [o for o in broken if o["kind"] == "NetworkPolicy" and o["metadata"]["name"].endswith("-feast-pods")]
    fence["spec"]["ingress"][0]["ports"] = [{"port": "-not a port name-", "protocol": "TCP"}]  # the API server: 422

    async def run() -> tuple[list, list, set]:
        kube = Kube.from_environment()  # one client: lightkube registers its resource classes once
        try:
            applier = Applier(kube, ObservedCache(), retry_refused=0)
            first = await applier.apply_all(broken)
            between = await asyncio.to_thread(_existing, kube_api, namespace)
            # the policy accepted: the workloads follow in the same pass
            return first, await applier.apply_all(objects), between
        finally:
            await kube.client.close()

    failures, second, between = asyncio.run(run())
    refused = [f for f in failures if f.error is not None]
    assert [(f.key[0], f.key[2]) for f in refused] == [("NetworkPolicy", fence["metadata"]["name"])], failures
    assert refused[0].error.status == 422
    held = {(f.key[0], f.key[2]) for f in failures if f.held_by is not None}
    assert held == workloads, "every workload the refused policy fences is held back, and only those"
    assert all(f.held_by == ("NetworkPolicy", namespace, fence["metadata"]["name"]) for f in failures if f.held_by)
    assert "held back" in failures[-1].describe() and fence["metadata"]["name"] in failures[-1].describe()
    assert not between & workloads, "a workload was created without its fence"
    # what the policy does not fence went in (config, identity, Services)
    assert client.CoreV1Api(kube_api).read_namespaced_config_map("demo-feast-config", namespace)
    assert second == []
    assert _existing(kube_api, namespace) >= workloads


def test_every_rendered_workload_is_fenced_by_a_policy_the_applier_recognises():
    """The applier's fence check agrees with the rendered policies: each pod is under the store fence."""
    objects = _objects("team-a", offlineServer={"enabled": True}, ui={"enabled": True})
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    for obj in (o for o in objects if list(pod_labels(o))):
        assert any(fences(p, obj) for p in policies), obj["metadata"]["name"]


def test_policies_select_the_intended_namespaces_on_kubernetes_1_20(kube_api, make_namespace):
    core = client.CoreV1Api(kube_api)
    own, caller, stranger = make_namespace("own"), make_namespace("kserve"), make_namespace("stranger")
    labels = {ns: core.read_namespace(ns).metadata.labels or {} for ns in (own, caller, stranger)}
    version = client.VersionApi(kube_api).get_code()
    objects = _objects(own, kubeflow={"allowedNamespaces": [caller]})
    net = client.NetworkingV1Api(kube_api)
    for policy in (o for o in objects if o["kind"] == "NetworkPolicy"):  # the 1.20 API server takes them
        net.create_namespaced_network_policy(own, policy)
    [server] = [o for o in objects if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "demo-feature-server"]
    peers = [p for rule in server["spec"]["ingress"] for p in rule["from"]]

    def admits(ns: str) -> bool:
        """Whether a plain pod of ``ns`` is among the peers (NetworkPolicy peer semantics)."""
        pod = {"app": "notebook"}
        for peer in peers:
            ns_sel, pod_sel = peer.get("namespaceSelector"), peer.get("podSelector")
            same_ns_only = ns_sel is None
            if same_ns_only and ns != own:
                continue
            if ns_sel is not None and not selects(ns_sel, labels[ns]):
                continue
            if pod_sel is not None and not selects(pod_sel, pod):
                continue
            return True
        return False

    if version.minor.rstrip("+") == "20":
        assert "kubernetes.io/metadata.name" not in labels[own], "1.20 sets no namespace name label"
    assert admits(own), "the store's own namespace must reach its feature server on every version"
    assert not admits(stranger)
    # an allowed namespace is matched by its name label: set by Kubernetes >= 1.21, by the admin on 1.20
    if "kubernetes.io/metadata.name" not in labels[caller]:
        assert not admits(caller)
        core.patch_namespace(caller, {"metadata": {"labels": {"kubernetes.io/metadata.name": caller}}})
        labels[caller] = core.read_namespace(caller).metadata.labels
    assert admits(caller) and not admits(stranger)
