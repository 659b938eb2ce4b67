"""docs/operations/troubleshooting.md claims about the Feast Jobs, against the real API server, Job controller and
operator process: FeatureRepo/ApplyFailed ("the previous revision keeps serving") and
Materialization/LastRunFailed ("see the logs of the Job named in the message"). Pods are run, and
made to fail, by the fake kubelet; the Job controller turns their failures into a failed Job."""

from __future__ import annotations

from kubernetes import client

from tests.support.kube import OWNER_LABEL, SERVER_PODS, G, P, V, condition, fs_manifest, get_fs, start_cron_run
from tests.support.waiting import wait_for

APPLY_PODS = f"{OWNER_LABEL}={{name}},app.kubernetes.io/component=feature-repo"


def repo_configmap(core: client.CoreV1Api, ns: str, text: str) -> None:
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="repo"), data={"features.py": text})
    try:
        core.replace_namespaced_config_map("repo", ns, body)
    except client.exceptions.ApiException as err:
        if err.status != 404:
            raise
        core.create_namespaced_config_map(ns, body)


def feature_repo(kube_api, ns: str, reason: str) -> dict | None:
    c = condition(get_fs(kube_api, ns, "repo"), "FeatureRepo")
    return c if c and c["reason"] == reason else None


def warnings(kube_api, ns: str, name: str, reason: str) -> list:
    return [
        e
        for e in client.CoreV1Api(kube_api)
        .list_namespaced_event(ns, field_selector=f"involvedObject.name={name},involvedObject.kind=FeatureStore")
        .items
        if e.type == "Warning" and e.reason == reason
    ]


def test_failed_apply_keeps_the_previous_revision_serving(operator, kube_api, kubelet, namespace):
    core, apps = client.CoreV1Api(kube_api), client.AppsV1Api(kube_api)
    repo_configmap(core, namespace, "# revision one\n")
    client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
        G, V, namespace, P, fs_manifest("repo", featureRepo={"configMap": {"name": "repo"}})
    )

    def applied():
        kubelet.run(namespace, SERVER_PODS)
        kubelet.run(namespace, APPLY_PODS.format(name="repo"), phase="Succeeded")
        fs = get_fs(kube_api, namespace, "repo")
        return fs if feature_repo(kube_api, namespace, "Applied") and fs["status"].get("phase") == "Ready" else None

    fs = wait_for(applied, timeout=120, interval=1, what="revision one applied and the store Ready")
    first = fs["status"]["featureRepo"]["appliedRevision"]
    assert first and first == fs["status"]["featureRepo"]["revision"]
    server = apps.read_namespaced_deployment("repo-feature-server", namespace)

    # A new revision whose `feast apply` fails (every pod of its Job exits 1).
    repo_configmap(core, namespace, "raise RuntimeError('revision two is broken')\n")

    def apply_failed():
        kubelet.run(namespace, APPLY_PODS.format(name="repo"), phase="Failed")
        return feature_repo(kube_api, namespace, "ApplyFailed")

    failed = wait_for(apply_failed, timeout=180, interval=1, what="FeatureRepo ApplyFailed")
    fs = get_fs(kube_api, namespace, "repo")
    second = fs["status"]["featureRepo"]["revision"]
    assert second != first and fs["status"]["featureRepo"]["appliedRevision"] == first
    job = fs["status"]["featureRepo"]["job"]
    assert failed["status"] == "False" and f"revision {first} keeps serving" in failed["message"], failed
    assert job in failed["message"] and second in failed["message"], (job, failed["message"])
    # ... and it does: the feature server is untouched and still ready.
    now = apps.read_namespaced_deployment("repo-feature-server", namespace)
    assert now.metadata.resource_version == server.metadata.resource_version, "the feature server was rewritten"
    assert condition(fs, "FeatureServer")["status"] == "True", condition(fs, "FeatureServer")
    assert fs["status"]["endpoints"]["featureServer"].startswith("http://repo-feature-server.")
    (event,) = wait_for(
        lambda: warnings(kube_api, namespace, "repo", "FeatureRepoApplyFailed"),
        timeout=60,
        what="a FeatureRepoApplyFailed Warning",
    )
    assert job in event.message
    # ... but the store is not Ready: the repo is one of Ready's parts, and Ready names its reason
    ready = condition(get_fs(kube_api, namespace, "repo"), "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ApplyFailed") and job in ready["message"], ready

    # A repo that goes missing: the store keeps serving the applied revision, and is not Ready either.
    core.delete_namespaced_config_map("repo", namespace)
    missing = wait_for(
        lambda: feature_repo(kube_api, namespace, "ConfigMapNotFound"), timeout=60, what="FeatureRepo ConfigMapNotFound"
    )
    assert missing["status"] == "False" and "spec.featureRepo.configMap.name" in missing["message"], missing
    fs = get_fs(kube_api, namespace, "repo")
    assert condition(fs, "FeatureServer")["status"] == "True", condition(fs, "FeatureServer")
    ready = condition(fs, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ConfigMapNotFound"), ready
    assert fs["status"]["phase"] != "Ready", fs["status"]["phase"]


def test_failed_materialization_run_names_its_job(operator, control_plane, kube_api, kubelet, namespace):
    custom = client.CustomObjectsApi(kube_api)
    custom.create_namespaced_custom_object(
        G, V, namespace, P, fs_manifest("mat", materialization={"schedule": "0 3 * * *", "backoffLimit": 0})
    )

    def ready():
        kubelet.run(namespace, SERVER_PODS)
        fs = get_fs(kube_api, namespace, "mat")
        return fs if fs and fs.get("status", {}).get("phase") == "Ready" else None

    fs = wait_for(ready, timeout=120, interval=1, what="store Ready")
    assert condition(fs, "Materialization")["reason"] == "Scheduled"
    start_cron_run(kube_api, control_plane.minor, namespace, "mat-materialize", "mat-materialize-now")

    def run_failed():
        kubelet.run(namespace, "job-name=mat-materialize-now", phase="Failed")
        c = condition(get_fs(kube_api, namespace, "mat"), "Materialization")
        return c if c and c["reason"] == "LastRunFailed" else None

    c = wait_for(run_failed, timeout=120, interval=1, what="Materialization LastRunFailed")
    assert c["status"] == "False" and "mat-materialize-now" in c["message"] and "kubectl logs" in c["message"], c
    assert get_fs(kube_api, namespace, "mat")["status"]["materialization"]["lastJob"] == "mat-materialize-now"
    (event,) = wait_for(
        lambda: warnings(kube_api, namespace, "mat", "MaterializationLastRunFailed"),
        timeout=60,
        what="a MaterializationLastRunFailed Warning",
    )
    assert "mat-materialize-now" in event.message
