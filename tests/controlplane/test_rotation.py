"""Secret rotation on the real API server with the real operator (issue 17): a changed Redis Secret, or a
replaced serving TLS/CA Secret, changes the feature server's pod template exactly once (the
Deployment's generation goes up by one and stays there through later passes and resyncs), and the
Secret data itself never appears in the pod template."""

from __future__ import annotations

import base64
import json

from kubernetes import client

from tests.support.kube import G, P, V, fs_manifest
from tests.support.rollout import ANNOTATION, rolled_once
from tests.support.waiting import wait_for

PASSWORDS = ("rotation-pw-one-7d1c0a", "rotation-pw-two-94be3f")


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def _redis_secret(password: str) -> dict[str, str]:
    return {"host": _b64("redis.example.internal"), "port": _b64("6379"), "password": _b64(password)}


def _template_text(dep: client.V1Deployment) -> str:
    return json.dumps(client.ApiClient().sanitize_for_serialization(dep.spec.template))


def test_rotated_redis_and_tls_secrets_roll_the_feature_server_once(operator, kube_api, namespace):
    core, apps = client.CoreV1Api(kube_api), client.AppsV1Api(kube_api)
    core.create_namespaced_secret(
        namespace, client.V1Secret(metadata=client.V1ObjectMeta(name="shared-redis"), data=_redis_secret(PASSWORDS[0]))
    )
    client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
        G,
        V,
        namespace,
        P,
        fs_manifest("rot", onlineStore={"external": {"secretRef": {"name": "shared-redis"}}}, tls={"enabled": True}),
    )
    name = "rot-feature-server"
    wait_for(lambda: apps.read_namespaced_deployment(name, namespace), timeout=90, what="feature server Deployment")
    operator.wait_reconciles(2)  # settled: whatever the first passes wrote is written
    dep = apps.read_namespaced_deployment(name, namespace)
    generation, digest = dep.metadata.generation, dep.spec.template.metadata.annotations[ANNOTATION]

    # 1. The Redis AUTH string is rotated in the user's Secret.
    core.patch_namespaced_secret("shared-redis", namespace, {"data": _redis_secret(PASSWORDS[1])})
    dep = rolled_once(operator, apps, namespace, name, generation, digest)
    generation, digest = dep.metadata.generation, dep.spec.template.metadata.annotations[ANNOTATION]

    # 2. The serving TLS Secret (CA and key pair) is replaced: deleted, the operator issues a new CA.
    old_ca = core.read_namespaced_secret("rot-feast-tls", namespace).data["ca.crt"]
    core.delete_namespaced_secret("rot-feast-tls", namespace)
    dep = rolled_once(operator, apps, namespace, name, generation, digest)
    tls = core.read_namespaced_secret("rot-feast-tls", namespace).data
    assert tls["ca.crt"] != old_ca

    text = _template_text(dep)
    for password in PASSWORDS:
        assert password not in text and _b64(password) not in text
    for key, value in tls.items():
        pem = base64.b64decode(value).decode()
        body = [line for line in pem.splitlines() if len(line) >= 40 and "-----" not in line]
        leaked = value in text or any(line in text for line in body)
        assert not leaked, f"{key} of the TLS Secret in the pod template"
