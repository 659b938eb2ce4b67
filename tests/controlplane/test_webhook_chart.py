"""The admission webhook as the chart installs it (issue 25), end to end on a real API server that
routes to Services the way a cluster does (``--enable-aggregator-routing``: the API server calls a
webhook Service at one of its Endpoints, verifying the certificate for ``NAME.NAMESPACE.svc``).

* The ValidatingWebhookConfiguration comes from the chart (failurePolicy, sideEffects None,
  CREATE/UPDATE of featurestores only, clientConfig.service = the chart's Service); the operator
  never creates one: under the chart's ServiceAccount token it may not (no `create` on validating
  or mutating webhook configurations), and it needs only get/patch on that one object by name.
* Without cert-manager, two operator replicas (leader election, the chart's own environment) share
  ONE self-signed certificate kept in the chart's Secret; they write its caBundle.
* Every replica serves: the Service's Endpoints name only the STAND-BY replica, and the API server
  still gets answers (policy refusals through `kubectl`); the leader answers the same review with
  the same certificate.

No kube-proxy and no pods run here: the test writes the Service's Endpoints (the endpoints
controller is off on this control plane) at this machine's non-loopback address, where the
operator processes listen (Endpoints may not hold loopback addresses).
"""

from __future__ import annotations

import base64
import json
import socket
import ssl
import subprocess
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes import config as kube_config
from kubernetes.client.rest import ApiException

from tests.support.controlplane import CONTROLLERS, ControlPlane
from tests.support.helm import CHART, find, forbidden_lines, helm
from tests.support.kube import G, P, V
from tests.support.operator_process import OperatorProcess
from tests.support.prerequisites import missing
from tests.support.process import free_port
from tests.support.rbac import can
from tests.support.waiting import wait_for
from tests.support.webhook import ca_bundle

NAMESPACE = "fso-system"
RELEASE = "fso"


def host_address() -> str | None:
    """A non-loopback IPv4 address of this machine (the API server dials it; Endpoints refuse loopback)."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True)
    for line in out.stdout.splitlines():
        parts = line.split()
        if "inet" in parts:
            return parts[parts.index("inet") + 1].split("/")[0]
    return None


@pytest.fixture(scope="module")
def routed(control_plane) -> Iterator[ControlPlane]:
    """A control plane whose API server calls webhook Services at their Endpoints."""
    cp = ControlPlane(
        control_plane.binaries,
        apiserver_args=["--enable-aggregator-routing=true"],
        controllers=[c for c in CONTROLLERS if c not in ("endpoint", "endpointslice")],
    )
    cp.start()
    try:
        yield cp
    finally:
        cp.stop()


def api_for(cp: ControlPlane) -> client.ApiClient:
    return kube_config.new_client_from_config(config_file=cp.kubeconfig)


def chart_env(dep: dict[str, Any], port: int, identity: str) -> dict[str, str]:
    env = {e["name"]: e["value"] for e in dep["spec"]["template"]["spec"]["containers"][0]["env"] if "value" in e}
    env = {k: v for k, v in env.items() if k not in ("FSO_HEALTH_PORT", "FSO_METRICS_PORT", "HOME")}
    return {**env, "FSO_WEBHOOK_PORT": str(port), "POD_NAME": identity, "POD_NAMESPACE": NAMESPACE}


def review(port: int, cadata: bytes, server_name: str, obj: dict[str, Any]) -> dict[str, Any]:
    """POST an AdmissionReview to one replica (on loopback), verifying its certificate for the
    Service's DNS name as the API server does."""
    ctx = ssl.create_default_context(cadata=cadata.decode())
    payload = json.dumps(
        {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {"uid": "direct-1", "operation": "CREATE", "object": obj},
        }
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_name) as tls:
            tls.sendall(
                b"POST /validate HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n" % (server_name.encode(), len(payload)) + payload
            )
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
    head, _, content = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    return json.loads(content)


