"""A namespace editor forges clean-up records; the operator (real process, real API server) starts
and lists them again after a restart. Nothing outside what the operator wrote itself is acted on.

The attack (issue 25, found live on 5f7e068): a ConfigMap labelled
``featurestore.kubeflow.org/cleanup-record`` in the attacker's namespace, whose JSON names a store
with a uid like ``/../../../victim/secrets/s``: the operator cleaned up "that store" and deleted
its record by ``featurestore-cleanup-<name>-<uid>``, and the client joined that into the URL, so
the DELETE went to a Secret (or a Deployment, ...) in another namespace. Variants here: ``../``
segments to a Secret, to a Deployment of another API group, ``%2F``-encoded segments to a
ConfigMap, and valid-looking records naming the victim's live store (its uid) and the victim's
cloud resources. The victim's objects, store, cloud resources and clean-up record must stay
untouched, the forged records too (never deleted by a name read from them), and each is named in
one log line.
"""

from __future__ import annotations

import json
import uuid

from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.support.gcs_emulator import GcsEmulator
from tests.support.iam_fake import GcsBucketOverlay
from tests.support.kube import G, P, V, custom, list_fs
from tests.support.memorystore_fake import MemorystoreFake
from tests.support.operator_process import OperatorProcess
from tests.support.waiting import wait_for

RECORD = "featurestore.kubeflow.org/cleanup-record"
PROJECT, REGION = "test-project", "us-central1"


def gcp_env(ms: MemorystoreFake, overlay: GcsBucketOverlay, home: str) -> dict[str, str]:
    return {
        "FSO_MEMORYSTORE_ENDPOINT": ms.endpoint,
        "FSO_GCP_PROJECT": PROJECT,
        "FSO_GCP_REGION": REGION,
        "FSO_DEFAULT_PROVIDER": "gcp",
        "FSO_RESYNC_SECONDS": "10",
        "FSO_OPERATOR_NAMESPACE": home,
        **overlay.env(),
    }


def victim_store() -> dict:
    return {
        "apiVersion": f"{G}/{V}",
        "kind": "FeatureStore",
        "metadata": {"name": "victim-store"},
        "spec": {
            "project": "victim",
            "onlineStore": {"memorystore": {"memorySizeGb": 1}},
            "offlineStore": {"gcs": {"deletionPolicy": "Delete"}},
        },
    }


def forged(name: str, meta: dict, spec: dict | None = None) -> client.V1ConfigMap:
    body = {"apiVersion": f"{G}/{V}", "kind": "FeatureStore", "metadata": meta, "spec": spec or {}}
    return client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=name, labels={RECORD: "true"}), data={"featurestore.json": json.dumps(body)}
    )


def plant_victims(kube_api, ns: str) -> None:
    core, apps = client.CoreV1Api(kube_api), client.AppsV1Api(kube_api)
    core.create_namespaced_secret(
        ns, client.V1Secret(metadata=client.V1ObjectMeta(name="victim-secret"), string_data={"password": "hunter2"})
    )
    core.create_namespaced_config_map(
        ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="victim-config"), data={"k": "v"})
    )
    labels = {"app": "victim"}
    apps.create_namespaced_deployment(
        ns,
        client.V1Deployment(
            metadata=client.V1ObjectMeta(name="victim-app"),
            spec=client.V1DeploymentSpec(
                replicas=0,
                selector=client.V1LabelSelector(match_labels=labels),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=labels),
                    spec=client.V1PodSpec(containers=[client.V1Container(name="app", image="registry.example/app:1")]),
                ),
            ),
        ),
    )


def victims_intact(kube_api, ns: str) -> None:
    core, apps = client.CoreV1Api(kube_api), client.AppsV1Api(kube_api)
    reads = {
        "Secret victim-secret": lambda: core.read_namespaced_secret("victim-secret", ns),
        "ConfigMap victim-config": lambda: core.read_namespaced_config_map("victim-config", ns),
        "Deployment victim-app": lambda: apps.read_namespaced_deployment("victim-app", ns),
    }
    gone = []
    for what, read in reads.items():
        try:
            if read().metadata.deletion_timestamp is not None:
                gone.append(f"{what} (deleting)")
        except ApiException as err:
            if err.status != 404:
                raise
            gone.append(what)
    assert not gone, f"forged clean-up records made the operator delete in namespace {ns}: {gone}"


