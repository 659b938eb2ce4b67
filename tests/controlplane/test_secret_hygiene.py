"""Secret hygiene, proven by a scanner: the Redis AUTH string and the TLS CA of a real Memorystore-fake
instance (real redis-server with TLS + AUTH), the generated password of an in-cluster Redis and the
password/CA of a user's external-Redis Secret appear in no object of the namespace except the Secrets
meant to hold them - no ConfigMap, FeatureStore status, Event, literal env value, annotation - and in
no operator log line. Every namespaced resource type the API server serves is listed and scanned.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.error

from kubernetes import client

from tests.support.gcs_emulator import GcsEmulator
from tests.support.iam_fake import GcsBucketOverlay
from tests.support.kube import G, P, V, list_fs
from tests.support.kubelet import FakeKubelet
from tests.support.memorystore_fake import MemorystoreFake
from tests.support.operator_process import OperatorProcess
from tests.support.waiting import wait_for

PROJECT, REGION = "test-project", "us-central1"
USER_PASSWORD = "user-pw-5c1f3b9d2e7a4b60"
USER_CA = "-----BEGIN CERTIFICATE-----\nMIIBuserCAthatMustNeverLeak0123456789abcdefABCDEF\n-----END CERTIFICATE-----\n"


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def namespaced_resources(cp) -> list[str]:
    """API paths of every namespaced, listable resource the server serves (preferred versions)."""
    paths = []
    groups = ["/api/v1"] + [
        f"/apis/{g['preferredVersion']['groupVersion']}" for g in cp.request("GET", "/apis")["groups"]
    ]
    for base in groups:
        for r in cp.request("GET", base).get("resources", []):
            if r.get("namespaced") and "/" not in r["name"] and "list" in r.get("verbs", []):
                paths.append(f"{base}/namespaces/{{ns}}/{r['name']}")
    return paths


def still_served(cp, path: str) -> bool:
    """Whether discovery still lists the resource of ``path`` (a CRD removed meanwhile is not)."""
    base, plural = path.split("/namespaces/")[0], path.rsplit("/", 1)[-1]
    try:
        return any(r["name"] == plural for r in cp.request("GET", base).get("resources", []))
    except urllib.error.HTTPError as err:
        if err.code == 404:
            return False
        raise


def list_items(cp, path: str) -> list[dict] | None:
    """Every object of one resource type; None only when the type is genuinely no longer served.
    Any other failure to list fails the scan: an unlisted type is an unscanned type."""
    try:
        return cp.request("GET", path).get("items", [])
    except urllib.error.HTTPError as err:
        if err.code == 404 and not still_served(cp, path):
            return None
        raise AssertionError(f"cannot list {path} to scan it: HTTP {err.code} {err.reason}") from None


def needles(secret: str) -> list[str]:
    """Forms a leak could take: the value, its base64, and for PEMs each long base64 line."""
    out = [secret, _b64(secret)]
    if "BEGIN CERTIFICATE" in secret:
        out += [line for line in secret.splitlines() if len(line) >= 40 and "CERTIFICATE" not in line]
    return out


def test_no_secret_outside_secrets_anywhere(control_plane, featurestore_crd, kube_api, namespace):
    core, custom = client.CoreV1Api(kube_api), client.CustomObjectsApi(kube_api)
    with MemorystoreFake(op_delay=0.3, real_redis=True) as ms, GcsEmulator() as gcs, GcsBucketOverlay(gcs) as overlay:
        env = {
            "FSO_MEMORYSTORE_ENDPOINT": ms.endpoint,
            "FSO_GCP_PROJECT": PROJECT,
            "FSO_GCP_REGION": REGION,
            "FSO_DEFAULT_PROVIDER": "gcp",
            "FSO_RESYNC_SECONDS": "10",
            "FSO_DEBUG": "1",
            **overlay.env(),
        }
        op = OperatorProcess(
            control_plane.kubeconfig, env=env, args=["--namespace", namespace]
        ).start()  # debug logging: the most verbose it gets
        try:
            core.create_namespaced_secret(
                namespace,
                client.V1Secret(
                    metadata=client.V1ObjectMeta(name="my-redis"),
                    data={
                        "host": _b64("redis.example.com"),
                        "port": _b64("6380"),
                        "password": _b64(USER_PASSWORD),
                        "ca.crt": _b64(USER_CA),
                    },
                ),
            )
            stores = {
                "hyg": {"project": "hyg"},
                "hyg-local": {"project": "hyg", "provider": "local"},
                "hyg-ext": {
                    "project": "hyg",
                    "provider": "local",
                    "onlineStore": {"external": {"secretRef": {"name": "my-redis"}, "tls": True}},
                },
            }
            for name, spec in stores.items():
                custom.create_namespaced_custom_object(
                    G,
                    V,
                    namespace,
                    P,
                    {"apiVersion": f"{G}/{V}", "kind": "FeatureStore", "metadata": {"name": name}, "spec": spec},
                )
            kubelet = FakeKubelet(kube_api)

            def all_ready():
                kubelet.run(
                    namespace,
                    "app.kubernetes.io/managed-by=featurestore-operator,app.kubernetes.io/component!=feature-repo",
                )
                return all(
                    (custom.get_namespaced_custom_object(G, V, namespace, P, n).get("status") or {}).get("phase")
                    == "Ready"
                    for n in stores
                )

            wait_for(all_ready, timeout=180, interval=1, what="the three stores Ready")
            # A transition that emits Events with messages: resize the instance, wait for Ready again.
            custom.patch_namespaced_custom_object(
                G, V, namespace, P, "hyg", {"spec": {"onlineStore": {"memorystore": {"memorySizeGb": 2}}}}
            )
            wait_for(
                lambda: ms.instances()[0].memory_size_gb == 2 and all_ready(),
                timeout=150,
                interval=1,
                what="resized and Ready",
            )

            instance = ms.instances()[0]
            auth = ms.auth_string(instance.name)
            ca = instance.server_ca_certs[0].cert
            local_pw = base64.b64decode(
                core.read_namespaced_secret("hyg-local-online-store", namespace).data["password"]
            ).decode()
            assert auth and ca.startswith("-----BEGIN CERTIFICATE-----") and len(local_pw) >= 32
            online = core.read_namespaced_secret("hyg-online-store", namespace)
            assert base64.b64decode(online.data["password"]).decode() == auth, "the Secret holds the real AUTH string"
            assert base64.b64decode(online.data["ca.crt"]).decode().strip() == ca.strip()
            secrets = {
                "memorystore AUTH": auth,
                "memorystore CA": ca,
                "in-cluster password": local_pw,
                "user password": USER_PASSWORD,
                "user CA": USER_CA,
            }
            allowed_holders = {
                ("secrets", "hyg-online-store"),
                ("secrets", "hyg-local-online-store"),
                ("secrets", "my-redis"),
            }

            scanned, findings = 0, []
            kinds_seen: dict[str, int] = {}
            types = namespaced_resources(control_plane)
            listed = 0
            for tmpl in types:
                path = tmpl.format(ns=namespace)
                items = list_items(control_plane, path)
                if items is None:
                    continue
                listed += 1
                plural = path.rsplit("/", 1)[-1]
                for item in items:
                    scanned += 1
                    kinds_seen[plural] = kinds_seen.get(plural, 0) + 1
                    if (plural, item["metadata"]["name"]) in allowed_holders:
                        continue
                    text = json.dumps(item)
                    for what, secret in secrets.items():
                        if any(n in text for n in needles(secret)):
                            findings.append(f"{what} in {plural}/{item['metadata']['name']}")
            # Literal env values specifically (the scan above covers them; this names the rule).
            for dep in client.AppsV1Api(kube_api).list_namespaced_deployment(namespace).items:
                for c in dep.spec.template.spec.containers:
                    for e in c.env or []:
                        if e.name == "REDIS_PASSWORD":
                            assert e.value is None and e.value_from.secret_key_ref, (
                                f"{dep.metadata.name}: literal password env"
                            )
            log = op.log_text()
            for what, secret in secrets.items():
                if any(n in log for n in needles(secret)):
                    findings.append(f"{what} in the operator log")
            assert not findings, findings
            assert kinds_seen.get("configmaps") and kinds_seen.get("events") and kinds_seen.get("featurestores")
            assert listed > 20, f"listed only {listed} of {len(types)} resource types"
            # Per-object log lines are JSON and say which object they are about.
            lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
            assert lines and all("message" in line for line in lines)
            tagged = [
                line
                for line in lines
                if (line.get("object") or {}).get("name") in stores
                or re.search(rf"{namespace}/hyg", line.get("message", ""))
            ]
            assert tagged, "no log line names a FeatureStore"
            print(
                f"\n[hygiene] scanned {scanned} objects of {len(kinds_seen)} resource types in {namespace} "
                f"({', '.join(f'{k}={v}' for k, v in sorted(kinds_seen.items()))}) and {len(log.splitlines())} log "
                f"lines (debug level) for {len(secrets)} secrets: 0 findings"
            )
        finally:
            for name in ("hyg", "hyg-local", "hyg-ext"):
                try:
                    custom.delete_namespaced_custom_object(G, V, namespace, P, name)
                except client.exceptions.ApiException:
                    pass

            try:
                wait_for(lambda: not list_fs(kube_api, namespace), timeout=90, interval=1, what="stores deleted")
            finally:
                op.stop()
