"""Notebook access composes on the real API server, with the real operator: two stores in one
Kubeflow profile namespace, their PodDefaults (as the operator applies them, typed by the vendored
upstream PodDefault CRD) merged by the PodDefault admission stand-in (tests/support/poddefaults.py,
Kubeflow's webhook rules) into ONE notebook pod that the API server accepts, with both stores' config
and no conflict; the default-store rule; and the Kubeflow condition in a namespace Kubeflow's
webhook ignores."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from tests.support.poddefaults import apply_poddefaults
from tests.support.waiting import wait_for

PROFILE = {"app.kubernetes.io/part-of": "kubeflow-profile"}
GROUP, VERSION = "featurestore.kubeflow.org", "v1alpha1"


def _store(custom: client.CustomObjectsApi, ns: str, name: str, **kubeflow: Any) -> None:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "FeatureStore",
        "metadata": {"name": name},
        "spec": {"project": name, "provider": "local", "kubeflow": kubeflow},
    }
    custom.create_namespaced_custom_object(GROUP, VERSION, ns, "featurestores", body)


def _poddefaults(custom: client.CustomObjectsApi, ns: str) -> dict[str, dict]:
    items = custom.list_namespaced_custom_object("kubeflow.org", "v1alpha1", ns, "poddefaults")["items"]
    return {pd["metadata"]["name"]: pd for pd in items}


def _env(pd: dict) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in pd["spec"].get("env", [])}


def _settled(custom: client.CustomObjectsApi, ns: str, default: str | None) -> dict[str, dict] | None:
    """Both PodDefaults, with the shared variable set by ``default``'s alone (None: by neither)."""
    pds = _poddefaults(custom, ns)
    if set(pds) != {"alpha-feast-access", "beta-feast-access"}:
        return None
    setters = {name for name, pd in pds.items() if "FEAST_FS_YAML_FILE_PATH" in _env(pd)}
    return pds if setters == ({f"{default}-feast-access"} if default else set()) else None


def _notebook(ns: str) -> dict:
    labels = {"access-feast-alpha": "true", "access-feast-beta": "true", "notebook-name": "nb"}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "nb-0", "namespace": ns, "labels": labels},
        "spec": {"containers": [{"name": "nb", "image": "jupyter-scipy"}]},
    }


def _condition(custom: client.CustomObjectsApi, ns: str, name: str, status: str) -> dict | None:
    fs = custom.get_namespaced_custom_object(GROUP, VERSION, ns, "featurestores", name)
    for c in (fs.get("status") or {}).get("conditions", []):
        if c["type"] == "Kubeflow" and c["status"] == status:
            return c
    return None


def test_two_stores_in_one_notebook_without_a_conflict(operator, kube_api, namespace):
    custom, core = client.CustomObjectsApi(kube_api), client.CoreV1Api(kube_api)
    core.patch_namespace(namespace, {"metadata": {"labels": PROFILE}})
    _store(custom, namespace, "alpha")
    _store(custom, namespace, "beta")

    # two stores, none marked: no store is the default, each has its own variable
    pds = wait_for(lambda: _settled(custom, namespace, None), timeout=90, what="two PodDefaults, no default")
    pod = apply_poddefaults(_notebook(namespace), list(pds.values()), namespace_labels=PROFILE)
    [nb] = pod["spec"]["containers"]
    env = {e["name"]: e["value"] for e in nb["env"]}
    assert env == {
        "FEAST_ALPHA_FS_YAML_FILE_PATH": "/etc/feast/alpha/feature_store.yaml",
        "FEAST_BETA_FS_YAML_FILE_PATH": "/etc/feast/beta/feature_store.yaml",
    }
    assert {m["mountPath"] for m in nb["volumeMounts"]} == {"/etc/feast/alpha", "/etc/feast/beta"}
    assert {v["configMap"]["name"] for v in pod["spec"]["volumes"]} == {"alpha-feast-client", "beta-feast-client"}
    # the real API server accepts the merged pod (every mount names a volume, names unique)
    wait_for(lambda: core.read_namespaced_service_account("default", namespace), what="default ServiceAccount")
    created = wait_for(lambda: core.create_namespaced_pod(namespace, pod), what="notebook pod created")
    assert {v.name for v in created.spec.volumes} >= {"feast-alpha", "feast-beta"}

    # marking one store default moves the shared variable to it; the other keeps only its own
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "featurestores", "beta", {"spec": {"kubeflow": {"defaultStore": True}}}
    )
    pds = wait_for(lambda: _settled(custom, namespace, "beta"), timeout=90, what="beta the default store")
    merged = apply_poddefaults(_notebook(namespace), list(pds.values()), namespace_labels=PROFILE)
    env = {e["name"]: e["value"] for e in merged["spec"]["containers"][0]["env"]}
    assert env["FEAST_FS_YAML_FILE_PATH"] == "/etc/feast/beta/feature_store.yaml"
    assert env["FEAST_ALPHA_FS_YAML_FILE_PATH"] == "/etc/feast/alpha/feature_store.yaml"
    c = wait_for(lambda: _condition(custom, namespace, "alpha", "True"), timeout=60, what="alpha Kubeflow True")
    assert "FEAST_ALPHA_FS_YAML_FILE_PATH" in c["message"] and "beta is the namespace's default" in c["message"]


def test_the_only_store_is_the_default_and_a_non_profile_namespace_is_reported(operator, kube_api, namespace):
    custom, core = client.CustomObjectsApi(kube_api), client.CoreV1Api(kube_api)
    _store(custom, namespace, "alpha")
    # no profile label: Kubeflow's webhook (namespaceSelector part-of=kubeflow-profile) never acts here
    c = wait_for(lambda: _condition(custom, namespace, "alpha", "False"), timeout=60, what="Kubeflow False")
    assert c["reason"] == "NotAProfileNamespace" and "app.kubernetes.io/part-of=kubeflow-profile" in c["message"]
    pd = wait_for(lambda: _poddefaults(custom, namespace).get("alpha-feast-access"), what="PodDefault")
    untouched = apply_poddefaults(_notebook(namespace), [pd], namespace_labels={})
    assert "env" not in untouched["spec"]["containers"][0]

    core.patch_namespace(namespace, {"metadata": {"labels": PROFILE}})  # the operator looks again at resync (10 s)
    c = wait_for(lambda: _condition(custom, namespace, "alpha", "True"), timeout=60, what="Kubeflow True")
    assert c["reason"] == "Configured" and "default store" in c["message"]
    merged = apply_poddefaults(_notebook(namespace), [pd], namespace_labels=PROFILE)
    env = {e["name"]: e["value"] for e in merged["spec"]["containers"][0]["env"]}
    assert (
        env["FEAST_FS_YAML_FILE_PATH"] == env["FEAST_ALPHA_FS_YAML_FILE_PATH"] == "/etc/feast/alpha/feature_store.yaml"
    )
