"""Tenant boundaries at `kubectl apply` time and behind it (issue 16).

The real API server calls the operator's validating webhook over TLS (kopf's server with the
operator's self-signed certificate, reached at https://127.0.0.1:PORT through clientConfig.url; the
caBundle kopf wrote into the ValidatingWebhookConfiguration is what the API server verifies).
Then, with no webhook (deleted by an admin, or never installed), the operator itself still refuses:
the conditions say PolicyViolation and nothing is created or granted in the (fake) cloud.

Before this change: every manifest below was accepted, and the operator granted
roles/iam.workloadIdentityUser on the operator's own GSA / created buckets in any project.
"""

from __future__ import annotations

import socket
import subprocess

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.support.gcs_emulator import GcsEmulator
from tests.support.iam_fake import GcsBucketOverlay, IamAdminFake
from tests.support.memorystore_fake import MemorystoreFake
from tests.support.operator_process import OperatorProcess
from tests.support.waiting import wait_for

G, V, P = "featurestore.kubeflow.org", "v1alpha1", "featurestores"
PROJECT, REGION = "test-project", "us-central1"
OPERATOR_GSA = "featurestore-operator@test-project.iam.gserviceaccount.com"
WEBHOOK = "featurestores.featurestore.kubeflow.org"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def fakes(control_plane, featurestore_crd):
    with (
        MemorystoreFake(op_delay=0.3) as ms,
        GcsEmulator() as gcs,
        GcsBucketOverlay(gcs) as overlay,
        IamAdminFake() as iam,
    ):
        iam.add_service_account(OPERATOR_GSA)
        env = {
            "FSO_MEMORYSTORE_ENDPOINT": ms.endpoint,
            "FSO_IAM_ENDPOINT": iam.endpoint,
            "FSO_GCP_PROJECT": PROJECT,
            "FSO_GCP_REGION": REGION,
            "FSO_DEFAULT_PROVIDER": "gcp",
            "FSO_GCP_SERVICE_ACCOUNT": OPERATOR_GSA,
            "FSO_RESYNC_SECONDS": "10",
            **overlay.env(),
        }
        yield env, ms, overlay, iam


def _delete_webhook(kube_api) -> None:
    adm = client.AdmissionregistrationV1Api(kube_api)
    for delete in (adm.delete_validating_webhook_configuration, adm.delete_mutating_webhook_configuration):
        try:
            delete(WEBHOOK)
        except ApiException as err:
            if err.status != 404:
                raise


@pytest.fixture(scope="module")
def webhook(fakes, control_plane, kube_api):
    env = {
        **fakes[0],
        "FSO_WEBHOOK_ENABLED": "true",
        "FSO_WEBHOOK_HOST": "127.0.0.1",
        "FSO_WEBHOOK_PORT": str(_free_port()),
    }
    op = OperatorProcess(control_plane.kubeconfig, env=env).start()
    adm = client.AdmissionregistrationV1Api(kube_api)
    try:

        def configured() -> bool:
            try:
                return bool(adm.read_validating_webhook_configuration(WEBHOOK).webhooks)
            except ApiException:
                return False

        wait_for(configured, timeout=60, interval=0.5, what="kopf's ValidatingWebhookConfiguration")
        yield op
    finally:
        op.stop()
        _delete_webhook(kube_api)  # a webhook without its server would refuse every later FeatureStore
        print(op.log_text()[-15000:])


def test_webhook_certificate_is_made_without_loading_cryptography_in_the_operator(webhook):
    """The self-signed webhook certificate comes from a child interpreter: the operator process
    serves TLS (kopf's server, stdlib ssl) without `cryptography` mapped (~8 MiB resident)."""
    pid = webhook.pid
    assert pid is not None and webhook.alive()
    with open(f"/proc/{pid}/maps") as maps:
        loaded = maps.read()
    assert "/ssl" in loaded or "libssl" in loaded, "the webhook server has no TLS library loaded"
    assert "cryptography" not in loaded, "the operator process loaded cryptography"


def manifest(name: str, namespace: str, **spec: object) -> str:
    import json

    return json.dumps(
        {
            "apiVersion": f"{G}/{V}",
            "kind": "FeatureStore",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"project": "p", **spec},
        }
    )


