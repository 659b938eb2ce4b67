"""The operator against a real kube-apiserver + controller-manager: create, status, drift, update,
deletion, restart, invalid references. Provider local (in-cluster stores: no cloud needed)."""

from __future__ import annotations

import subprocess

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.support.labeled import labeled
from tests.support.waiting import wait_for

G, V, P = "featurestore.kubeflow.org", "v1alpha1", "featurestores"
OWNER_LABEL = "featurestore.kubeflow.org/name"


def fs_manifest(name: str, **spec) -> dict:
    return {"apiVersion": f"{G}/{V}", "kind": "FeatureStore", "metadata": {"name": name},
            "spec": {"project": "demo", **spec}}


@pytest.fixture
def crd_api(kube_api):
    return client.CustomObjectsApi(kube_api)


def get_fs(crd_api, ns, name):
    return crd_api.get_namespaced_custom_object(G, V, ns, P, name)


def condition(fs, type_):
    return next((c for c in (fs.get("status") or {}).get("conditions", []) if c["type"] == type_), None)


def children(kube_api, ns, name):
    kinds = ["ConfigMap", "Service", "ServiceAccount", "Secret", "PersistentVolumeClaim", "Deployment", "StatefulSet", "Job"]
    return {(kind, item.metadata.name): item for kind, item in labeled(kube_api, ns, f"{OWNER_LABEL}={name}", kinds)}


def _api_calls(operator, resource: str) -> float:
    """The operator's own count of Kubernetes API requests for ``resource`` (all verbs)."""
    from prometheus_client.parser import text_string_to_metric_families

    return sum(s.value for f in text_string_to_metric_families(operator.metrics()) for s in f.samples
               if s.name == "featurestore_kube_api_calls_total" and s.labels.get("resource") == resource)


def make_ready(kubelet, ns, name):
    """Run the store's pods the way a kubelet would, so the real controllers report them ready."""
    return kubelet.run(ns, f"{OWNER_LABEL}={name},app.kubernetes.io/component!=feature-repo")


