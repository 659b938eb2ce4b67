"""The operator against a real kube-apiserver + controller-manager: create, status, drift, update,
deletion, restart, invalid references. Provider local (in-cluster stores: no cloud needed)."""

from __future__ import annotations

import re
import subprocess

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.support.kube import OWNER_LABEL, G, P, V, as_profile_namespace, condition, fs_manifest, get_fs, gone
from tests.support.labeled import labeled
from tests.support.operator_process import OperatorProcess
from tests.support.waiting import wait_for
from tests.support.watching import ObjectHistory

#: a ReconcileError Event that a loaded API server can cause without any fault of the operator:
#: an optimistic-concurrency conflict or a timeout answered by kube-apiserver/etcd
TRANSIENT_API_ERROR = re.compile(r"^Kubernetes API (409|429|500|504): ")


@pytest.fixture
def crd_api(kube_api):
    return client.CustomObjectsApi(kube_api)


CHILD_KINDS = [
    "ConfigMap",
    "Service",
    "ServiceAccount",
    "Secret",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "Job",
]


def children(kube_api, ns, name):
    return {
        (kind, item.metadata.name): item for kind, item in labeled(kube_api, ns, f"{OWNER_LABEL}={name}", CHILD_KINDS)
    }


def store_events(kube_api, ns, name):
    return (
        client.CoreV1Api(kube_api)
        .list_namespaced_event(ns, field_selector=f"involvedObject.name={name},involvedObject.kind=FeatureStore")
        .items
    )


def make_ready(kubelet, ns, name):
    """Run the store's pods the way a kubelet would, so the real controllers report them ready."""
    return kubelet.run(ns, f"{OWNER_LABEL}={name},app.kubernetes.io/component!=feature-repo")


