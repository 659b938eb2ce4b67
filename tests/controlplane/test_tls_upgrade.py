"""The serving-TLS Secret of an older release (a CA key in the tenant's namespace, an unconstrained CA)
is replaced by the real operator on the real API server: the key is gone from the Secret, the old
CA is not trusted any more, the new CA is name-constrained, and the feature server rolls once."""

from __future__ import annotations

import base64
import datetime as dt

from cryptography import x509
from featurestore_operator.backends.certificates import Issuer, issue, new_key, pem_cert, pem_key
from kubernetes import client

from tests.support.kube import G, P, V, fs_manifest
from tests.support.rollout import ANNOTATION, rolled_once
from tests.support.waiting import wait_for


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def _legacy(names: list[str]) -> dict[str, str]:
    now = dt.datetime.now(dt.UTC)
    ca_key, key = new_key(), new_key()
    ca = issue(ca_key, "legacy feast CA", now=now, validity=dt.timedelta(days=3650), ca=True)
    leaf = issue(
        key, names[-1], now=now, validity=dt.timedelta(days=365), names=names, issuer=Issuer(ca_key, ca.subject)
    )
    return {"ca.key": pem_key(ca_key), "ca.crt": pem_cert(ca), "tls.crt": pem_cert(leaf), "tls.key": pem_key(key)}


def test_an_older_release_tls_secret_loses_its_ca_key(operator, control_plane, kube_api, namespace):
    core, apps = client.CoreV1Api(kube_api), client.AppsV1Api(kube_api)
    client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
        G, V, namespace, P, fs_manifest("up", tls={"enabled": True})
    )
    name = "up-feature-server"
    wait_for(lambda: apps.read_namespaced_deployment(name, namespace), timeout=90, what="feature server Deployment")
    operator.wait_reconciles(2)
    current = core.read_namespaced_secret("up-feast-tls", namespace)
    assert "ca.key" not in current.data, "the operator stores no CA key"
    leaf = x509.load_pem_x509_certificate(base64.b64decode(current.data["tls.crt"]))
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    dep = apps.read_namespaced_deployment(name, namespace)
    generation, digest = dep.metadata.generation, dep.spec.template.metadata.annotations[ANNOTATION]

    # what an older release wrote, under the operator's own field manager (as its apply did)
    legacy = _legacy(names)
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "up-feast-tls", "namespace": namespace},
        "data": {k: _b64(v) for k, v in legacy.items()},
    }
    control_plane.request(
        "PATCH",
        f"/api/v1/namespaces/{namespace}/secrets/up-feast-tls?fieldManager=featurestore-operator&force=true",
        body,
        content_type="application/apply-patch+yaml",
    )

    rolled_once(operator, apps, namespace, name, generation, digest)
    data = {
        k: base64.b64decode(v).decode() for k, v in core.read_namespaced_secret("up-feast-tls", namespace).data.items()
    }
    assert "ca.key" not in data
    assert legacy["ca.crt"] not in data["ca.crt"] and data["tls.crt"] != legacy["tls.crt"]
    [ca] = x509.load_pem_x509_certificates(data["ca.crt"].encode())
    assert ca.extensions.get_extension_for_class(x509.NameConstraints).critical
    client_cm = core.read_namespaced_config_map("up-feast-client", namespace)
    assert client_cm.data["ca.crt"] == data["ca.crt"], "clients get the new CA"
