"""The operator core against the real API server, in the cases that used to wedge a store or leave
the operator deaf:

* a config change on a store whose feature repo was applied (the apply Job's template is immutable);
* FeatureStores vanishing from the API (a restarted API server answers 404 for custom resources
  until it has loaded its CRDs) and coming back, with watches cut: the operator watches them again
  and /healthz says so meanwhile;
* no finalizer on a store without cloud resources (kopf adds none of its own).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from kubernetes import client

from tests.support.fault_proxy import FaultProxy
from tests.support.kubelet import FakeKubelet
from tests.support.operator_process import OperatorProcess
from tests.support.waiting import wait_for

G, V, P = "featurestore.kubeflow.org", "v1alpha1", "featurestores"
SERVERS = "app.kubernetes.io/managed-by=featurestore-operator,app.kubernetes.io/component!=feature-repo"


def manifest(name: str, **spec) -> dict:
    return {
        "apiVersion": f"{G}/{V}",
        "kind": "FeatureStore",
        "metadata": {"name": name},
        "spec": {"project": "core", **spec},
    }


def get_fs(kube_api, ns: str, name: str) -> dict:
    return client.CustomObjectsApi(kube_api).get_namespaced_custom_object(G, V, ns, P, name)


def condition(fs: dict, type_: str) -> dict:
    return next((c for c in (fs.get("status") or {}).get("conditions", []) if c["type"] == type_), {})


def ready(fs: dict) -> bool:
    st = fs.get("status") or {}
    return (
        condition(fs, "Ready").get("status") == "True" and st.get("observedGeneration") == fs["metadata"]["generation"]
    )


def converge(kube_api, ns: str, name: str, jobs: bool = False) -> dict:
    """Play the kubelet until the store is Ready (pods ready; with ``jobs``, apply Jobs succeed)."""
    kubelet = FakeKubelet(kube_api)

    def step() -> dict | None:
        kubelet.run(ns, SERVERS)
        if jobs:
            kubelet.run(ns, "app.kubernetes.io/component=feature-repo", phase="Succeeded")
        fs = get_fs(kube_api, ns, name)
        return fs if ready(fs) else None

    return wait_for(step, timeout=120, interval=1, what=f"{name} Ready")


def test_a_config_change_after_a_feature_repo_apply_returns_to_ready(
    control_plane, featurestore_crd, kube_api, namespace
):
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "repo"}, "data": {"features.py": "x = 1\n"}})
    # the admin allows the image the test switches to (by default only the operator's own images are)
    policy = '{"allowedImagePrefixes": ["example.com/"]}'
    with OperatorProcess(control_plane.kubeconfig, env={"FSO_POLICY": policy}, args=["--namespace", namespace]) as op:
        client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
            G, V, namespace, P, manifest("wedge", featureRepo={"configMap": {"name": "repo"}})
        )
        before = converge(kube_api, namespace, "wedge", jobs=True)
        first_job = before["status"]["featureRepo"]["job"]
        for change in ({"registry": {"cacheTtlSeconds": 7}}, {"images": {"feast": "example.com/feast:other"}}):
            client.CustomObjectsApi(kube_api).patch_namespaced_custom_object(
                G, V, namespace, P, "wedge", {"spec": change}
            )
            after = converge(kube_api, namespace, "wedge", jobs=True)
            assert after["status"]["observedGeneration"] == after["metadata"]["generation"]
            assert condition(after, "Synced")["status"] == "True", condition(after, "Synced")
            assert after["status"]["featureRepo"]["job"] != first_job
            first_job = after["status"]["featureRepo"]["job"]
        # objects after the Job in apply order were applied too (the wedge skipped them)
        assert "ReconcileError" not in op.log_text()


def _health(port: int) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=3) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def test_featurestores_vanishing_then_returning_are_watched_again(
    control_plane, featurestore_crd, kube_api, namespace, tmp_path
):
    proxy = FaultProxy(control_plane.server, str(control_plane.ca_file)).start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "p",
                "clusters": [{"name": "p", "cluster": {"server": proxy.url}}],
                "users": [{"name": "u", "user": {"token": control_plane.token}}],
                "contexts": [{"name": "p", "context": {"cluster": "p", "user": "u"}}],
            }
        )
    )
    api = client.CustomObjectsApi(kube_api)
    try:
        # resync far away: what happens after the fault must come from a re-established watch
        with OperatorProcess(str(kubeconfig), env={"FSO_RESYNC_SECONDS": "600"}, args=["--namespace", namespace]) as op:
            api.create_namespaced_custom_object(G, V, namespace, P, manifest("s1"))
            converge(kube_api, namespace, "s1")
            proxy.hide(G)
            wait_for(
                lambda: _health(op.health_port)[0] == 503,
                timeout=60,
                interval=0.5,
                what="/healthz failing while FeatureStores are not served",
            )
            # kept absent until the watch has listed into the 404 twice: a watch that ends on a 404
            # (as kopf 1.45's did) never comes back, and the spec change below is never applied
            wait_for(
                lambda: proxy.refused_lists(P) >= 2,
                timeout=60,
                interval=0.2,
                what="the FeatureStore watch retrying into the 404 twice",
            )
            assert _health(op.health_port)[0] == 503, "healthy while FeatureStores are not served"
            proxy.restore()
            wait_for(lambda: _health(op.health_port)[0] == 200, timeout=60, interval=0.5, what="/healthz healthy again")
            api.patch_namespaced_custom_object(G, V, namespace, P, "s1", {"spec": {"registry": {"cacheTtlSeconds": 9}}})
            api.create_namespaced_custom_object(G, V, namespace, P, manifest("s2"))
            core = client.CoreV1Api(kube_api)
            wait_for(
                lambda: (
                    "cache_ttl_seconds: 9"
                    in core.read_namespaced_config_map("s1-feast-config", namespace).data["feature_store.yaml"]
                ),
                timeout=60,
                interval=0.5,
                what="a spec change made after the fault applied",
            )
            converge(kube_api, namespace, "s2")
            assert op.alive()
    finally:
        proxy.stop()


def test_no_finalizer_on_a_store_without_cloud_resources(control_plane, featurestore_crd, kube_api, namespace):
    with OperatorProcess(control_plane.kubeconfig, args=["--namespace", namespace]):
        client.CustomObjectsApi(kube_api).create_namespaced_custom_object(G, V, namespace, P, manifest("plain"))
        fs = converge(kube_api, namespace, "plain")
        assert not fs["metadata"].get("finalizers"), fs["metadata"].get("finalizers")
        client.CustomObjectsApi(kube_api).delete_namespaced_custom_object(G, V, namespace, P, "plain")

        def gone() -> bool:
            try:
                get_fs(kube_api, namespace, "plain")
            except client.ApiException as err:
                return err.status == 404
            return False

        wait_for(gone, timeout=30, what="the store deleted at once (nothing holds it)")
