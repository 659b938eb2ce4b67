"""Feature view freshness and the compute switch, against the real API server, Job controller and
operator process: a materialization run's pod reports its summary as a termination message (set by
the fake kubelet, as the real one copies /dev/termination-log) -> status.materialization.featureViews
and the per-view gauges on /metrics (with the operator's default settings); a forged pod beside it
is ignored. Without FSO_COMPUTE_ENABLED
an engine needing the chart's compute RBAC gets a condition naming the chart value."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest
from kubernetes import client

from tests.support.kube import SERVER_PODS, G, P, V, condition, fs_manifest, get_fs, is_ready, start_cron_run
from tests.support.operator_process import OperatorProcess
from tests.support.waiting import wait_for

REAL = {"driver_stats": "2026-11-29T22:00:00+00:00", "zeta": "2026-11-29T21:00:00+00:00"}
FORGED = {"driver_stats": "2099-01-01T00:00:00+00:00"}


def summary(views: dict[str, str]) -> str:
    return json.dumps({"v": 1, "views": views, "truncated": False})


@pytest.fixture
def default_operator(control_plane, featurestore_crd, namespace) -> Iterator[OperatorProcess]:
    """The operator's defaults (FSO_COMPUTE_ENABLED off, as in the chart): freshness is for every store."""
    proc = OperatorProcess(
        control_plane.kubeconfig,
        env={"FSO_RESYNC_SECONDS": "10"},
        args=["--namespace", namespace],
    )
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()
        print(proc.log_text()[-15000:])


def ready_store(kube_api, kubelet, namespace: str, name: str) -> dict:
    def ready():
        kubelet.run(namespace, SERVER_PODS)
        fs = get_fs(kube_api, namespace, name)
        return fs if is_ready(fs) else None

    return wait_for(ready, timeout=120, interval=1, what=f"store {name} Ready")


def test_successful_run_reports_freshness_per_feature_view(
    default_operator, control_plane, kube_api, kubelet, namespace
):
    client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
        G, V, namespace, P, fs_manifest("fresh", materialization={"schedule": "0 3 * * *"})
    )
    ready_store(kube_api, kubelet, namespace, "fresh")
    job = "fresh-materialize-now"
    start_cron_run(kube_api, control_plane.minor, namespace, "fresh-materialize", job)
    # Attack: a namespace user's pod posing as the run (same job-name label, not controlled by the Job).
    client.CoreV1Api(kube_api).create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": "forged", "labels": {"job-name": job, "forged": "yes"}},
            "spec": {
                "serviceAccountName": "fresh-feast",
                "restartPolicy": "Never",
                "containers": [{"name": "materialize", "image": "busybox"}],
            },
        },
    )
    wait_for(
        lambda: kubelet.run(namespace, "forged=yes", "Succeeded", {"materialize": summary(FORGED)}),
        timeout=30,
        what="the forged pod terminated",
    )

    def reported():
        kubelet.run(namespace, f"job-name={job},forged!=yes", "Succeeded", {"materialize": summary(REAL)})
        mat = (get_fs(kube_api, namespace, "fresh") or {}).get("status", {}).get("materialization", {})
        return mat if mat.get("featureViewsJob") == job else None

    mat = wait_for(reported, timeout=120, interval=1, what="featureViews read from the run")
    views = {v["name"]: v for v in mat["featureViews"]}
    assert {n: v["lastEnd"] for n, v in views.items()} == {
        "driver_stats": "2026-11-29T22:00:00Z",
        "zeta": "2026-11-29T21:00:00Z",
    }, "the forged pod's report was used"
    # lag at the end of that run: the Job's completionTime minus each view's end
    done = client.BatchV1Api(kube_api).read_namespaced_job(job, namespace).status.completion_time
    for name, end in REAL.items():
        assert views[name]["lagSeconds"] == int((done - dt.datetime.fromisoformat(end)).total_seconds()), views

    labels = {"namespace": namespace, "featurestore": "fresh"}
    until = wait_for(
        lambda: default_operator.metric(
            "featurestore_feature_view_materialized_until_timestamp_seconds", feature_view="driver_stats", **labels
        ),
        timeout=60,
        what="the freshness gauge",
    )
    assert until == dt.datetime.fromisoformat(REAL["driver_stats"]).timestamp()
    lag = default_operator.metric("featurestore_feature_view_freshness_lag_seconds", feature_view="zeta", **labels)
    assert lag >= (dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(REAL["zeta"])).total_seconds() - 120, lag

    # deleting the store drops its series
    client.CustomObjectsApi(kube_api).delete_namespaced_custom_object(G, V, namespace, P, "fresh")
    wait_for(
        lambda: (
            default_operator.metric("featurestore_feature_view_freshness_lag_seconds", **labels) == 0
            and 'featurestore="fresh"' not in default_operator.metrics()
        ),
        timeout=60,
        what="series gone with the store",
    )


def test_engine_needing_the_charts_compute_rbac_is_conditioned_without_it(operator, kube_api, kubelet, namespace):
    client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
        G, V, namespace, P, fs_manifest("eng", compute={"engine": "kubernetes"})
    )

    def conditioned():
        kubelet.run(namespace, SERVER_PODS)
        c = condition(get_fs(kube_api, namespace, "eng"), "Materialization")
        return c if c and c["reason"] == "ComputeEngineUnavailable" else None

    c = wait_for(conditioned, timeout=120, interval=1, what="Materialization ComputeEngineUnavailable")
    assert "compute.enabled=true" in c["message"] and "FSO_COMPUTE_ENABLED" in c["message"], c
    bindings = client.RbacAuthorizationV1Api(kube_api).list_namespaced_role_binding(namespace).items
    assert not [b.metadata.name for b in bindings if b.metadata.name.endswith("-feast-compute")]
