"""Smoke tests proving the control-plane fixtures are real, not mocks.

Each test exercises a behaviour that only a real kube-apiserver / kube-controller-manager
has: OpenAPI schema validation of custom resources, garbage collection through
ownerReferences, Deployment -> ReplicaSet, served API versions, server-side apply no-ops,
and the real kubectl / helm binaries talking to it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.support.kube import gone
from tests.support.prerequisites import missing
from tests.support.waiting import wait_for

FIELD_MANAGER = "featurestore-operator"


# --------------------------------------------------------------------------- helpers


def api_get(api: client.ApiClient, path: str) -> dict:
    """GET a raw API path (e.g. discovery) through the kubernetes ApiClient."""
    if hasattr(api, "param_serialize"):  # kubernetes >= 33 (new generator)
        method, url, headers, body, post = api.param_serialize(
            "GET", path, header_params={"Accept": "application/json"}, auth_settings=["BearerToken"]
        )
        resp = api.call_api(method, url, headers, body, post)
        resp.read()
        if resp.status >= 400:
            raise ApiException(http_resp=resp)
        return json.loads(resp.data or b"{}")
    # older generated clients: call_api(path, method, ...)
    return api.call_api(
        path,
        "GET",
        auth_settings=["BearerToken"],  # type: ignore[call-arg,return-value]
        response_type="object",
        _return_http_data_only=True,
    )


def served_resources(api: client.ApiClient, group_version: str) -> set[str]:
    """Resource names served under group_version (core 'v1' or 'group/version');
    empty when the group version is not served at all."""
    path = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    try:
        doc = api_get(api, path)
    except ApiException as exc:
        if exc.status == 404:
            return set()
        raise
    return {r["name"] for r in doc.get("resources", []) if "/" not in r["name"]}


# --------------------------------------------------------------------------- CRDs


def test_kubeflow_crds_established(control_plane, kube_api):
    ext = client.ApiextensionsV1Api(kube_api)
    for name in ("profiles.kubeflow.org", "poddefaults.kubeflow.org", "authorizationpolicies.security.istio.io"):
        crd = ext.read_custom_resource_definition(name)
        conds = {c.type: c.status for c in crd.status.conditions or []}
        assert conds.get("Established") == "True", (name, conds)


def test_featurestore_crd_established(control_plane, kube_api, featurestore_crd):
    crd = client.ApiextensionsV1Api(kube_api).read_custom_resource_definition(featurestore_crd)
    conds = {c.type: c.status for c in crd.status.conditions or []}
    assert conds.get("Established") == "True", conds
    assert crd.spec.names.short_names and "fs" in crd.spec.names.short_names


def test_schema_violation_rejected_by_apiserver(kube_api, namespace):
    co = client.CustomObjectsApi(kube_api)
    good = {
        "apiVersion": "kubeflow.org/v1alpha1",
        "kind": "PodDefault",
        "metadata": {"name": "access-feast"},
        "spec": {
            "desc": "Allow access to Feast",
            "selector": {"matchLabels": {"access-feast": "true"}},
            "env": [{"name": "FEAST_FS_YAML_FILE", "value": "/etc/feast/fs.yaml"}],
            "unknownIsPruned": {"x": 1},
        },
    }
    created = co.create_namespaced_custom_object("kubeflow.org", "v1alpha1", namespace, "poddefaults", good)
    # the vendored upstream CRD is structural without x-kubernetes-preserve-unknown-fields: a field
    # Kubeflow's PodDefault does not know is dropped, as in a real Kubeflow
    assert "unknownIsPruned" not in created["spec"]
    assert created["spec"]["env"] == good["spec"]["env"]

    bad_type = {**good, "metadata": {"name": "bad-type"}, "spec": {**good["spec"], "desc": 12345}}
    with pytest.raises(ApiException) as err:
        co.create_namespaced_custom_object("kubeflow.org", "v1alpha1", namespace, "poddefaults", bad_type)
    assert err.value.status == 422, err.value.body
    assert "spec.desc" in err.value.body

    missing_required = {**good, "metadata": {"name": "no-selector"}, "spec": {"desc": "x"}}
    with pytest.raises(ApiException) as err:
        co.create_namespaced_custom_object("kubeflow.org", "v1alpha1", namespace, "poddefaults", missing_required)
    assert err.value.status == 422, err.value.body
    assert "selector" in err.value.body


def test_featurestore_schema_violation_rejected(kube_api, namespace, featurestore_crd):
    body = {
        "apiVersion": "featurestore.kubeflow.org/v1alpha1",
        "kind": "FeatureStore",
        "metadata": {"name": "bad"},
        "spec": 42,
    }
    with pytest.raises(ApiException) as err:
        client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
            "featurestore.kubeflow.org", "v1alpha1", namespace, "featurestores", body
        )
    assert err.value.status == 422, err.value.body


# --------------------------------------------------------------------------- controllers


def test_garbage_collector_deletes_dependents(control_plane, kube_api, namespace):
    if not control_plane.with_controller_manager:
        missing("no kube-controller-manager binary (envtest ships none): no GC")
    core = client.CoreV1Api(kube_api)
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}, "data": {"k": "v"}})
    core.create_namespaced_config_map(
        namespace,
        {
            "metadata": {
                "name": "dependent",
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
                ],
            },
            "data": {"k": "v"},
        },
    )
    core.delete_namespaced_config_map("owner", namespace)

    wait_for(
        gone(lambda: core.read_namespaced_config_map("dependent", namespace)),
        timeout=60,
        what="GC of the dependent ConfigMap",
    )


def test_deployment_controller_creates_replicaset(control_plane, kube_api, namespace):
    if not control_plane.with_controller_manager:
        missing("no kube-controller-manager binary: no Deployment controller")
    apps = client.AppsV1Api(kube_api)
    labels = {"app": "smoke"}
    apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": "smoke"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "c", "image": "busybox"}]},
                },
            },
        },
    )

    def owned_replicaset():
        for rs in apps.list_namespaced_replica_set(namespace).items:
            for ref in rs.metadata.owner_references or []:
                if ref.kind == "Deployment" and ref.name == "smoke":
                    return rs
        return None

    rs = wait_for(owned_replicaset, timeout=60, what="ReplicaSet owned by the Deployment")
    assert rs.spec.replicas == 1


# --------------------------------------------------------------------------- API facts


def test_served_versions_match_server_version(control_plane, kube_api):
    info = client.VersionApi(kube_api).get_code()
    minor = int("".join(ch for ch in info.minor if ch.isdigit()))
    assert info.major == "1"
    if control_plane.minor:
        assert minor == control_plane.minor

    batch_v1 = served_resources(kube_api, "batch/v1")
    batch_v1beta1 = served_resources(kube_api, "batch/v1beta1")
    policy_v1 = served_resources(kube_api, "policy/v1")
    policy_v1beta1 = served_resources(kube_api, "policy/v1beta1")
    hpa_v2 = served_resources(kube_api, "autoscaling/v2")
    hpa_v2beta2 = served_resources(kube_api, "autoscaling/v2beta2")

    assert "jobs" in batch_v1
    # CronJob: batch/v1beta1 only on 1.20; batch/v1 from 1.21; v1beta1 gone from 1.25.
    assert ("cronjobs" in batch_v1) == (minor >= 21)
    assert ("cronjobs" in batch_v1beta1) == (minor < 25)
    # PodDisruptionBudget: policy/v1beta1 only on 1.20; policy/v1 from 1.21; v1beta1 gone 1.25.
    assert ("poddisruptionbudgets" in policy_v1) == (minor >= 21)
    assert ("poddisruptionbudgets" in policy_v1beta1) == (minor < 25)
    # HPA: autoscaling/v2beta2 on 1.20; autoscaling/v2 from 1.23; v2beta2 gone from 1.26.
    assert ("horizontalpodautoscalers" in hpa_v2) == (minor >= 23)
    assert ("horizontalpodautoscalers" in hpa_v2beta2) == (minor < 26)


def test_server_side_apply_identical_apply_is_a_noop(kube_api, namespace):
    core = client.CoreV1Api(kube_api)
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "ssa", "labels": {"app.kubernetes.io/managed-by": FIELD_MANAGER}},
        "data": {"feature_store.yaml": "project: demo\n"},
    }

    def apply(body):
        return core.patch_namespaced_config_map(
            "ssa",
            namespace,
            body,
            field_manager=FIELD_MANAGER,
            force=True,
            _content_type="application/apply-patch+yaml",
        )

    first = apply(manifest)
    second = apply(manifest)
    assert second.metadata.resource_version == first.metadata.resource_version
    managers = {m.manager for m in second.metadata.managed_fields or []}
    assert FIELD_MANAGER in managers

    changed = apply({**manifest, "data": {"feature_store.yaml": "project: other\n"}})
    assert changed.metadata.resource_version != first.metadata.resource_version


# --------------------------------------------------------------------------- real CLIs


def test_kubectl_talks_to_control_plane(control_plane, kubectl_bin, namespace):
    out = subprocess.run(
        [kubectl_bin, "get", "ns", "-o", "name"], capture_output=True, text=True, timeout=60, env=control_plane.env()
    )
    assert out.returncode == 0, out.stderr
    assert f"namespace/{namespace}" in out.stdout.split()
    # The kubeconfig verifies the apiserver's cert (no insecure-skip-tls-verify).
    cfg = json.loads(Path(control_plane.kubeconfig).read_text())
    cluster = cfg["clusters"][0]["cluster"]
    assert "insecure-skip-tls-verify" not in cluster
    assert Path(cluster["certificate-authority"]).is_file()


def _tiny_chart(root: Path) -> Path:
    chart = root / "tiny"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(
        "apiVersion: v2\nname: tiny\ndescription: throwaway smoke-test chart\n"
        'type: application\nversion: 0.1.0\nappVersion: "1.0"\nkubeVersion: ">=1.20.0-0"\n'
    )
    (chart / "values.yaml").write_text("greeting: hello\n")
    (chart / "templates" / "configmap.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
        "  name: {{ .Release.Name }}-tiny\n  namespace: {{ .Release.Namespace }}\n"
        "  labels:\n    app.kubernetes.io/managed-by: {{ .Release.Service }}\n"
        "data:\n  greeting: {{ .Values.greeting | quote }}\n"
    )
    return chart


def test_helm_lint_and_template(helm_bin, tmp_path):
    version = subprocess.run([helm_bin, "version", "--short"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip().startswith("v"), version.stdout

    chart = _tiny_chart(tmp_path)
    lint = subprocess.run([helm_bin, "lint", str(chart)], capture_output=True, text=True, timeout=60)
    assert lint.returncode == 0, lint.stdout + lint.stderr

    rendered = subprocess.run(
        [helm_bin, "template", "rel", str(chart), "--namespace", "demo", "--set", "greeting=hi there"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rendered.returncode == 0, rendered.stderr
    docs = [d for d in yaml.safe_load_all(rendered.stdout) if d]
    assert docs == [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "rel-tiny", "namespace": "demo", "labels": {"app.kubernetes.io/managed-by": "Helm"}},
            "data": {"greeting": "hi there"},
        }
    ]


def test_helm_install_against_control_plane(control_plane, helm_bin, kube_api, namespace, tmp_path):
    chart = _tiny_chart(tmp_path)
    env = control_plane.env()
    inst = subprocess.run(
        [helm_bin, "install", "rel", str(chart), "--namespace", namespace, "--wait", "--timeout", "60s"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert inst.returncode == 0, inst.stdout + inst.stderr
    cm = client.CoreV1Api(kube_api).read_namespaced_config_map("rel-tiny", namespace)
    assert cm.data == {"greeting": "hello"}
    uninst = subprocess.run(
        [helm_bin, "uninstall", "rel", "--namespace", namespace], capture_output=True, text=True, timeout=120, env=env
    )
    assert uninst.returncode == 0, uninst.stdout + uninst.stderr


# --------------------------------------------------------------------------- fault injection


def test_restart_apiserver_keeps_state(control_plane, kube_api, namespace):
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "survivor"}, "data": {"k": "v"}})
    server = control_plane.server
    control_plane.restart_apiserver(grace=0)
    assert control_plane.server == server  # same port: clients reconnect as-is
    assert core.read_namespaced_config_map("survivor", namespace).data == {"k": "v"}