def forgeries(tenant: str, victim: str, victim_uid: str, instance: str, bucket: str) -> list[client.V1ConfigMap]:
    up = "/.." * 3
    return [
        # ../ segments: .../namespaces/<tenant>/configmaps/featurestore-cleanup-s-/../../../<victim>/secrets/...
        # (one store name per record: the operator cleans up one store per namespace/name at a time)
        forged("forged-secret", {"name": "s", "uid": f"{up}/{victim}/secrets/victim-secret"}),
        # out of the core group: six segments up, then apps/v1
        forged(
            "forged-deployment",
            {"name": "d", "uid": "/.." * 6 + f"/apis/apps/v1/namespaces/{victim}/deployments/victim-app"},
        ),
        # percent-encoded slashes and dots
        forged("forged-encoded", {"name": "c", "uid": f"%2F..%2F..%2F..%2F{victim}%2Fconfigmaps%2Fvictim-config"}),
        forged("forged-dots", {"name": "..", "uid": f"%2e%2e/{victim}/secrets/victim-secret"}),
        # valid-looking: the victim's live store by namespace, name and uid, with its spec
        forged("forged-live", {"name": "victim-store", "namespace": victim, "uid": victim_uid}, victim_store()["spec"]),
        # valid-looking: a store "of the tenant" that never existed, naming the victim's cloud resources
        forged(
            "forged-cloud",
            {"name": "victim-store", "namespace": tenant, "uid": str(uuid.uuid4())},
            {
                "project": "victim",
                "onlineStore": {"memorystore": {"memorySizeGb": 1, "instanceId": instance, "deletionPolicy": "Delete"}},
                "offlineStore": {"gcs": {"bucket": bucket, "deletionPolicy": "Delete", "force": True}},
            },
        ),
    ]


def test_forged_clean_up_records_delete_nothing_anywhere(
    control_plane, featurestore_crd, kube_api, make_namespace, namespace
):
    tenant, victim, home = namespace, make_namespace("victim"), make_namespace("fso-home")
    core, api = client.CoreV1Api(kube_api), custom(kube_api)
    plant_victims(kube_api, victim)
    with (
        MemorystoreFake(op_delay=0.5, real_redis=False, seed=5) as ms,
        GcsEmulator() as gcs,
        GcsBucketOverlay(gcs) as overlay,
    ):
        op = OperatorProcess(
            control_plane.kubeconfig,
            env=gcp_env(ms, overlay, home),
            args=["--namespace", tenant, "--namespace", victim],
        ).start()
        try:
            api.create_namespaced_custom_object(G, V, victim, P, victim_store())
            [instance] = wait_for(
                lambda: [i.name.rsplit("/", 1)[-1] for i in ms.instances()],
                timeout=90,
                interval=0.5,
                what="the victim's instance being created",
            )
            [bucket] = wait_for(
                lambda: [b.name for b in overlay.client().list_buckets()],
                timeout=90,
                interval=0.5,
                what="the victim's bucket",
            )
            victim_uid = api.get_namespaced_custom_object(G, V, victim, P, "victim-store")["metadata"]["uid"]
            planted = forgeries(tenant, victim, victim_uid, instance, bucket)
            for record in planted:
                core.create_namespaced_config_map(tenant, record)
            op.stop()
            op.start()  # start-up lists the records (as every relist after a watch gap does)
            op.wait_reconciles(3, timeout=120)

            victims_intact(kube_api, victim)
            store = api.get_namespaced_custom_object(G, V, victim, P, "victim-store")
            assert store["metadata"]["uid"] == victim_uid and not store["metadata"].get("deletionTimestamp")
            assert [i.name.rsplit("/", 1)[-1] for i in ms.instances()] == [instance]
            assert not ms.calls("DeleteInstance"), "a forged record made the operator delete an instance"
            assert [b.name for b in overlay.client().list_buckets()] == [bucket]
            assert not [r for r in list(overlay.requests) if r.method == "DELETE"], "a bucket (object) was deleted"
            # the forged records stay (never deleted by a name read from them) and are named in the log
            left = {c.metadata.name for c in core.list_namespaced_config_map(tenant, label_selector=RECORD).items}
            assert left == {r.metadata.name for r in planted}
            wait_for(
                lambda: all(
                    f"ignoring clean-up record ConfigMap {tenant}/{r.metadata.name}" in op.log_text() for r in planted
                ),
                timeout=30,
                interval=0.5,
                what="a log line per forged record",
            )
            assert "cleaning up from its last known spec" not in op.log_text()
            # the victim's own record: in the operator's namespace, untouched
            own = core.list_namespaced_config_map(
                home, label_selector=f"{RECORD}=true,featurestore.kubeflow.org/store-uid={victim_uid}"
            ).items
            assert len(own) == 1, [c.metadata.name for c in own]
            assert op.alive()
        finally:
            try:
                if list_fs(kube_api, victim):
                    api.delete_namespaced_custom_object(G, V, victim, P, "victim-store")
                    wait_for(lambda: not list_fs(kube_api, victim), timeout=90, interval=1, what="victim store gone")
            finally:
                op.stop()
                print(op.log_text()[-6000:])
