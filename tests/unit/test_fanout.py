"""Parallel materialization (render.fanout): the shares a run is split into, as rendered and as the
rendered script runs them (with a stand-in `feast` that records its argv)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from featurestore_operator.api import FeatureStore, OperatorConfig, resolve
from featurestore_operator.backends.planned import planned_endpoints
from featurestore_operator.render import render
from featurestore_operator.render.fanout import is_share
from featurestore_operator.render.inputs import ApiVersions

V120 = ApiVersions(
    cronjob="batch/v1beta1",
    pdb="policy/v1beta1",
    hpa="autoscaling/v2beta2",
    cronjob_time_zone=False,
    indexed_jobs=False,
)


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


# --------------------------------------------------------------------------- the script, run


@pytest.fixture
def fake_bin(tmp_path: Path) -> Path:
    """`feast` records its argv; `python` is this interpreter (the share script needs no Feast when
    the spec lists the views)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    feast = bin_dir / "feast"
    feast.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$FEAST_ARGV"\n')
    feast.chmod(feast.stat().st_mode | stat.S_IEXEC)
    (bin_dir / "python").symlink_to(sys.executable)
    return bin_dir


def run_share(fake_bin: Path, tmp_path: Path, container: dict, index: int | None) -> list[str] | None:
    """Runs the rendered container's command (sh -c SCRIPT -- ARGS) with its env; the feast argv."""
    argv_file = tmp_path / f"argv-{index}"
    script = container["args"][1].replace("/dev/termination-log", str(tmp_path / f"message-{index}"))
    run_env = {
        **env(container),
        "PATH": f"{fake_bin}:{os.environ['PATH']}",
        "FEAST_ARGV": str(argv_file),
        "FEAST_FS_YAML_FILE_PATH": "/nonexistent",
    }
    if index is not None and "FEAST_SLICE_INDEX" not in run_env:
        run_env["JOB_COMPLETION_INDEX"] = str(index)
    done = subprocess.run(
        ["sh", "-c", script, *container["args"][2:]], env=run_env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return argv_file.read_text().split("\n")[:-1] if argv_file.exists() else None


def views_of(argv: list[str] | None) -> list[str]:
    assert argv is not None and argv[0] == "-f" and argv[2] == "materialize-incremental", argv
    return [argv[i + 1] for i, a in enumerate(argv) if a == "--views"]


@pytest.mark.parametrize("versions", [ApiVersions(), V120], ids=["indexed", "containers"])
def test_the_shares_split_the_views_disjointly_and_cover_them(fake_bin, tmp_path, versions):
    views = ["e", "a", "d", "c", "b"]
    job = cronjob(store({"parallelism": 2, "featureViews": views}), versions)["spec"]["jobTemplate"]["spec"]
    containers = job["template"]["spec"]["containers"]
    shares = containers if len(containers) == 2 else [containers[0], containers[0]]
    got = [views_of(run_share(fake_bin, tmp_path, c, i)) for i, c in enumerate(shares)]
    assert got == [["a", "c", "e"], ["b", "d"]]


def test_a_share_without_a_view_runs_nothing_and_succeeds(fake_bin, tmp_path):
    job = cronjob(store({"parallelism": 3, "featureViews": ["a", "b"]}), ApiVersions())["spec"]["jobTemplate"]
    [c] = job["spec"]["template"]["spec"]["containers"]
    assert run_share(fake_bin, tmp_path, c, 2) is None, "feast without --views would materialize every view"
    assert views_of(run_share(fake_bin, tmp_path, c, 1)) == ["b"]
