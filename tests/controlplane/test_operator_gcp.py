"""Provider gcp end to end through the operator process: Memorystore (REST fake backed by real
redis-server with TLS + AUTH) and GCS (fake-gcs-server behind the bucket-metadata overlay),
against the real API server. Proves wiring, Secret contents, finalizer and deletion policies."""

from __future__ import annotations

import base64
import ssl
import tempfile

import pytest
import redis
from kubernetes import client

from tests.support.gcs_emulator import GcsEmulator
from tests.support.iam_fake import GcsBucketOverlay
from tests.support.kube import OWNER_LABEL, G, P, V, condition, get_fs
from tests.support.memorystore_fake import MemorystoreFake
from tests.support.operator_process import OperatorProcess
from tests.support.waiting import wait_for

PROJECT, REGION = "test-project", "us-central1"


@pytest.fixture
def gcp(control_plane, featurestore_crd, namespace):
    with MemorystoreFake(op_delay=0.3) as ms, GcsEmulator() as gcs, GcsBucketOverlay(gcs) as overlay:
        env = {
            "FSO_MEMORYSTORE_ENDPOINT": ms.endpoint,
            "FSO_GCP_PROJECT": PROJECT,
            "FSO_GCP_REGION": REGION,
            "FSO_DEFAULT_PROVIDER": "gcp",
            "FSO_RESYNC_SECONDS": "10",
            **overlay.env(),
        }
        op = OperatorProcess(control_plane.kubeconfig, env=env, args=["--namespace", namespace]).start()
        try:
            yield ms, overlay, op
        finally:
            op.stop()
            print(op.log_text()[-15000:])


def _instances_of(ms, namespace):
    """Instances labelled for stores of ``namespace``."""
    return [i for i in ms.instances() if dict(i.labels).get("featurestore-namespace") == namespace]


def test_gcp_store_provisions_memorystore_and_bucket(gcp, kube_api, namespace, kubelet):
    ms, overlay, _ = gcp
    client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
        G,
        V,
        namespace,
        P,
        {
            "apiVersion": f"{G}/{V}",
            "kind": "FeatureStore",
            "metadata": {"name": "prod"},
            "spec": {"project": "driver_stats", "offlineStore": {"gcs": {"deletionPolicy": "Retain"}}},
        },
    )
    core = client.CoreV1Api(kube_api)
    secret = wait_for(
        lambda: core.read_namespaced_secret("prod-online-store", namespace), timeout=90, what="online Secret"
    )
    password = base64.b64decode(secret.data["password"]).decode()
    ca = base64.b64decode(secret.data["ca.crt"]).decode()
    fs = wait_for(
        lambda: (f := get_fs(kube_api, namespace, "prod"))["status"].get("endpoints", {}).get("onlineStore") and f,
        what="online endpoint in status",
    )
    host, port = fs["status"]["endpoints"]["onlineStore"].rsplit(":", 1)

    # The endpoint, password and CA the operator wrote really reach the (real) Redis over TLS.
    with tempfile.NamedTemporaryFile("w", suffix=".crt") as f:
        f.write(ca)
        f.flush()
        r = redis.Redis(
            host=host,
            port=int(port),
            password=password,
            ssl=True,
            ssl_ca_certs=f.name,
            ssl_cert_reqs=ssl.CERT_REQUIRED,
            socket_timeout=5,
        )
        assert r.ping()
    mine = _instances_of(ms, namespace)
    assert len(mine) == 1, "exactly one Memorystore instance for this store"
    instance_id = mine[0].name.rsplit("/", 1)[-1]

    cm = core.read_namespaced_config_map("prod-feast-config", namespace).data["feature_store.yaml"]
    assert f"{host}:{port},ssl=true,ssl_ca_certs=/etc/feast/redis-tls/ca.crt,password=${{REDIS_PASSWORD}}" in cm
    assert password not in cm
    bucket = fs["status"]["endpoints"]["bucket"]
    assert f"gs://{bucket}/registry.pb" in cm
    assert overlay.client().get_bucket(bucket).iam_configuration.uniform_bucket_level_access_enabled
    assert fs["metadata"].get("finalizers") == ["featurestore.kubeflow.org/finalizer"], "Memorystore needs cleanup"

    wait_for(
        lambda: (
            kubelet.run(namespace, f"{OWNER_LABEL}=prod") >= 0
            and get_fs(kube_api, namespace, "prod")["status"].get("phase") == "Ready"
        ),
        timeout=90,
        interval=1,
        what="Ready",
    )
    status = get_fs(kube_api, namespace, "prod")["status"]
    assert not status["operations"].get("memorystore"), "no operation left in flight"

    # Deletion: the instance goes (Delete is the online default), the bucket stays (Retain).
    client.CustomObjectsApi(kube_api).delete_namespaced_custom_object(G, V, namespace, P, "prod")

    wait_for(
        lambda: get_fs(kube_api, namespace, "prod") is None,
        timeout=90,
        interval=0.5,
        what="FeatureStore deleted (finalizer released)",
    )
    assert not _instances_of(ms, namespace), "Memorystore instance deleted"
    assert overlay.client().get_bucket(bucket), "bucket retained"
    creates = [
        r
        for r in ms.requests
        if r.rpc == "CreateInstance" and r.status == 200 and r.query.get("instanceId") == instance_id
    ]
    assert len(creates) == 1


def test_foreign_instance_is_a_conflict(gcp, kube_api, namespace):
    ms, _, _ = gcp
    from featurestore_operator.api import parse_featurestore
    from featurestore_operator.backends.naming import memorystore_instance_id

    manifest = {
        "apiVersion": f"{G}/{V}",
        "kind": "FeatureStore",
        "metadata": {"name": "taken", "namespace": namespace},
        "spec": {"project": "p", "gcp": {"project": PROJECT, "region": REGION}},
    }
    instance_id = memorystore_instance_id(parse_featurestore(manifest))
    ms.precreate(instance_id, labels={"owner": "someone-else"})
    client.CustomObjectsApi(kube_api).create_namespaced_custom_object(G, V, namespace, P, manifest)
    fs = wait_for(
        lambda: (f := get_fs(kube_api, namespace, "taken")) and condition(f, "OnlineStore") and f, what="condition"
    )
    online = condition(fs, "OnlineStore")
    assert online["status"] == "False" and online["reason"] == "Conflict" and instance_id in online["message"]
    assert fs["status"]["phase"] == "Failed"
