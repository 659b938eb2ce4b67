"""FSO_COMPUTE_ENABLED (chart value compute.enabled) gates the engines whose RBAC the chart installs,
and the freshness a successful run reports becomes status.materialization.featureViews and gauges."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest
from featurestore_operator import store_metrics
from featurestore_operator.api import OperatorConfig, parse_featurestore, resolve
from featurestore_operator.api.status import FeatureStoreStatus, MaterializationStatus
from featurestore_operator.backends.planned import planned_endpoints
from featurestore_operator.reconcile.freshness import observe_freshness, report_of
from featurestore_operator.render.freshness import parse_summary
from featurestore_operator.render import ApiVersions, compute, render
from prometheus_client import REGISTRY

from tests.support.fake_kube import FakeKube

OFF = OperatorConfig(gcp_project="my-gcp-project", gcp_region="us-central1")
ENGINE_CRDS = ApiVersions(optional_kinds=frozenset({"SparkApplication", "RayCluster"}))
FIXED = "0.68.0"


def store(compute_spec: dict, **spec):
    doc = {
        "apiVersion": "featurestore.kubeflow.org/v1alpha1",
        "kind": "FeatureStore",
        "metadata": {"name": "s", "namespace": "team-a", "uid": "u-1"},
        "spec": {"project": "p", "provider": "gcp", "compute": compute_spec, **spec},
    }
    fs = parse_featurestore(doc)
    return fs.model_copy(update={"spec": resolve(fs.spec, OFF)})


GATED = [
    ({"engine": "kubernetes"}, "spec.compute.engine kubernetes"),
    ({"engine": "sparkApplication"}, "spec.compute.engine sparkApplication"),
    ({"engine": "ray", "ray": {"kubeRay": {"workers": 2}}}, "spec.compute.ray.kubeRay"),
]


@pytest.mark.parametrize("spec, field", GATED)
def test_engines_needing_the_charts_rbac_are_conditioned_and_not_rendered_without_it(spec, field):
    fs = store(spec, registry={"server": {"enabled": True}})
    assert OFF.compute_enabled is False, "the operator's default must match the chart's (compute.enabled: false)"
    msg = compute.problem(fs, planned_endpoints(fs), ENGINE_CRDS, FIXED, False)
    assert msg and field in msg and "compute.enabled=true" in msg and "FSO_COMPUTE_ENABLED" in msg, msg
    kinds = {o["kind"] for o in render(fs, planned_endpoints(fs), OFF, ENGINE_CRDS).objects}
    assert not {"RoleBinding", "RayCluster"} & kinds, kinds
    assert compute.workload_identity_service_accounts(fs, False) == ["s-feast"]
    assert compute.materialization_service_account(fs, False) == "s-feast"
    # with the chart's RBAC the same spec renders its objects and the gate says nothing
    assert compute.objects(fs, ENGINE_CRDS, True)
    assert "compute.enabled" not in (compute.problem(fs, planned_endpoints(fs), ENGINE_CRDS, FIXED, True) or "")


@pytest.mark.parametrize("spec", [{}, {"engine": "ray"}])
def test_engines_without_objects_run_without_the_charts_rbac(spec):
    fs = store(spec)
    assert compute.problem(fs, planned_endpoints(fs), ApiVersions(), FIXED, False) is None


# --------------------------------------------------------------------------- freshness

SUMMARY = json.dumps({"v": 1, "views": {"driver_stats": "2026-11-29T22:00:00+00:00"}, "truncated": False})


def job(name: str, uid: str, done: str | None, created: str) -> dict:
    status = {"conditions": [{"type": "Complete", "status": "True"}], "completionTime": done} if done else {}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": "team-a", "uid": uid, "creationTimestamp": created},
        "status": status,
    }


def pod(name: str, job_name: str, owner_uid: str | None, message: str, phase: str = "Succeeded") -> dict:
    owners = [{"kind": "Job", "name": job_name, "uid": owner_uid, "controller": True}] if owner_uid else []
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "team-a", "labels": {"job-name": job_name}, "ownerReferences": owners},
        "status": {
            "phase": phase,
            "containerStatuses": [
                {"name": "materialize", "state": {"terminated": {"exitCode": 0, "message": message}}}
            ],
        },
    }


def test_only_the_jobs_own_successful_pod_is_read():
    forged = SUMMARY.replace("22:00", "23:59")
    pods = [pod("forged", "run-1", None, forged), pod("other", "run-1", "u-other", forged)]
    assert report_of(pods, "u-run") is None, "a pod the Job does not control must not count"
    assert report_of([*pods, pod("failed", "run-1", "u-run", forged, "Failed")], "u-run") is None
    assert report_of([*pods, pod("real", "run-1", "u-run", SUMMARY)], "u-run") == parse_summary(SUMMARY)


def share_pod(name: str, owner_uid: str, messages: dict[str, str], phase: str = "Succeeded") -> dict:
    p = pod(name, "run-1", owner_uid, "", phase)
    p["status"]["containerStatuses"] = [
        {"name": c, "state": {"terminated": {"exitCode": 0, "message": m}}} for c, m in messages.items()
    ]
    return p


def summary(**views: str) -> str:
    return json.dumps({"v": 1, "views": views, "truncated": False})


def test_the_shares_of_a_run_are_merged_view_by_view():
    """Parallel shares (render.fanout): each reports every view after its own run; the merge keeps
    each view's newest time, from pods of an Indexed Job and from containers of one pod alike."""
    early, late = "2026-11-29T21:00:00+00:00", "2026-11-29T22:00:00+00:00"
    indexed = [
        share_pod("run-1-0", "u-run", {"materialize": summary(a=late, b=early)}),
        share_pod("run-1-1", "u-run", {"materialize": summary(a=early, b=late)}),
        share_pod("run-1-1-retry", "u-run", {"materialize": summary(c=late)}, "Failed"),
    ]
    containers = [
        share_pod(
            "run-1",
            "u-run",
            {
                "materialize-0": summary(a=late, b=early),
                "materialize-1": summary(a=early, b=late),
                "sidecar": summary(c=late),
            },
        )
    ]
    for pods in (indexed, containers):
        merged = report_of(pods, "u-run")
        assert merged is not None
        assert {v.name: v.materialized_until.isoformat() for v in merged.views} == {"a": late, "b": late}