def test_create_reaches_ready_with_owned_objects(operator, kube_api, crd_api, kubelet, namespace, kubectl_bin):
    crd_api.create_namespaced_custom_object(G, V, namespace, P, fs_manifest("demo"))
    expected = {
        ("ConfigMap", "demo-feast-config"),
        ("ConfigMap", "demo-feast-client"),
        ("ServiceAccount", "demo-feast"),
        ("Service", "demo-feature-server"),
        ("StatefulSet", "demo-redis"),
        ("Service", "demo-redis"),
        ("Secret", "demo-online-store"),
        ("PersistentVolumeClaim", "demo-feast-data"),
        ("Deployment", "demo-registry-server"),
    }
    objs = wait_for(
        lambda: (c := children(kube_api, namespace, "demo")) and expected <= set(c) and c,
        timeout=60,
        what="owned objects",
    )
    fs = get_fs(kube_api, namespace, "demo")
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
    fs = wait_for(
        lambda: (f := get_fs(kube_api, namespace, "demo")).get("status", {}).get("phase") and f, what="status"
    )
    assert condition(fs, "Ready")["status"] == "False"
    assert fs["status"]["observedGeneration"] == fs["metadata"]["generation"]

    wait_for(
        lambda: (
            make_ready(kubelet, namespace, "demo") >= 0
            and get_fs(kube_api, namespace, "demo")["status"].get("phase") == "Ready"
        ),
        timeout=60,
        interval=1,
        what="Ready",
    )
    fs = get_fs(kube_api, namespace, "demo")
    # the FeatureStore carries only what its user wrote: no kopf diff-base annotation
    assert not [a for a in fs["metadata"].get("annotations") or {} if "last-handled-configuration" in a]
    for part in ("OnlineStore", "OfflineStore", "Registry", "FeatureServer", "Materialization", "FeatureRepo"):
        assert condition(fs, part)["status"] == "True", condition(fs, part)
    assert (
        fs["status"]["endpoints"]["featureServer"] == f"http://demo-feature-server.{namespace}.svc.cluster.local:6566"
    )
    out = subprocess.run(
        [kubectl_bin, "wait", "--for=condition=Ready", "featurestore/demo", "-n", namespace, "--timeout=20s"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    out = subprocess.run([kubectl_bin, "get", "fs", "-n", namespace, "-o", "wide"], capture_output=True, text=True)
    assert "Ready" in out.stdout and "demo-feature-server" in out.stdout  # Server: a -o wide column
    assert "finalizer" not in str(fs["metadata"].get("finalizers")), "no cloud resources: no finalizer"


def test_cronjob_uses_served_version_and_events_are_posted(
    operator, kube_api, crd_api, kubelet, namespace, control_plane
):
    # a Kubeflow profile namespace, as the profile controller labels it: otherwise the store's
    # Kubeflow condition warns that notebooks get no config there (a Warning Event by design)
    as_profile_namespace(kube_api, namespace)
    crd_api.create_namespaced_custom_object(
        G,
        V,
        namespace,
        P,
        fs_manifest(
            "cron",
            featureServer={
                "podDisruptionBudget": {"enabled": True},
                "autoscaling": {"minReplicas": 1, "maxReplicas": 3},
            },
        ),
    )
    minor = control_plane.minor
    cron_version = "v1beta1" if minor < 21 else "v1"
    wait_for(
        lambda: client.CustomObjectsApi(kube_api).get_namespaced_custom_object(
            "batch", cron_version, namespace, "cronjobs", "cron-materialize"
        ),
        timeout=60,
        what=f"CronJob batch/{cron_version}",
    )
    pdb_version = "v1beta1" if minor < 21 else "v1"
    wait_for(
        lambda: client.CustomObjectsApi(kube_api).get_namespaced_custom_object(
            "policy", pdb_version, namespace, "poddisruptionbudgets", "cron-feature-server"
        ),
        what="PDB",
    )
    hpa_version = "v2beta2" if minor < 23 else "v2"
    hpa = client.CustomObjectsApi(kube_api).get_namespaced_custom_object(
        "autoscaling", hpa_version, namespace, "horizontalpodautoscalers", "cron-feature-server"
    )
    assert hpa["spec"]["maxReplicas"] == 3
    dep = client.AppsV1Api(kube_api).read_namespaced_deployment("cron-feature-server", namespace)
    managers = {m.manager for m in dep.metadata.managed_fields}
    assert "featurestore-operator" in managers

    # A creation that goes well posts one Event, Ready; no Warning for the steps on the way.
    def ready_events():
        make_ready(kubelet, namespace, "cron")
        return [
            e
            for e in client.CoreV1Api(kube_api)
            .list_namespaced_event(
                namespace, field_selector="involvedObject.name=cron,involvedObject.kind=FeatureStore"
            )
            .items
            if e.reason == "Ready"
        ]

    (ready,) = wait_for(ready_events, timeout=90, interval=1, what="a Ready Event")
    assert ready.type == "Normal"
    # Exactly that one Event; a transient API error of a loaded API server is tolerated only when
    # named precisely (a conflict or a timeout), never any other Warning.
    events = [
        e
        for e in store_events(kube_api, namespace, "cron")
        if not (e.reason == "ReconcileError" and TRANSIENT_API_ERROR.match(e.message or ""))
    ]
    assert [(e.type, e.reason) for e in events] == [("Normal", "Ready")], [(e.reason, e.message) for e in events]


def test_drift_restored_and_resync_writes_nothing(operator, kube_api, crd_api, kubelet, namespace):
    crd_api.create_namespaced_custom_object(G, V, namespace, P, fs_manifest("drift"))
    wait_for(
        lambda: (
            make_ready(kubelet, namespace, "drift") >= 0
            and get_fs(kube_api, namespace, "drift").get("status", {}).get("phase") == "Ready"
        ),
        timeout=60,
        interval=1,
        what="Ready",
    )
    apps, core = client.AppsV1Api(kube_api), client.CoreV1Api(kube_api)

    # Steady state: two more passes of its worker (a resync period each) wrote nothing. (Jobs the
    # materialization CronJob starts meanwhile are the CronJob controller's writes, not ours.)
    def written_by_us() -> dict:
        return {
            k: o.metadata.resource_version
            for k, o in children(kube_api, namespace, "drift").items()
            if not any(r.kind == "CronJob" for r in o.metadata.owner_references or [])
        }

    before = written_by_us()
    fs_rv = get_fs(kube_api, namespace, "drift")["metadata"]["resourceVersion"]
    operator.wait_reconciles(2)
    after = written_by_us()
    assert before == after, "resync wrote to owned objects"
    assert get_fs(kube_api, namespace, "drift")["metadata"]["resourceVersion"] == fs_rv, (
        "resync rewrote the FeatureStore"
    )

    # Hand edit of an owned field is reverted.
    apps.patch_namespaced_deployment("drift-feature-server", namespace, {"spec": {"replicas": 5}})
    wait_for(
        lambda: apps.read_namespaced_deployment("drift-feature-server", namespace).spec.replicas == 1,
        timeout=60,
        what="replicas restored",
    )
    # Kinds without a generation: a hand edit of a value we set (ConfigMap data, a Service's
    # label) is reverted as well. (Not the in-cluster Redis password: its Secret is where it lives.)
    cm = core.read_namespaced_config_map("drift-feast-client", namespace)
    original = cm.data["feature_store.yaml"]
    core.patch_namespaced_config_map(
        "drift-feast-client", namespace, {"data": {"feature_store.yaml": "project: hijacked\n"}}
    )
    wait_for(
        lambda: core.read_namespaced_config_map("drift-feast-client", namespace).data["feature_store.yaml"] == original,
        timeout=60,
        what="ConfigMap data restored",
    )
    part_of = "app.kubernetes.io/part-of"
    want = core.read_namespaced_service("drift-feature-server", namespace).metadata.labels[part_of]
    core.patch_namespaced_service("drift-feature-server", namespace, {"metadata": {"labels": {part_of: "someone"}}})
    wait_for(
        lambda: core.read_namespaced_service("drift-feature-server", namespace).metadata.labels[part_of] == want,
        timeout=60,
        what="Service label restored",
    )
    # ...while writes to fields we do not set are left alone and cost no request of ours: another
    # tool's label on the ServiceAccount (like the token controller adding `secrets` to it).
    sa_calls = operator.api_calls("serviceaccounts")
    assert sa_calls > 0, "the operator's request counter does not count ServiceAccount requests"
    core.patch_namespaced_service_account("drift-feast", namespace, {"metadata": {"labels": {"team": "a"}}})
    operator.wait_reconciles(2)  # the label's watch event, then a resync: both passes saw it
    assert core.read_namespaced_service_account("drift-feast", namespace).metadata.labels["team"] == "a"
    assert operator.api_calls("serviceaccounts") == sa_calls, "re-applied a ServiceAccount nobody changed our fields of"
    # A deleted owned object is recreated.
    core.delete_namespaced_config_map("drift-feast-client", namespace)
    wait_for(
        lambda: core.read_namespaced_config_map("drift-feast-client", namespace), timeout=60, what="ConfigMap recreated"
    )


def test_update_rolls_config_hash_and_prunes(operator, kube_api, crd_api, namespace):
    crd_api.create_namespaced_custom_object(G, V, namespace, P, fs_manifest("upd", ui={"enabled": True}))
    apps = client.AppsV1Api(kube_api)
    dep = wait_for(lambda: apps.read_namespaced_deployment("upd-feature-server", namespace), what="Deployment")
    wait_for(lambda: apps.read_namespaced_deployment("upd-ui", namespace), what="UI Deployment")
    old = dep.spec.template.metadata.annotations["featurestore.kubeflow.org/config-hash"]
    crd_api.patch_namespaced_custom_object(
        G, V, namespace, P, "upd", {"spec": {"registry": {"cacheTtlSeconds": 5}, "ui": {"enabled": False}}}
    )
    wait_for(
        lambda: (
            apps.read_namespaced_deployment("upd-feature-server", namespace).spec.template.metadata.annotations[
                "featurestore.kubeflow.org/config-hash"
            ]
            != old
        ),
        timeout=60,
        what="config hash rolled",
    )
    cm = client.CoreV1Api(kube_api).read_namespaced_config_map("upd-feast-config", namespace)
    assert "cache_ttl_seconds: 5" in cm.data["feature_store.yaml"]

    wait_for(
        gone(lambda: apps.read_namespaced_deployment("upd-ui", namespace)), timeout=60, what="UI Deployment pruned"
    )


def test_invalid_references_surface_as_conditions(operator, kube_api, crd_api, namespace):
    crd_api.create_namespaced_custom_object(
        G,
        V,
        namespace,
        P,
        fs_manifest(
            "refs",
            onlineStore={"external": {"secretRef": {"name": "nope"}}},
            featureRepo={"configMap": {"name": "missing-repo"}},
        ),
    )
    fs = wait_for(
        lambda: (f := get_fs(kube_api, namespace, "refs")) and condition(f, "OnlineStore") and f, what="conditions"
    )
    assert fs["status"]["phase"] != "Ready"
    online = condition(fs, "OnlineStore")
    assert online["status"] == "False" and "spec.onlineStore.external.secretRef.name" in online["message"]
    # an accepted-by-schema but invalid schedule: the Spec condition names the field
    crd_api.create_namespaced_custom_object(
        G, V, namespace, P, fs_manifest("badcron", materialization={"schedule": "every day"})
    )
    fs = wait_for(
        lambda: (f := get_fs(kube_api, namespace, "badcron")) and condition(f, "Spec") and f, what="Spec condition"
    )
    assert fs["status"]["phase"] == "Failed"
    assert "spec.materialization.schedule" in condition(fs, "Spec")["message"]


def test_schema_rejects_out_of_range(crd_api, namespace, featurestore_crd):
    with pytest.raises(ApiException) as info:
        crd_api.create_namespaced_custom_object(
            G, V, namespace, P, fs_manifest("bad", onlineStore={"memorystore": {"memorySizeGb": 999}})
        )
    assert info.value.status == 422 and "memorySizeGb" in info.value.body


def test_deletion_garbage_collects_children(operator, kube_api, crd_api, namespace):
    crd_api.create_namespaced_custom_object(G, V, namespace, P, fs_manifest("gone"))
    wait_for(lambda: ("Deployment", "gone-feature-server") in children(kube_api, namespace, "gone"), what="children")
    crd_api.delete_namespaced_custom_object(G, V, namespace, P, "gone")
    wait_for(
        lambda: (
            not [k for k in children(kube_api, namespace, "gone") if k[0] != "Secret" or k[1] == "gone-online-store"]
        ),  # SA token Secrets go with their SA
        timeout=60,
        interval=0.5,
        what="children garbage-collected",
    )


def test_restart_mid_way_converges_without_duplicates(
    control_plane, featurestore_crd, kube_api, crd_api, kubelet, namespace
):
    """SIGKILL while five stores are being created; a new process finishes the job. Every child is
    created once: one uid per name for the whole run (a delete-and-recreate would show a second),
    the generated Redis password written once. Only this test's two processes watch the namespace."""
    env = {"FSO_RESYNC_SECONDS": "10"}
    args = ["--namespace", namespace]
    names = [f"r{i}" for i in range(5)]
    with ObjectHistory(kube_api, namespace, ["Secret", "ConfigMap", "Service", "Deployment", "StatefulSet"]) as history:
        first = OperatorProcess(control_plane.kubeconfig, env=env, args=args).start()
        try:
            for name in names:
                crd_api.create_namespaced_custom_object(G, V, namespace, P, fs_manifest(name))
            wait_for(
                lambda: ("ConfigMap", "r0-feast-config") in children(kube_api, namespace, "r0"), what="first objects"
            )
            first.kill()
        finally:
            first.stop()
        second = OperatorProcess(control_plane.kubeconfig, env=env, args=args).start()
        try:

            def all_ready():
                for name in names:
                    make_ready(kubelet, namespace, name)
                return all(
                    get_fs(kube_api, namespace, name).get("status", {}).get("phase") == "Ready" for name in names
                )

            wait_for(all_ready, timeout=180, interval=1, what="all stores Ready after restart")
            second.wait_reconciles(len(names) + 1)  # a resync of the stores after Ready: still no re-create
        finally:
            second.stop()
    assert not history.errors, history.errors
    ours = {k: uids for k, uids in history.uids.items() if k[1].startswith(tuple(f"{n}-" for n in names))}
    twice = {f"{kind}/{name}": len(uids) for (kind, name), uids in ours.items() if len(uids) > 1}
    assert not twice, f"children deleted and created again across the restart: {twice}"
    for name in names:
        assert len(history.versions[("Secret", f"{name}-online-store")]) == 1, f"{name}: Redis password rewritten"
    deployments = {n for (kind, n) in ours if kind == "Deployment"}
    assert deployments == {f"{n}-{part}" for n in names for part in ("feature-server", "registry-server")}