def test_create_reaches_ready_with_owned_objects(operator, kube_api, crd_api, kubelet, namespace, kubectl_bin):
    crd_api.create_namespaced_custom_object(G, V, namespace, P, fs_manifest("demo"))
    expected = {("ConfigMap", "demo-feast-config"), ("ConfigMap", "demo-feast-client"), ("ServiceAccount", "demo-feast"),
                ("Service", "demo-feature-server"), ("StatefulSet", "demo-redis"), ("Service", "demo-redis"),
                ("Secret", "demo-online-store"), ("PersistentVolumeClaim", "demo-feast-data"),
                ("Deployment", "demo-registry-server")}
    objs = wait_for(lambda: (c := children(kube_api, namespace, "demo")) and expected <= set(c) and c,
                    timeout=60, what="owned objects")
    fs = get_fs(crd_api, namespace, "demo")
    for (kind, obj_name), obj in objs.items():
        if kind == "Secret" and obj.type and obj.type.startswith("kubernetes.io/service-account"):
            continue
        refs = obj.metadata.owner_references or []
        assert refs and refs[0].uid == fs["metadata"]["uid"] and refs[0].controller, f"{kind}/{obj_name} not owned"
        assert obj.metadata.labels["app.kubernetes.io/managed-by"] == "featurestore-operator"
    secret = objs[("Secret", "demo-online-store")]
    assert len(secret.data["password"]) > 20
    cm = objs[("ConfigMap", "demo-feast-config")].data["feature_store.yaml"]
    assert "password=${REDIS_PASSWORD}" in cm and "demo-redis." in cm

    # Not ready until the pods are: status names what it waits for.
    fs = wait_for(lambda: (f := get_fs(crd_api, namespace, "demo")).get("status", {}).get("phase") and f, what="status")
    assert condition(fs, "Ready")["status"] == "False"
    assert fs["status"]["observedGeneration"] == fs["metadata"]["generation"]

    wait_for(lambda: make_ready(kubelet, namespace, "demo") >= 0 and
             get_fs(crd_api, namespace, "demo")["status"].get("phase") == "Ready", timeout=60, interval=1, what="Ready")
    fs = get_fs(crd_api, namespace, "demo")
    # the FeatureStore carries only what its user wrote: no kopf diff-base annotation
    assert not [a for a in fs["metadata"].get("annotations") or {} if "last-handled-configuration" in a]
    for part in ("OnlineStore", "OfflineStore", "Registry", "FeatureServer", "Materialization", "FeatureRepo"):
        assert condition(fs, part)["status"] == "True", condition(fs, part)
    assert fs["status"]["endpoints"]["featureServer"] == f"http://demo-feature-server.{namespace}.svc.cluster.local:6566"
    out = subprocess.run([kubectl_bin, "wait", "--for=condition=Ready", f"featurestore/demo", "-n", namespace, "--timeout=20s"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    out = subprocess.run([kubectl_bin, "get", "fs", "-n", namespace, "-o", "wide"], capture_output=True, text=True)
    assert "Ready" in out.stdout and "demo-feature-server" in out.stdout  # Server: a -o wide column
    assert "finalizer" not in str(fs["metadata"].get("finalizers")), "no cloud resources: no finalizer"


def test_cronjob_uses_served_version_and_events_are_posted(operator, kube_api, crd_api, kubelet, namespace, control_plane):
    crd_api.create_namespaced_custom_object(G, V, namespace, P, fs_manifest("cron", featureServer={"podDisruptionBudget": {"enabled": True}, "autoscaling": {"minReplicas": 1, "maxReplicas": 3}}))
    minor = control_plane.minor
    cron_version = "v1beta1" if minor < 21 else "v1"
    wait_for(lambda: client.CustomObjectsApi(kube_api).get_namespaced_custom_object("batch", cron_version, namespace, "cronjobs", "cron-materialize"),
             timeout=30, what=f"CronJob batch/{cron_version}")
    pdb_version = "v1beta1" if minor < 21 else "v1"
    wait_for(lambda: client.CustomObjectsApi(kube_api).get_namespaced_custom_object("policy", pdb_version, namespace, "poddisruptionbudgets", "cron-feature-server"),
             what="PDB")
    hpa_version = "v2beta2" if minor < 23 else "v2"
    hpa = client.CustomObjectsApi(kube_api).get_namespaced_custom_object("autoscaling", hpa_version, namespace, "horizontalpodautoscalers", "cron-feature-server")
    assert hpa["spec"]["maxReplicas"] == 3
    dep = client.AppsV1Api(kube_api).read_namespaced_deployment("cron-feature-server", namespace)
    managers = {m.manager for m in dep.metadata.managed_fields}
    assert "featurestore-operator" in managers
    # A creation that goes well posts one Event, Ready; no Warning for the steps on the way.
    def ready_events():
        make_ready(kubelet, namespace, "cron")
        return [e for e in client.CoreV1Api(kube_api).list_namespaced_event(
            namespace, field_selector="involvedObject.name=cron,involvedObject.kind=FeatureStore").items if e.reason == "Ready"]

    (ready,) = wait_for(ready_events, timeout=60, interval=1, what="a Ready Event")
    assert ready.type == "Normal"
    events = client.CoreV1Api(kube_api).list_namespaced_event(
        namespace, field_selector="involvedObject.name=cron,involvedObject.kind=FeatureStore").items
    assert [(e.type, e.reason) for e in events] == [("Normal", "Ready")]


def test_drift_restored_and_resync_writes_nothing(operator, kube_api, crd_api, kubelet, namespace):
    crd_api.create_namespaced_custom_object(G, V, namespace, P, fs_manifest("drift"))
    wait_for(lambda: make_ready(kubelet, namespace, "drift") >= 0 and
             get_fs(crd_api, namespace, "drift").get("status", {}).get("phase") == "Ready", timeout=60, interval=1, what="Ready")
    apps, core = client.AppsV1Api(kube_api), client.CoreV1Api(kube_api)

    # Steady state: a full resync period (10 s) later nothing has been written.
    import time

    before = {k: o.metadata.resource_version for k, o in children(kube_api, namespace, "drift").items()}
    fs_rv = get_fs(crd_api, namespace, "drift")["metadata"]["resourceVersion"]
    time.sleep(13)
    after = {k: o.metadata.resource_version for k, o in children(kube_api, namespace, "drift").items()}
    assert before == after, "resync wrote to owned objects"
    assert get_fs(crd_api, namespace, "drift")["metadata"]["resourceVersion"] == fs_rv, "resync rewrote the FeatureStore"

    # Hand edit of an owned field is reverted.
    apps.patch_namespaced_deployment("drift-feature-server", namespace, {"spec": {"replicas": 5}})
    wait_for(lambda: apps.read_namespaced_deployment("drift-feature-server", namespace).spec.replicas == 1,
             timeout=20, what="replicas restored")
    # Kinds without a generation: a hand edit of a value we set (ConfigMap data, a Service's
    # label) is reverted as well. (Not the in-cluster Redis password: its Secret is where it lives.)
    cm = core.read_namespaced_config_map("drift-feast-client", namespace)
    original = cm.data["feature_store.yaml"]
    core.patch_namespaced_config_map("drift-feast-client", namespace, {"data": {"feature_store.yaml": "project: hijacked\n"}})
    wait_for(lambda: core.read_namespaced_config_map("drift-feast-client", namespace).data["feature_store.yaml"] == original,
             timeout=20, what="ConfigMap data restored")
    part_of = "app.kubernetes.io/part-of"
    want = core.read_namespaced_service("drift-feature-server", namespace).metadata.labels[part_of]
    core.patch_namespaced_service("drift-feature-server", namespace, {"metadata": {"labels": {part_of: "someone"}}})
    wait_for(lambda: core.read_namespaced_service("drift-feature-server", namespace).metadata.labels[part_of] == want,
             timeout=20, what="Service label restored")
    # ...while writes to fields we do not set are left alone and cost no request of ours: another
    # tool's label on the ServiceAccount (like the token controller adding `secrets` to it).
    sa_calls = _api_calls(operator, "serviceaccounts")
    core.patch_namespaced_service_account("drift-feast", namespace, {"metadata": {"labels": {"team": "a"}}})
    time.sleep(12)  # a full resync period
    assert core.read_namespaced_service_account("drift-feast", namespace).metadata.labels["team"] == "a"
    assert _api_calls(operator, "serviceaccounts") == sa_calls, "re-applied a ServiceAccount nobody changed our fields of"
    # A deleted owned object is recreated.
    core.delete_namespaced_config_map("drift-feast-client", namespace)
    wait_for(lambda: core.read_namespaced_config_map("drift-feast-client", namespace), timeout=20, what="ConfigMap recreated")


def test_update_rolls_config_hash_and_prunes(operator, kube_api, crd_api, namespace):
    crd_api.create_namespaced_custom_object(G, V, namespace, P, fs_manifest("upd", ui={"enabled": True}))
    apps = client.AppsV1Api(kube_api)
    dep = wait_for(lambda: apps.read_namespaced_deployment("upd-feature-server", namespace), what="Deployment")
    wait_for(lambda: apps.read_namespaced_deployment("upd-ui", namespace), what="UI Deployment")
    old = dep.spec.template.metadata.annotations["featurestore.kubeflow.org/config-hash"]
    crd_api.patch_namespaced_custom_object(G, V, namespace, P, "upd", {"spec": {"registry": {"cacheTtlSeconds": 5}, "ui": {"enabled": False}}})
    wait_for(lambda: apps.read_namespaced_deployment("upd-feature-server", namespace).spec.template.metadata.annotations[
        "featurestore.kubeflow.org/config-hash"] != old, timeout=20, what="config hash rolled")
    cm = client.CoreV1Api(kube_api).read_namespaced_config_map("upd-feast-config", namespace)
    assert "cache_ttl_seconds: 5" in cm.data["feature_store.yaml"]

    def ui_gone():
        try:
            apps.read_namespaced_deployment("upd-ui", namespace)
            return False
        except ApiException as err:
            return err.status == 404

    wait_for(ui_gone, timeout=20, what="UI Deployment pruned")


def test_invalid_references_surface_as_conditions(operator, crd_api, namespace):
    crd_api.create_namespaced_custom_object(G, V, namespace, P, fs_manifest(
        "refs", onlineStore={"external": {"secretRef": {"name": "nope"}}}, featureRepo={"configMap": {"name": "missing-repo"}}))
    fs = wait_for(lambda: (f := get_fs(crd_api, namespace, "refs")) and condition(f, "OnlineStore") and f, what="conditions")
    online = condition(fs, "OnlineStore")
    assert online["status"] == "False" and "spec.onlineStore.external.secretRef.name" in online["message"]
    # an accepted-by-schema but invalid schedule: the Spec condition names the field
    crd_api.create_namespaced_custom_object(G, V, namespace, P, fs_manifest("badcron", materialization={"schedule": "every day"}))
    fs = wait_for(lambda: (f := get_fs(crd_api, namespace, "badcron")) and condition(f, "Spec") and f, what="Spec condition")
    assert fs["status"]["phase"] == "Failed"
    assert "spec.materialization.schedule" in condition(fs, "Spec")["message"]


def test_schema_rejects_out_of_range(crd_api, namespace, featurestore_crd):
    with pytest.raises(ApiException) as info:
        crd_api.create_namespaced_custom_object(G, V, namespace, P, fs_manifest(
            "bad", onlineStore={"memorystore": {"memorySizeGb": 999}}))
    assert info.value.status == 422 and "memorySizeGb" in info.value.body


def test_deletion_garbage_collects_children(operator, kube_api, crd_api, namespace):
    crd_api.create_namespaced_custom_object(G, V, namespace, P, fs_manifest("gone"))
    wait_for(lambda: ("Deployment", "gone-feature-server") in children(kube_api, namespace, "gone"), what="children")
    crd_api.delete_namespaced_custom_object(G, V, namespace, P, "gone")
    wait_for(lambda: not [k for k in children(kube_api, namespace, "gone")
                          if k[0] != "Secret" or k[1] == "gone-online-store"],  # SA token Secrets go with their SA
             timeout=60, interval=0.5, what="children garbage-collected")


def test_restart_mid_way_converges_without_duplicates(control_plane, featurestore_crd, kube_api, crd_api, kubelet, namespace):
    from tests.support.operator_process import OperatorProcess

    first = OperatorProcess(control_plane.kubeconfig, env={"FSO_RESYNC_SECONDS": "10"}).start()
    try:
        for i in range(5):
            crd_api.create_namespaced_custom_object(G, V, namespace, P, fs_manifest(f"r{i}"))
        wait_for(lambda: ("ConfigMap", "r0-feast-config") in children(kube_api, namespace, "r0"), what="first objects")
        first.kill()
        second = OperatorProcess(control_plane.kubeconfig, env={"FSO_RESYNC_SECONDS": "10"}).start()
        try:
            def all_ready():
                for i in range(5):
                    make_ready(kubelet, namespace, f"r{i}")
                return all(get_fs(crd_api, namespace, f"r{i}").get("status", {}).get("phase") == "Ready" for i in range(5))

            wait_for(all_ready, timeout=90, interval=1, what="all stores Ready after restart")
            for i in range(5):
                secrets = [k for k in children(kube_api, namespace, f"r{i}") if k == ("Secret", f"r{i}-online-store")]
                assert len(secrets) == 1
            deps = client.AppsV1Api(kube_api).list_namespaced_deployment(namespace).items
            assert len(deps) == len({d.metadata.name for d in deps}) == 10  # feature + registry server each
        finally:
            second.stop()
    finally:
        first.stop()