def test_newest_successful_run_is_read_once_into_status():
    kube = FakeKube()
    fs = store({})
    kube.put(pod("run-2-abc", "run-2", "u-2", SUMMARY))
    runs = [
        job("run-1", "u-1", "2026-11-29T21:00:00Z", "2026-11-29T20:59:00Z"),
        job("run-2", "u-2", "2026-11-29T22:30:00Z", "2026-11-29T22:29:00Z"),
        job("run-3", "u-3", None, "2026-11-29T23:00:00Z"),  # still running
    ]
    got = asyncio.run(observe_freshness(kube, fs, runs, MaterializationStatus()))
    assert got["feature_views_job"] == "run-2"
    [view] = got["feature_views"]
    assert (view.name, view.last_end, view.lag_seconds) == ("driver_stats", "2026-11-29T22:00:00Z", 1800)
    # read once: the next pass does not list pods again
    seen = MaterializationStatus(feature_views=got["feature_views"], feature_views_job="run-2")
    listed = len(kube.calls)
    assert asyncio.run(observe_freshness(kube, fs, runs, seen)) == {}
    assert len(kube.calls) == listed, "a report already read is not read again"
    # a run without a report (pod gone, old image) keeps the views last known
    runs.append(job("run-4", "u-4", "2026-11-30T00:00:00Z", "2026-11-29T23:59:00Z"))
    assert asyncio.run(observe_freshness(kube, fs, runs, seen)) == {"feature_views_job": "run-4"}


def test_status_feature_views_become_gauges_and_leave_with_the_store():
    def lag():
        return REGISTRY.get_sample_value(
            "featurestore_feature_view_freshness_lag_seconds",
            {"namespace": "g", "featurestore": "s", "feature_view": "driver_stats"},
        )

    end = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    status = FeatureStoreStatus.model_validate(
        {
            "materialization": {
                "featureViews": [{"name": "driver_stats", "lastEnd": end.isoformat(), "lagSeconds": 5}],
            }
        }
    )
    store_metrics.observe("g", "s", status)
    assert lag() == pytest.approx(3600, abs=60)
    until = REGISTRY.get_sample_value(
        "featurestore_feature_view_materialized_until_timestamp_seconds",
        {"namespace": "g", "featurestore": "s", "feature_view": "driver_stats"},
    )
    assert until == pytest.approx(end.timestamp())
    store_metrics.forget("g", "s")
    assert lag() is None


# --------------------------------------------------------------------------- images


def test_feast_runtime_image_carries_what_the_engines_need():
    """The engines default to the feast-runtime image: its build installs Ray at the version the
    RayCluster declares (KubeRay and Ray Client refuse a version skew) and the kubernetes client."""
    import re
    from pathlib import Path

    from featurestore_operator.api.compute import KubeRaySpec

    text = (Path(__file__).resolve().parents[2] / "Dockerfile").read_text()
    [packages] = re.findall(r'^ARG FEAST_COMPUTE_PACKAGES="([^"]*)"$', text, re.M)
    pins = dict(p.split("==", 1) for p in packages.split())
    assert pins["ray[data,default]"] == KubeRaySpec.model_fields["ray_version"].default
    assert "kubernetes" in pins
    assert not re.search(r"[<>|;&$`]", packages), "the list is word-split by the shell in RUN: no metacharacters"
    assert "${FEAST_COMPUTE_PACKAGES}" in text.split("AS feast-venv", 1)[1].split("FROM", 1)[0]


# --------------------------------------------------------------------------- examples


@pytest.mark.parametrize("example", ["ray-compute.yaml", "kubernetes-compute.yaml", "sparkapplication-compute.yaml"])
def test_engine_examples_validate_and_name_the_chart_value_they_need(example, monkeypatch, capsys):
    from pathlib import Path

    from featurestore_operator.cli import main

    path = str(Path(__file__).resolve().parents[2] / "examples" / example)
    monkeypatch.setenv("FSO_GCP_PROJECT", "my-gcp-project")
    monkeypatch.setenv("FSO_GCP_REGION", "us-central1")
    # the Spark example's image is outside the operator's: the admin allows its registry (api/bounds.py)
    monkeypatch.setenv("FSO_POLICY", '{"allowedImagePrefixes": ["ghcr.io/example/"]}')
    assert main(["validate", "-f", path]) == 0
    out = capsys.readouterr()
    assert ": valid" in out.out and "compute.enabled=true" in out.err, out
    monkeypatch.setenv("FSO_COMPUTE_ENABLED", "true")
    assert main(["validate", "-f", path]) == 0
    assert "compute.enabled" not in capsys.readouterr().err