def kubectl_apply(kubectl_bin: str, doc: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([kubectl_bin, "apply", "-f", "-"], input=doc, capture_output=True, text=True, timeout=60)


REFUSED = [
    ("operator-gsa", {"gcp": {"serviceAccount": OPERATOR_GSA}}, ["spec.gcp.serviceAccount", "deniedServiceAccounts"]),
    (
        "other-ns-gsa",
        {"gcp": {"serviceAccount": "feast-someone-else@test-project.iam.gserviceaccount.com"}},
        ["spec.gcp.serviceAccount", "serviceAccountPatterns"],
    ),
    ("foreign-pool", {"gcp": {"project": "evil-project"}}, ["spec.gcp.project", "allowedProjects"]),
    (
        "local-gsa",
        {"provider": "local", "gcp": {"serviceAccount": "feast-x@test-project.iam.gserviceaccount.com"}},
        ["spec.gcp.serviceAccount", "provider local"],
    ),
    ("huge", {"onlineStore": {"memorystore": {"memorySizeGb": 300}}}, ["memorySizeGb", "maxMemorystoreSizeGb"]),
    # issue 25: bring your own only what the admin assigned; custom names in the namespace; AUTH/TLS
    ("byo-unassigned", {"onlineStore": {"memorystore": {"existingInstance": "fs-victim-prod-1a2b3c4d"}}},
     ["spec.onlineStore.memorystore.existingInstance", "byoAssignments"]),
    ("squat", {"onlineStore": {"memorystore": {"instanceId": "fs-victim-prod-1a2b3c4d"}}},
     ["spec.onlineStore.memorystore.instanceId", "remove the field"]),
    ("no-tls", {"onlineStore": {"memorystore": {"transitEncryption": False}}},
     ["spec.onlineStore.memorystore.transitEncryption", "memorystoreSecurity.requireTls"]),
]


@pytest.mark.parametrize("name,spec,words", REFUSED, ids=[r[0] for r in REFUSED])
def test_webhook_refuses_at_kubectl_apply(webhook, kubectl_bin, kube_api, namespace, name, spec, words):
    out = kubectl_apply(kubectl_bin, manifest(name, namespace, **spec))
    assert out.returncode != 0, out.stdout
    assert "admission webhook" in out.stderr and "denied the request" in out.stderr, out.stderr
    for word in words:
        assert word in out.stderr, out.stderr
    crd = client.CustomObjectsApi(kube_api)
    with pytest.raises(ApiException) as gone:
        crd.get_namespaced_custom_object(G, V, namespace, P, name)
    assert gone.value.status == 404


@pytest.fixture
def short_namespace(kube_api):
    """GSA account ids are at most 30 characters: feast-{namespace} needs a short namespace."""
    import secrets

    core = client.CoreV1Api(kube_api)
    name = f"wh-{secrets.token_hex(3)}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        core.delete_namespace(name)


def test_webhook_accepts_an_allowed_store_and_refuses_immutable_changes(
    webhook, kubectl_bin, short_namespace, kube_api
):
    namespace = short_namespace
    gsa = f"feast-{namespace}@{PROJECT}.iam.gserviceaccount.com"
    ok = kubectl_apply(
        kubectl_bin,
        manifest("fine", namespace, gcp={"serviceAccount": gsa}, onlineStore={"memorystore": {"tier": "BASIC"}}),
    )
    assert ok.returncode == 0, ok.stderr
    changed = kubectl_apply(
        kubectl_bin,
        manifest(
            "fine",
            namespace,
            gcp={"serviceAccount": gsa},
            onlineStore={"memorystore": {"tier": "STANDARD_HA", "connectMode": "DIRECT_PEERING"}},
        ),
    )
    assert changed.returncode != 0
    assert "spec.onlineStore.memorystore.tier: cannot be changed after creation" in changed.stderr, changed.stderr
    assert "spec.onlineStore.memorystore.connectMode" in changed.stderr
    resized = kubectl_apply(
        kubectl_bin,
        manifest(
            "fine",
            namespace,
            gcp={"serviceAccount": gsa},
            onlineStore={"memorystore": {"tier": "BASIC", "memorySizeGb": 2}},
        ),
    )
    assert resized.returncode == 0, resized.stderr  # a mutable field still changes
    client.CustomObjectsApi(kube_api).delete_namespaced_custom_object(G, V, namespace, P, "fine")


def test_without_the_webhook_the_operator_still_refuses(webhook, fakes, control_plane, kube_api, namespace):
    """The webhook is gone (an admin deleted it, or it was never installed): the store gets in, the
    operator refuses it itself - conditions name the rule - and touches nothing in the cloud."""
    env, ms, overlay, iam = fakes
    webhook.stop()
    _delete_webhook(kube_api)
    crd = client.CustomObjectsApi(kube_api)
    crd.create_namespaced_custom_object(
        G,
        V,
        namespace,
        P,
        {
            "apiVersion": f"{G}/{V}",
            "kind": "FeatureStore",
            "metadata": {"name": "sneaky"},
            "spec": {"project": "p", "gcp": {"project": "evil-project", "serviceAccount": OPERATOR_GSA}},
        },
    )
    with OperatorProcess(control_plane.kubeconfig, env=env):

        def conditions() -> dict[str, dict]:
            fs = crd.get_namespaced_custom_object(G, V, namespace, P, "sneaky")
            return {c["type"]: c for c in (fs.get("status") or {}).get("conditions", [])}

        # reconcile checks the policy before any backend runs: one Spec condition names every rule
        wait_for(
            lambda: conditions().get("Spec", {}).get("reason") == "PolicyViolation",
            timeout=60,
            interval=0.5,
            what="Spec PolicyViolation",
        )
        conds = conditions()
        assert "allowedProjects" in conds["Spec"]["message"] and "deniedServiceAccounts" in conds["Spec"]["message"]
        assert "spec.gcp.project" in conds["Spec"]["message"]
        assert "Ready" not in conds or conds["Ready"]["status"] != "True"
        # the pass that wrote the condition returned before any backend: nothing created or granted
        assert not [i for i in ms.instances() if dict(i.labels).get("featurestore-namespace") == namespace]
        assert not [
            r for r in overlay.writes() if "evil" in r.path or "evil" in str(r.body) or namespace in str(r.body)
        ]
        assert iam.bindings(OPERATOR_GSA) == [] and iam.writes() == []
