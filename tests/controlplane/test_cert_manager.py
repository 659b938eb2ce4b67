"""cert-manager issuance on the real API server with the real operator and cert-manager's real
Certificate CRD (tests/support/crds/certificates.cert-manager.io.yaml): the admin chose an issuer
(FSO_TLS_ISSUER), so a store with spec.tls gets a Certificate the API server validates against
cert-manager's schema, its servers wait (CertificatePending) until the Secret is issued, then mount
it, clients get the issuer's CA, and a renewed certificate rolls the feature server exactly once.
cert-manager cannot run here: the test is the issuer (it writes the Secret cert-manager would write,
signed by a test CA). The real Feast server serving HTTPS with such a Secret:
tests/datapath/test_cert_manager_tls.py."""

from __future__ import annotations

import base64
import time

from kubernetes import client

from tests.support.issuer import TestIssuer
from tests.support.kube import OWNER_LABEL, G, P, V, condition, fs_manifest, get_fs
from tests.support.operator_process import OperatorProcess
from tests.support.rollout import ANNOTATION
from tests.support.waiting import wait_for

ISSUER = "ClusterIssuer/test-ca"
COMPONENT = "app.kubernetes.io/component"


def _idle(operator: OperatorProcess) -> bool:
    before = operator.reconciles()
    time.sleep(3)  # passes end within a second here
    return operator.reconciles() == before


def _b64(data: dict[str, str]) -> dict[str, str]:
    return {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}


def _issued(custom: client.CustomObjectsApi, namespace: str, revision: int) -> None:
    """What cert-manager does after writing the Secret (its issuing controller updates the Secret
    first, then the Certificate's status.revision; the readiness controller sets Ready and notAfter:
    cert-manager v1.x pkg/controller/certificates/issuing and readiness)."""
    status = {
        "revision": revision,
        "notAfter": "2099-01-01T00:00:00Z",
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Ready",
                "message": "issued",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }
        ],
    }
    custom.patch_namespaced_custom_object_status(
        "cert-manager.io", "v1", namespace, "certificates", "cm-feast-servers", {"status": status}
    )


