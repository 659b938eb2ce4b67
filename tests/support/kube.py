"""The FeatureStore API as tests see it: constants, manifests, reads, conditions, and "gone"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

G = GROUP = "featurestore.kubeflow.org"
V = VERSION = "v1alpha1"
P = PLURAL = "featurestores"
OWNER_LABEL = "featurestore.kubeflow.org/name"
#: selector of the pods the fake kubelet runs: every Feast server, not the feature-repo apply Job
SERVER_PODS = "app.kubernetes.io/managed-by=featurestore-operator,app.kubernetes.io/component!=feature-repo"


def fs_manifest(name: str, project: str = "demo", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{G}/{V}",
        "kind": "FeatureStore",
        "metadata": {"name": name},
        "spec": {"project": project, **spec},
    }


def custom(api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


def _json(answer: object) -> dict[str, Any]:
    """A CustomObjectsApi answer: the decoded JSON object (the client types it ``object``)."""
    assert isinstance(answer, dict), type(answer)
    return answer


def get_fs(api: client.ApiClient, ns: str, name: str) -> dict[str, Any] | None:
    """The FeatureStore, or None when it does not exist (any other API error raises)."""
    try:
        return _json(custom(api).get_namespaced_custom_object(G, V, ns, P, name))
    except ApiException as err:
        if err.status == 404:
            return None
        raise


def list_fs(api: client.ApiClient, ns: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in _json(custom(api).list_namespaced_custom_object(G, V, ns, P))["items"]}


def condition(fs: dict[str, Any] | None, type_: str) -> dict[str, Any] | None:
    return next((c for c in ((fs or {}).get("status") or {}).get("conditions") or [] if c["type"] == type_), None)


def phase(fs: dict[str, Any] | None) -> str | None:
    return ((fs or {}).get("status") or {}).get("phase")


def is_ready(fs: dict[str, Any] | None) -> bool:
    """Ready for the current spec: phase Ready and observedGeneration == generation."""
    return (
        fs is not None
        and phase(fs) == "Ready"
        and fs["status"].get("observedGeneration") == fs["metadata"].get("generation")
    )


def gone(read: Callable[[], object]) -> Callable[[], bool]:
    """A predicate: True once ``read()`` answers 404, False while it succeeds (other errors raise)."""

    def check() -> bool:
        try:
            read()
            return False
        except ApiException as err:
            if err.status == 404:
                return True
            raise

    return check


def start_cron_run(api: client.ApiClient, minor: int, ns: str, cronjob: str, job: str) -> dict[str, Any]:
    """A Job from a CronJob's template, owned by it, as the CronJob controller starts one
    (`kubectl create job --from=cronjob/...` does the same)."""
    version = "v1beta1" if minor < 21 else "v1"
    cron = _json(custom(api).get_namespaced_custom_object("batch", version, ns, "cronjobs", cronjob))
    template = cron["spec"]["jobTemplate"]
    owner = {
        "apiVersion": f"batch/{version}",
        "kind": "CronJob",
        "name": cronjob,
        "uid": cron["metadata"]["uid"],
        "controller": True,
    }
    return (
        client.BatchV1Api(api)
        .create_namespaced_job(
            ns,
            {  # type: ignore[arg-type]  # the client sends a dict body as is (ApiClient.sanitize_for_serialization)
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": job, "labels": template["metadata"]["labels"], "ownerReferences": [owner]},
                "spec": template["spec"],
            },
        )
        .to_dict()
    )


#: The label Kubeflow's profile controller puts on a profile's namespace (the PodDefault webhook acts
#: only there: render/kubeflow.py's NotAProfileNamespace condition otherwise).
PROFILE_NAMESPACE_LABELS = {"app.kubernetes.io/part-of": "kubeflow-profile"}


def as_profile_namespace(api_client: Any, namespace: str) -> None:
    """Label ``namespace`` as the profile controller labels a Kubeflow profile's namespace."""
    client.CoreV1Api(api_client).patch_namespace(namespace, {"metadata": {"labels": PROFILE_NAMESPACE_LABELS}})