def test_chart_webhook_served_by_every_replica_through_the_service(routed, helm_bin, tmp_path):
    address = host_address()
    if address is None:
        missing("no non-loopback IPv4 address: the API server cannot reach a local webhook through Endpoints")
    api = api_for(routed)
    core, adm = client.CoreV1Api(api), client.AdmissionregistrationV1Api(api)
    helm(
        helm_bin,
        "install",
        RELEASE,
        str(CHART),
        "-n",
        NAMESPACE,
        "--create-namespace",
        "--set",
        "replicaCount=2",
        "--set",
        "policy.maxReplicas=3",
        "--set",
        "resyncSeconds=10",
        kubeconfig=routed.kubeconfig,
    )
    docs = [
        d
        for d in yaml.safe_load_all(
            helm(helm_bin, "get", "manifest", RELEASE, "-n", NAMESPACE, kubeconfig=routed.kubeconfig).stdout
        )
        if d
    ]
    [dep] = find(docs, "Deployment")
    [vwc_doc] = find(docs, "ValidatingWebhookConfiguration")
    name = vwc_doc["metadata"]["name"]
    [svc] = [d for d in find(docs, "Service") if d["metadata"]["name"] == name]

    # The configuration is the chart's, in the cluster before any operator ran, without a caBundle.
    live = adm.read_validating_webhook_configuration(name)
    [hook] = live.webhooks
    assert hook.failure_policy == "Fail" and hook.side_effects == "None" and hook.match_policy == "Equivalent"
    assert [(r.api_groups, r.operations, r.resources) for r in hook.rules] == [
        ([G], ["CREATE", "UPDATE"], ["featurestores"])
    ]
    assert (hook.client_config.service.namespace, hook.client_config.service.name) == (
        NAMESPACE,
        svc["metadata"]["name"],
    )
    assert hook.client_config.ca_bundle is None
    # the Service selects every operator pod (the Deployment's own selector: no leader label)
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]

    # The operator's ServiceAccount may not create any webhook configuration, nor touch another one.
    [sa] = find(docs, "ServiceAccount")
    user = f"system:serviceaccount:{NAMESPACE}:{sa['metadata']['name']}"
    group = "admissionregistration.k8s.io"
    for kind in ("validatingwebhookconfigurations", "mutatingwebhookconfigurations"):
        assert not can(api, user, "create", kind, group), kind
        assert not can(api, user, "patch", kind, group, name="someone-elses"), kind
    assert not can(api, user, "patch", "mutatingwebhookconfigurations", group, name=name)
    assert can(api, user, "patch", "validatingwebhookconfigurations", group, name=name)

    # Endpoints of the chart's Service: this machine's address, at the STAND-BY replica's port.
    ports = [free_port(), free_port()]
    kubeconfig = routed.service_account_kubeconfig(NAMESPACE, sa["metadata"]["name"], str(tmp_path / "sa.kubeconfig"))
    args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    procs: list[OperatorProcess] = []
    coordination = client.CoordinationV1Api(api)
    lease = dep["metadata"]["name"]

    def holder() -> str | None:
        try:
            return coordination.read_namespaced_lease(lease, NAMESPACE).spec.holder_identity or None
        except ApiException as err:
            if err.status == 404:
                return None
            raise

    try:
        for i, port in enumerate(ports):
            procs.append(
                OperatorProcess(
                    kubeconfig, env=chart_env(dep, port, f"replica-{i}"), args=args, standalone=False
                ).start()
            )
            wait_for(lambda: holder() is not None, timeout=60, what="a Lease holder")
        assert holder() == "replica-0", "the first replica leads; replica-1 stands by"
        core.create_namespaced_endpoints(
            NAMESPACE,
            {
                "metadata": {"name": svc["metadata"]["name"]},
                "subsets": [{"addresses": [{"ip": address}], "ports": [{"name": "https-webhook", "port": ports[1]}]}],
            },
        )

        bundle = wait_for(
            lambda: ca_bundle(api, name), timeout=60, interval=0.5, what="the caBundle written by a replica"
        )
        secret = core.read_namespaced_secret(f"{name}-tls", NAMESPACE)
        assert base64.b64decode(secret.data["tls.crt"]) == bundle, "the caBundle is the certificate kept in the Secret"

        # The API server reviews through the Service -> the stand-by replica.
        core.create_namespace({"metadata": {"name": "team-a"}})
        custom = client.CustomObjectsApi(api)

        def store(name: str, replicas: int) -> dict[str, Any]:
            return {
                "apiVersion": f"{G}/{V}",
                "kind": "FeatureStore",
                "metadata": {"name": name},
                "spec": {"project": name, "featureServer": {"replicas": replicas}},
            }

        with pytest.raises(ApiException) as refused:
            custom.create_namespaced_custom_object(G, V, "team-a", P, store("big", 10))
        assert "denied the request" in refused.value.body and "maxReplicas" in refused.value.body, refused.value.body
        custom.create_namespaced_custom_object(G, V, "team-a", P, store("fine", 2))
        assert holder() == "replica-0", "the answers came from the stand-by"

        # Both replicas are ready (/readyz) because both serve the webhook; the leader answers too,
        # with the same certificate (verified for the Service's DNS name).
        for proc in procs:
            with urllib.request.urlopen(f"http://127.0.0.1:{proc.health_port}/readyz", timeout=5) as r:
                assert json.loads(r.read())["webhook"] is True
        server_name = f"{svc['metadata']['name']}.{NAMESPACE}.svc"
        for port in ports:
            answer = review(
                port, bundle, server_name, store("big", 10) | {"metadata": {"name": "big", "namespace": "team-a"}}
            )
            assert answer["response"]["allowed"] is False and "maxReplicas" in answer["response"]["status"]["message"]

        # helm upgrade keeps the kept certificate and the caBundle (or the replicas restore it).
        helm(
            helm_bin,
            "upgrade",
            RELEASE,
            str(CHART),
            "-n",
            NAMESPACE,
            "--reuse-values",
            "--set",
            "resyncSeconds=11",
            kubeconfig=routed.kubeconfig,
        )
        kept = core.read_namespaced_secret(f"{name}-tls", NAMESPACE).data
        assert kept is not None and base64.b64decode(kept["tls.crt"]) == bundle, "helm upgrade emptied the Secret"
        wait_for(
            lambda: ca_bundle(api, name) == bundle, timeout=60, interval=0.5, what="the caBundle after helm upgrade"
        )
        with pytest.raises(ApiException) as again:
            custom.create_namespaced_custom_object(G, V, "team-a", P, store("big", 10))
        assert "maxReplicas" in again.value.body, again.value.body

        # Deleting passes (never sent to the webhook) even with the webhook unreachable.
        core.delete_namespaced_endpoints(svc["metadata"]["name"], NAMESPACE)
        custom.delete_namespaced_custom_object(G, V, "team-a", P, "fine")
    finally:
        for proc in procs:
            proc.stop()
        helm(helm_bin, "uninstall", RELEASE, "-n", NAMESPACE, "--wait", kubeconfig=routed.kubeconfig, check=False)
    for proc in procs:
        bad = forbidden_lines(proc.log_text())
        assert not bad, "RBAC denials under the chart's ServiceAccount:\n" + "\n".join(bad[:20])
    with pytest.raises(ApiException):
        adm.read_validating_webhook_configuration(name)  # uninstalled with the release: nothing left behind