def test_servers_get_their_certificate_from_cert_manager(control_plane, featurestore_crd, kube_api, namespace, kubelet):
    core, apps = client.CoreV1Api(kube_api), client.AppsV1Api(kube_api)
    custom = client.CustomObjectsApi(kube_api)
    # no resync during the test: issuance and renewal must be noticed from watch events (the
    # Certificate's: the operator does not watch Secrets)
    env = {"FSO_RESYNC_SECONDS": "3600", "FSO_TLS_ISSUER": ISSUER}
    with OperatorProcess(control_plane.kubeconfig, env=env, args=["--namespace", namespace]) as operator:
        custom.create_namespaced_custom_object(G, V, namespace, P, fs_manifest("cm", tls={"enabled": True}))

        # The Certificate, accepted by cert-manager's own CRD schema.
        cert = wait_for(
            lambda: custom.get_namespaced_custom_object(
                "cert-manager.io", "v1", namespace, "certificates", "cm-feast-servers"
            ),
            timeout=90,
            what="Certificate",
        )
        spec = cert["spec"]
        assert spec["issuerRef"] == {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": "test-ca"}
        assert spec["secretName"] == "cm-feast-cert"
        assert f"cm-feature-server.{namespace}.svc.cluster.local" in spec["dnsNames"]

        # Not issued yet: no server runs without its certificate, and the condition says why.
        pending = wait_for(
            lambda: (
                (c := condition(get_fs(kube_api, namespace, "cm"), "FeatureServer"))
                and c["reason"] == "CertificatePending"
                and c
            ),
            timeout=90,
            what="CertificatePending",
        )
        assert "cm-feast-cert" in pending["message"]
        servers = apps.list_namespaced_deployment(namespace, label_selector=f"{COMPONENT}=feature-server")
        assert not servers.items

        # The issuer writes the Secret, labelled as spec.secretTemplate says (cert-manager does):
        # servers mount it, clients get the issuer's CA.
        assert spec["secretTemplate"]["labels"]["featurestore.kubeflow.org/name"] == "cm"
        ca = TestIssuer()
        issued = _b64(ca.secret_data(spec["dnsNames"]))
        core.create_namespaced_secret(
            namespace,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name="cm-feast-cert", labels=spec["secretTemplate"]["labels"]),
                type="kubernetes.io/tls",
                data=issued,
            ),
        )
        _issued(custom, namespace, 1)
        dep = wait_for(
            lambda: apps.read_namespaced_deployment("cm-feature-server", namespace),
            timeout=90,
            what="feature server Deployment after issuance",
        )
        volumes = {v.name: v for v in dep.spec.template.spec.volumes}
        assert volumes["serving-tls"].secret.secret_name == "cm-feast-cert"
        client_cm = core.read_namespaced_config_map("cm-feast-client", namespace)
        assert client_cm.data["ca.crt"] == ca.ca_pem
        assert "https://" in client_cm.data["feature_store.yaml"]
        assert not core.list_namespaced_secret(namespace, field_selector="metadata.name=cm-feast-tls").items, (
            "the operator kept its own CA although cert-manager was chosen"
        )

        # Renewal: cert-manager writes a new key pair into the Secret, then the Certificate's status;
        # the server rolls once, at once (the resync is an hour away): the Certificate's watch event
        # wakes the store, which reads the Secret by name.
        # Ready, so no pass is due before the resync; wait until the operator is idle
        wait_for(
            lambda: (
                kubelet.run(namespace, f"{OWNER_LABEL}=cm") >= 0
                and get_fs(kube_api, namespace, "cm")["status"].get("phase") == "Ready"
            ),
            timeout=90,
            interval=1,
            what="Ready",
        )
        wait_for(lambda: _idle(operator), timeout=60, what="no reconcile pass for 3 s")
        dep = apps.read_namespaced_deployment("cm-feature-server", namespace)
        generation, digest = dep.metadata.generation, dep.spec.template.metadata.annotations[ANNOTATION]
        core.patch_namespaced_secret("cm-feast-cert", namespace, {"data": _b64(ca.secret_data(spec["dnsNames"]))})
        _issued(custom, namespace, 2)
        dep = wait_for(
            lambda: (
                (d := apps.read_namespaced_deployment("cm-feature-server", namespace)).metadata.generation > generation
                and d
            ),
            timeout=20,
            interval=0.5,
            what="rolled on renewal",
        )
        assert dep.metadata.generation == generation + 1
        assert dep.spec.template.metadata.annotations[ANNOTATION] != digest
        # The passes the roll itself wakes (Deployment status events) do not roll it again. Proof, not
        # a pause: once the Deployment controller has observed the roll, a pass forced after that (a
        # spec change no server reads: the CronJob's schedule) runs with the renewed Secret and every
        # event before it; its observedGeneration says it has finished.
        wait_for(
            lambda: (
                apps.read_namespaced_deployment_status("cm-feature-server", namespace).status.observed_generation
                == generation + 1
            ),
            timeout=60,
            interval=0.5,
            what="the Deployment controller observed the roll",
        )
        custom.patch_namespaced_custom_object(
            G, V, namespace, P, "cm", {"spec": {"materialization": {"schedule": "7 * * * *"}}}
        )
        forced = get_fs(kube_api, namespace, "cm")
        assert forced is not None
        wait_for(
            lambda: (
                (get_fs(kube_api, namespace, "cm") or {}).get("status", {}).get("observedGeneration")
                == forced["metadata"]["generation"]
            ),
            timeout=60,
            interval=0.5,
            what="a pass after the roll finished",
        )
        assert apps.read_namespaced_deployment("cm-feature-server", namespace).metadata.generation == generation + 1
