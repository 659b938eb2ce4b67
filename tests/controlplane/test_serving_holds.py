"""docs/operations/troubleshooting.md: "a serving store keeps serving" while Memorystore is busy
(MAINTENANCE, UPDATING) and while GCP keeps failing (CloudUnavailable). The Memorystore fake is
backed by a real redis-server with TLS + AUTH; the operator is the real process; "serving" is
proven by the objects the feature server runs from staying exactly as they were and by the online
store still answering with the password and CA from the store's Secret."""

from __future__ import annotations

import base64
import ssl
import tempfile

import pytest
import redis
from kubernetes import client

from tests.support.gcs_emulator import GcsEmulator
from tests.support.iam_fake import GcsBucketOverlay
from tests.support.kube import SERVER_PODS, G, P, V, condition, fs_manifest, get_fs, is_ready, list_fs
from tests.support.kubelet import FakeKubelet
from tests.support.memorystore_fake import MemorystoreFake
from tests.support.operator_process import OperatorProcess
from tests.support.waiting import wait_for

PROJECT, REGION = "test-project", "us-central1"


@pytest.fixture
def gcp_operator(control_plane, featurestore_crd, namespace, kube_api):
    with MemorystoreFake(op_delay=0.3, real_redis=True) as ms, GcsEmulator() as gcs, GcsBucketOverlay(gcs) as overlay:
        env = {
            "FSO_MEMORYSTORE_ENDPOINT": ms.endpoint,
            "FSO_GCP_PROJECT": PROJECT,
            "FSO_GCP_REGION": REGION,
            "FSO_DEFAULT_PROVIDER": "gcp",
            "FSO_RESYNC_SECONDS": "10",
            **overlay.env(),
            "FSO_CLOUD_RETRY_SECONDS": "3",
        }  # CloudUnavailable after 3 s of 503s, not 60
        op = OperatorProcess(control_plane.kubeconfig, env=env, args=["--namespace", namespace]).start()
        try:
            yield ms, op
        finally:
            ms.reset_faults()
            try:  # the finalizer needs the operator: delete while it runs
                for name in list_fs(kube_api, namespace):
                    client.CustomObjectsApi(kube_api).delete_namespaced_custom_object(G, V, namespace, P, name)
                wait_for(lambda: not list_fs(kube_api, namespace), timeout=120, interval=1, what="stores deleted")
            finally:
                op.stop()
                print(op.log_text()[-10000:])


def serving_state(kube_api, ns: str, name: str) -> dict:
    """What the feature server runs from: its Deployment, config, Secret, and the endpoints in status."""
    core, apps = client.CoreV1Api(kube_api), client.AppsV1Api(kube_api)
    return {
        "deployment": apps.read_namespaced_deployment(f"{name}-feature-server", ns).metadata.resource_version,
        "config": core.read_namespaced_config_map(f"{name}-feast-config", ns).data,
        "secret": core.read_namespaced_secret(f"{name}-online-store", ns).data,
        "endpoints": get_fs(kube_api, ns, name)["status"]["endpoints"],
    }


def online_store_answers(state: dict) -> bool:
    """PING the online store with the endpoint, password and CA the store's Secret and status hold."""
    host, port = state["endpoints"]["onlineStore"].rsplit(":", 1)
    with tempfile.NamedTemporaryFile("w", suffix=".crt") as ca:
        ca.write(base64.b64decode(state["secret"]["ca.crt"]).decode())
        ca.flush()
        r = redis.Redis(
            host=host,
            port=int(port),
            password=base64.b64decode(state["secret"]["password"]).decode(),
            ssl=True,
            ssl_ca_certs=ca.name,
            ssl_cert_reqs=ssl.CERT_REQUIRED,
            socket_timeout=5,
        )
        return bool(r.ping())


def online_reason(kube_api, ns: str, name: str, reason: str) -> dict | None:
    c = condition(get_fs(kube_api, ns, name), "OnlineStore")
    return c if c and c["reason"] == reason else None


def test_serving_store_keeps_serving_through_maintenance_updates_and_outages(gcp_operator, kube_api, namespace):
    ms, op = gcp_operator
    client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
        G,
        V,
        namespace,
        P,
        fs_manifest(
            "hold", onlineStore={"memorystore": {"memorySizeGb": 1}}, offlineStore={"gcs": {"deletionPolicy": "Delete"}}
        ),
    )
    kubelet = FakeKubelet(kube_api)

    def ready():
        kubelet.run(namespace, SERVER_PODS)
        return is_ready(get_fs(kube_api, namespace, "hold"))

    wait_for(ready, timeout=180, interval=1, what="the store Ready")
    before = serving_state(kube_api, namespace, "hold")
    assert online_store_answers(before)
    [instance] = ms.instances()

    # Memorystore busy: the condition says so, nothing the feature server runs from changes.
    for state, reason in (("MAINTENANCE", "Maintenance"), ("UPDATING", "Updating")):
        ms.set_state(instance.name, state)
        c = wait_for(
            lambda reason=reason: online_reason(kube_api, namespace, "hold", reason),
            timeout=90,
            interval=0.5,
            what=f"OnlineStore {reason}",
        )
        assert c["status"] == "False", c
        op.wait_reconciles(2)  # more passes while it lasts: each of them held
        assert serving_state(kube_api, namespace, "hold") == before, f"changed during {state}"
        assert online_store_answers(before)
        ms.set_state(instance.name, "READY")
        wait_for(ready, timeout=90, interval=1, what=f"Ready again after {state}")

    # GCP keeps failing: after the retries, CloudUnavailable; the store keeps serving meanwhile.
    ms.fail_next(10**6, status=503)
    c = wait_for(
        lambda: online_reason(kube_api, namespace, "hold", "CloudUnavailable"),
        timeout=240,
        interval=1,
        what="OnlineStore CloudUnavailable",
    )
    assert c["status"] == "False" and "transient error persisted" in c["message"], c
    assert serving_state(kube_api, namespace, "hold") == before, "changed while GCP was unavailable"
    assert online_store_answers(before)
    ms.reset_faults()
    wait_for(ready, timeout=180, interval=1, what="Ready again once GCP answers")
    assert serving_state(kube_api, namespace, "hold") == before
