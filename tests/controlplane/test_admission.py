"""Tenant boundaries at `kubectl apply` time and behind it (issue 16), and the webhook never
blocking clean-up (issue 25).

The real API server calls the operator's validating webhook over TLS: the chart's
ValidatingWebhookConfiguration (rendered by `helm template`), pointed at the local operator by URL
(https://127.0.0.1:PORT; no service routing here: tests/support/webhook.py), whose caBundle the
operator writes from the certificate it keeps in a Secret. Then, with no webhook (deleted by an
admin, or never installed), the operator itself still refuses: the conditions say PolicyViolation
and nothing is created or granted in the (fake) cloud.

Before issue 16: every manifest below was accepted, and the operator granted
roles/iam.workloadIdentityUser on the operator's own GSA / created buckets in any project.
Before issue 25: once the admin tightened the policy, the webhook refused the operator's own
finalizer removal (422) and deleting a store admitted earlier hung forever.
"""

from __future__ import annotations

import socket
import subprocess

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.support import chart_identity
from tests.support import webhook as chart_webhook
from tests.support.gcs_emulator import GcsEmulator
from tests.support.iam_fake import GcsBucketOverlay, IamAdminFake
from tests.support.memorystore_fake import MemorystoreFake
from tests.support.operator_process import OperatorProcess
from tests.support.waiting import wait_for

G, V, P = "featurestore.kubeflow.org", "v1alpha1", "featurestores"
PROJECT, REGION = "test-project", "us-central1"
OPERATOR_GSA = "featurestore-operator@test-project.iam.gserviceaccount.com"
#: the chart's ValidatingWebhookConfiguration, release "fso" in namespace "fso-system"
# The operator runs as the tier's chart identity (tests/support/chart_identity.py), whose RBAC grants get/patch
# on its own release's configuration and certificate Secret by name: the test uses those names.
WEBHOOK = f"{chart_identity.RELEASE}-featurestore-operator-webhook"
WEBHOOK_SECRET = f"{WEBHOOK}-tls"


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
    chart_webhook.delete(kube_api, WEBHOOK)


def install_webhook(kube_api, helm_bin: str, port: int) -> None:
    """The chart's configuration, called at the local operator (tests/support/webhook.py)."""
    vwc = chart_webhook.chart_configuration(
        helm_bin, release=chart_identity.RELEASE, namespace=chart_identity.NAMESPACE
    )
    vwc = chart_webhook.at_url(vwc, f"https://127.0.0.1:{port}")
    _delete_webhook(kube_api)
    client.AdmissionregistrationV1Api(kube_api).create_validating_webhook_configuration(vwc)


def webhook_env(port: int, secret_namespace: str) -> dict[str, str]:
    return {
        "FSO_WEBHOOK_ENABLED": "true",
        "FSO_WEBHOOK_HOST": "127.0.0.1",
        "FSO_WEBHOOK_PORT": str(port),
        "FSO_WEBHOOK_CONFIGURATION": WEBHOOK,
        "FSO_WEBHOOK_SECRET": f"{secret_namespace}/{WEBHOOK_SECRET}",
    }


def wait_served(kube_api) -> None:
    wait_for(
        lambda: chart_webhook.ca_bundle(kube_api, WEBHOOK),
        timeout=60,
        interval=0.5,
        what="the caBundle written by the operator",
    )


@pytest.fixture(scope="module")
def webhook_namespace(kube_api):
    """The operator's own namespace (the release's), with the empty certificate Secret the chart creates
    there: the replicas keep their shared certificate in it (get/patch by name, never create)."""
    core = client.CoreV1Api(kube_api)
    name = chart_identity.NAMESPACE
    try:  # made by the first operator started under the chart identity, or here
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    except ApiException as err:
        if err.status != 409:
            raise
    secret = client.V1Secret(metadata=client.V1ObjectMeta(name=WEBHOOK_SECRET), type="Opaque")
    core.create_namespaced_secret(name, secret)
    yield name
    core.delete_namespaced_secret(WEBHOOK_SECRET, name)


