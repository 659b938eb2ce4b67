"""Parallel materialization (render.fanout): the shares a run is split into, as rendered. The shares
run with real Feast in tests/datapath/test_fanout.py."""

from __future__ import annotations

import pytest
from featurestore_operator.api import FeatureStore, OperatorConfig, resolve
from featurestore_operator.backends.planned import planned_endpoints
from featurestore_operator.render import render
from featurestore_operator.render.fanout import is_share
from featurestore_operator.render.inputs import ApiVersions

from tests.support.versions import V120


def store(materialization: dict, compute: dict | None = None) -> FeatureStore:
    spec = {"project": "p", "materialization": materialization, **({"compute": compute} if compute else {})}
    fs = FeatureStore.model_validate(
        {
            "apiVersion": "featurestore.kubeflow.org/v1alpha1",
            "kind": "FeatureStore",
            "metadata": {"name": "s", "namespace": "team-a", "uid": "u"},
            "spec": spec,
        }
    )
    return fs.model_copy(update={"spec": resolve(fs.spec, OperatorConfig())})


def cronjob(fs: FeatureStore, versions: ApiVersions) -> dict:
    out = render(fs, planned_endpoints(fs), OperatorConfig(), versions=versions)
    return next(o for o in out.objects if o["kind"] == "CronJob")


def env(container: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def test_current_clusters_run_an_indexed_job_of_one_pod_per_share():
    job = cronjob(store({"parallelism": 3}), ApiVersions())["spec"]["jobTemplate"]["spec"]
    assert (job["completionMode"], job["completions"], job["parallelism"]) == ("Indexed", 3, 3)
    [c] = job["template"]["spec"]["containers"]
    assert c["name"] == "materialize" and env(c)["FEAST_SLICE_COUNT"] == "3"
    assert "FEAST_SLICE_INDEX" not in env(c), "the Job controller's JOB_COMPLETION_INDEX is the index"


def test_clusters_without_indexed_jobs_run_a_container_per_share():
    job = cronjob(store({"parallelism": 2}), V120)["spec"]["jobTemplate"]["spec"]
    assert "completionMode" not in job and "completions" not in job
    shares = job["template"]["spec"]["containers"]
    assert [(c["name"], env(c)["FEAST_SLICE_INDEX"], env(c)["FEAST_SLICE_COUNT"]) for c in shares] == [
        ("materialize-0", "0", "2"),
        ("materialize-1", "1", "2"),
    ]
    assert all(is_share(c["name"]) for c in shares)
    assert shares[0]["resources"] == shares[1]["resources"], "every share is sized as one materialization pod"


def test_one_share_renders_as_before():
    for versions in (ApiVersions(), V120):
        job = cronjob(store({}), versions)["spec"]["jobTemplate"]["spec"]
        assert "completionMode" not in job
        [c] = job["template"]["spec"]["containers"]
        assert c["name"] == "materialize" and "FEAST_SLICE_COUNT" not in env(c)


def test_shares_are_refused_with_another_engine():
    """(The policy's maxComputePods bounds them: tests/unit/test_policy_bounds.py COUNTS.)"""
    with pytest.raises(ValueError, match=r"materialization.parallelism 2 .* compute.engine ray"):
        store({"parallelism": 2}, {"engine": "ray"})
