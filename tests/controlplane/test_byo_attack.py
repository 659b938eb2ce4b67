"""Issue 25: a namespace editor cannot reach another namespace's cloud resources through the operator.

The operator runs as a process against the real API server, with the Memorystore REST fake (real
redis-server with TLS + AUTH) and fake-gcs-server behind the bucket-metadata overlay, watching two
namespaces: ``victim`` and ``attacker``. The attacker writes only FeatureStores in its own namespace.
"""

from __future__ import annotations

import base64

import pytest
from kubernetes import client

from tests.support.gcs_emulator import GcsEmulator
from tests.support.iam_fake import GcsBucketOverlay
from tests.support.kube import G, P, V, condition, get_fs
from tests.support.memorystore_fake import MemorystoreFake
from tests.support.operator_process import OperatorProcess
from tests.support.waiting import wait_for

PROJECT, REGION = "test-project", "us-central1"


@pytest.fixture
def two_tenants(control_plane, featurestore_crd, make_namespace):
    victim, attacker = make_namespace("victim"), make_namespace("attacker")
    with MemorystoreFake(op_delay=0.3) as ms, GcsEmulator() as gcs, GcsBucketOverlay(gcs) as overlay:
        env = {
            "FSO_MEMORYSTORE_ENDPOINT": ms.endpoint,
            "FSO_GCP_PROJECT": PROJECT,
            "FSO_GCP_REGION": REGION,
            "FSO_DEFAULT_PROVIDER": "gcp",
            "FSO_RESYNC_SECONDS": "10",
            **overlay.env(),
        }
        op = OperatorProcess(
            control_plane.kubeconfig, env=env, args=["--namespace", victim, "--namespace", attacker]
        ).start()
        try:
            yield ms, victim, attacker
        finally:
            op.stop()
            print(op.log_text()[-15000:])


def _store(api, namespace: str, name: str, **spec) -> None:
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        G,
        V,
        namespace,
        P,
        {
            "apiVersion": f"{G}/{V}",
            "kind": "FeatureStore",
            "metadata": {"name": name},
            "spec": {"project": "driver_stats", **spec},
        },
    )


def _refused(api, namespace: str, name: str) -> dict:
    """The store's Spec condition once the operator refused it (PolicyViolation)."""
    return wait_for(
        lambda: (c := condition(get_fs(api, namespace, name), "Spec")) and c["status"] == "False" and c,
        timeout=60,
        what=f"{namespace}/{name} refused",
    )


def _secret_values(api, namespace: str) -> list[str]:
    return [
        base64.b64decode(v).decode(errors="replace")
        for s in client.CoreV1Api(api).list_namespaced_secret(namespace).items
        for v in (s.data or {}).values()
    ]


def test_existing_instance_of_another_namespace_copies_no_password(two_tenants, kube_api):
    """Before: the attacker's store named the victim's derived instance id as existingInstance; the operator
    read its AUTH string with its own identity and wrote it (and the CA) into the attacker's namespace."""
    ms, victim, attacker = two_tenants
    core = client.CoreV1Api(kube_api)
    _store(kube_api, victim, "prod")
    secret = wait_for(
        lambda: core.read_namespaced_secret("prod-online-store", victim), timeout=90, what="the victim's online Secret"
    )
    password = base64.b64decode(secret.data["password"]).decode()
    ca = base64.b64decode(secret.data["ca.crt"]).decode().strip()
    (inst,) = [i for i in ms.instances() if dict(i.labels).get("featurestore-namespace") == victim]
    victim_id = inst.name.rsplit("/", 1)[-1]

    _store(kube_api, attacker, "thief", onlineStore={"memorystore": {"existingInstance": victim_id}})

    def settled() -> bool:  # refused, or (the hole) the operator has written the online Secret
        fs = get_fs(kube_api, attacker, "thief")
        refused = (condition(fs, "Spec") or {}).get("status") == "False"
        return refused or any(
            s.metadata.name == "thief-online-store" for s in core.list_namespaced_secret(attacker).items
        )

    wait_for(settled, timeout=60, what="the attacker's store refused (or served)")
    assert not any(password in v for v in _secret_values(kube_api, attacker)), "the victim's password leaked"
    assert not any(ca in v for v in _secret_values(kube_api, attacker)), "the victim's Memorystore CA was copied"
    spec = condition(get_fs(kube_api, attacker, "thief"), "Spec")
    assert spec["reason"] == "PolicyViolation", spec
    assert "spec.onlineStore.memorystore.existingInstance" in spec["message"] and "byoAssignments" in spec["message"]
    assert not (get_fs(kube_api, attacker, "thief")["status"].get("endpoints") or {}).get("onlineStore")


def test_custom_instance_id_cannot_squat_another_namespaces_derived_id(two_tenants, kube_api):
    """Before: the attacker set instanceId to the id the operator derives for victim/later; the operator
    created it for the attacker, and the victim's store, created later, was a permanent Conflict."""
    from featurestore_operator.api import parse_featurestore
    from featurestore_operator.backends.naming import memorystore_instance_id

    ms, victim, attacker = two_tenants
    later = {
        "apiVersion": f"{G}/{V}",
        "kind": "FeatureStore",
        "metadata": {"name": "later", "namespace": victim},
        "spec": {"project": "p", "gcp": {"project": PROJECT, "region": REGION}},
    }
    squatted = memorystore_instance_id(parse_featurestore(later))
    _store(kube_api, attacker, "squat", onlineStore={"memorystore": {"instanceId": squatted}})
    wait_for(
        lambda: (
            (condition(get_fs(kube_api, attacker, "squat"), "Spec") or {}).get("status") == "False"
            or any(i.name.endswith(f"/{squatted}") for i in ms.instances())
        ),
        timeout=60,
        what="the squatting store refused (or its instance created)",
    )

    _store(kube_api, victim, "later")
    online = wait_for(
        lambda: (
            (c := condition(get_fs(kube_api, victim, "later"), "OnlineStore"))
            and (c["status"] == "True" or c["reason"] == "Conflict")
            and c
        ),
        timeout=90,
        what="the victim's online store settled",
    )
    assert online["reason"] != "Conflict", f"the attacker squatted the victim's instance: {online['message']}"
    (inst,) = [i for i in ms.instances() if i.name.endswith(f"/{squatted}")]
    assert dict(inst.labels)["featurestore-namespace"] == victim
    spec = condition(get_fs(kube_api, attacker, "squat"), "Spec")
    assert spec["reason"] == "PolicyViolation" and "spec.onlineStore.memorystore.instanceId" in spec["message"]