@pytest.fixture(scope="module")
def webhook(fakes, control_plane, kube_api, helm_bin, webhook_namespace):
    port = _free_port()
    install_webhook(kube_api, helm_bin, port)
    env = {**fakes[0], **webhook_env(port, webhook_namespace)}
    op = OperatorProcess(control_plane.kubeconfig, env=env).start()
    try:
        wait_served(kube_api)
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
    (
        "byo-unassigned",
        {"onlineStore": {"memorystore": {"existingInstance": "fs-victim-prod-1a2b3c4d"}}},
        ["spec.onlineStore.memorystore.existingInstance", "byoAssignments"],
    ),
    (
        "squat",
        {"onlineStore": {"memorystore": {"instanceId": "fs-victim-prod-1a2b3c4d"}}},
        ["spec.onlineStore.memorystore.instanceId", "remove the field"],
    ),
    (
        "no-tls",
        {"onlineStore": {"memorystore": {"transitEncryption": False}}},
        ["spec.onlineStore.memorystore.transitEncryption", "memorystoreSecurity.requireTls"],
    ),
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
    # issue 29: these two passed the webhook and were then silently declined by the backend
    for field, value in (("redisVersion", "REDIS_7_0"), ("authEnabled", False)):
        refused = kubectl_apply(
            kubectl_bin,
            manifest(
                "fine",
                namespace,
                gcp={"serviceAccount": gsa},
                onlineStore={"memorystore": {"tier": "BASIC", "memorySizeGb": 2, field: value}},
            ),
        )
        assert refused.returncode != 0, refused.stdout
        assert "denied the request" in refused.stderr, refused.stderr
        assert f"spec.onlineStore.memorystore.{field}: cannot be changed after creation" in refused.stderr, (
            refused.stderr
        )
    stored = client.CustomObjectsApi(kube_api).get_namespaced_custom_object(G, V, namespace, P, "fine")
    kept = stored["spec"]["onlineStore"]["memorystore"]  # the CRD's defaults, as created
    assert (kept.get("redisVersion", "REDIS_7_2"), kept.get("authEnabled", True)) == ("REDIS_7_2", True)
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


FINALIZER = "featurestore.kubeflow.org/finalizer"


def test_a_tightened_policy_never_blocks_clean_up(
    webhook, fakes, control_plane, kube_api, helm_bin, kubectl_bin, short_namespace, webhook_namespace
):
    """Issue 25: a store admitted under a loose policy (3 feature server replicas, the default
    ceiling 20) gets the operator's finalizer (its Memorystore instance needs clean-up); the admin
    tightens the policy to maxReplicas 2 and restarts the operator. Then a user's metadata-only
    update passes, a spec change is still refused (naming the rule), and deleting the store
    completes: the operator's finalizer removal (a metadata-only update) passes the webhook.
    Before: the finalizer removal got 422 from the webhook and the store never went away."""
    webhook.stop()  # this test runs its own operators (loose, then tight)
    env, ms, _, _ = fakes
    namespace = short_namespace
    gsa = f"feast-{namespace}@{PROJECT}.iam.gserviceaccount.com"
    crd = client.CustomObjectsApi(kube_api)
    port = _free_port()
    install_webhook(kube_api, helm_bin, port)
    loose = {**env, **webhook_env(port, webhook_namespace)}
    try:
        with OperatorProcess(control_plane.kubeconfig, env=loose) as op:
            wait_served(kube_api)
            spec = {
                "gcp": {"serviceAccount": gsa},
                "onlineStore": {"memorystore": {"tier": "BASIC"}},
                "featureServer": {"replicas": 3},
            }
            assert kubectl_apply(kubectl_bin, manifest("kept", namespace, **spec)).returncode == 0
            wait_for(
                lambda: (
                    FINALIZER
                    in crd.get_namespaced_custom_object(G, V, namespace, P, "kept")["metadata"].get("finalizers", [])
                ),
                timeout=90,
                interval=0.5,
                what=f"the operator's finalizer (log: {op.log_path})",
            )
        tight = {**loose, "FSO_POLICY": '{"maxReplicas": 2}'}
        with OperatorProcess(control_plane.kubeconfig, env=tight) as op:
            wait_served(kube_api)
            # the tightened webhook answers: a new store like it is refused ...
            new = kubectl_apply(kubectl_bin, manifest("new", namespace, **spec))
            assert new.returncode != 0 and "maxReplicas" in new.stderr, new.stderr
            # ... a spec change of the old one too, naming the field and the rule ...
            with pytest.raises(ApiException) as refused:
                crd.patch_namespaced_custom_object(
                    G, V, namespace, P, "kept", {"spec": {"featureServer": {"replicas": 4}}}
                )
            assert refused.value.status in (400, 422) and "spec.featureServer.replicas" in refused.value.body
            # ... but a metadata-only update by the user passes (labels, annotations, finalizers)
            crd.patch_namespaced_custom_object(
                G,
                V,
                namespace,
                P,
                "kept",
                {
                    "metadata": {
                        "labels": {"team": "a"},
                        "annotations": {"note": "x"},
                        "finalizers": [FINALIZER, "example.com/hold"],
                    }
                },
            )
            crd.patch_namespaced_custom_object(G, V, namespace, P, "kept", {"metadata": {"finalizers": [FINALIZER]}})
            # deleting completes: the operator cleans up and removes its finalizer through the webhook
            crd.delete_namespaced_custom_object(G, V, namespace, P, "kept")

            def gone() -> bool:
                try:
                    crd.get_namespaced_custom_object(G, V, namespace, P, "kept")
                    return False
                except ApiException as err:
                    return err.status == 404

            wait_for(gone, timeout=90, interval=0.5, what=f"the store deleted (finalizer removed; log: {op.log_path})")
            log = op.log_text()
            assert "denied the request" not in log, log[-3000:]
            assert not [i for i in ms.instances() if dict(i.labels).get("featurestore-namespace") == namespace]
    finally:
        _delete_webhook(kube_api)
