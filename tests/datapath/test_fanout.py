"""Parallel materialization on the data path: the rendered shares of one run (render.fanout), run
at the same time as the kubelet would run them (their exact command, env and volumes, PodRunner),
write exactly the rows one unsplit run writes, and their reports merge into every view's freshness.

Both ways a run is split are run: a container per share (clusters without Indexed Jobs, e.g. the
1.20 node in CI) and an Indexed Job's pods (the Job controller's JOB_COMPLETION_INDEX). A store of
one view is split too: into time windows of that view, one per share.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from featurestore_operator import render
from featurestore_operator.api import FeatureStore, OperatorConfig, resolve
from featurestore_operator.reconcile.freshness import report_of
from featurestore_operator.render import Endpoints, OfflineEndpoint, OnlineEndpoint, SecretKey
from featurestore_operator.render.inputs import ApiVersions, RepoSource
from featurestore_operator.render.names import Names

from tests.support import feature_repo
from tests.support.concurrently import concurrently
from tests.support.podrunner import Pod, PodRunner, unshare_available
from tests.support.prerequisites import missing
from tests.support.redis_server import RedisServer, no_retry
from tests.support.versions import V120

pytestmark = pytest.mark.timeout(600)

NAMESPACE = "team-a"
DATA_PARENT = "/var/tmp"
VIEWS = {"driver_hourly_stats", "driver_rating"}
BIG_VIEW = "driver_hourly_stats"

if unshare_available():
    missing(f"podrunner: {unshare_available()}", module=True)


@dataclass
class Run:
    rows: dict[bytes, dict[bytes, bytes]]
    #: the share pods' statuses as the operator would read them (one per pod)
    pods: list[dict]
    #: (container or pod index) -> wall-clock (start, end) of its feast process
    windows: dict[str, tuple[float, float]]
    #: (container or pod index) -> its log
    logs: dict[str, str]
    #: view -> most recent materialization end the registry records, after the run
    recorded: dict[str, str | None]


def _store(parallelism: int, views: list[str]) -> FeatureStore:
    fs = FeatureStore.model_validate(
        {
            "apiVersion": "featurestore.kubeflow.org/v1alpha1",
            "kind": "FeatureStore",
            "metadata": {"name": "drivers", "namespace": NAMESPACE, "uid": str(uuid.uuid4())},
            "spec": {
                "project": feature_repo.PROJECT,
                "provider": "local",
                "featureRepo": {"configMap": {"name": "driver-feature-repo"}},
                "materialization": {"parallelism": parallelism, "featureViews": views},
            },
        }
    )
    return fs.model_copy(update={"spec": resolve(fs.spec, OperatorConfig())})


def _pod_status(pod: Pod, containers: list[str], job_uid: str) -> dict:
    """A finished run pod as the API shows it: controlled by the Job, one terminated status per share."""
    return {
        "metadata": {"ownerReferences": [{"kind": "Job", "uid": job_uid, "controller": True}]},
        "status": {
            "phase": "Succeeded",
            "containerStatuses": [
                {"name": c, "state": {"terminated": {"exitCode": 0, "message": pod.termination_message(c)}}}
                for c in containers
            ],
        },
    }


def _run_shares(runner: PodRunner, versions: ApiVersions, parallelism: int) -> tuple[list[dict], dict]:
    cron = runner.find("CronJob")
    template = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    started: list[tuple[str, Pod, list[str], object, float]] = []
    if versions.indexed_jobs or parallelism == 1:
        for index in range(parallelism):  # an Indexed Job: a pod per share, the index set by the Job controller
            pod = runner.pod(cron, name=f"run-{index}")
            prepared = pod.prepare("materialize")
            if parallelism > 1:
                prepared.env["JOB_COMPLETION_INDEX"] = str(index)
            started.append((str(index), pod, ["materialize"], pod.start(prepared), time.time()))
    else:  # one pod, a container per share
        pod = runner.pod(cron, name="run")
        names = [c["name"] for c in template["containers"]]
        for name in names:
            started.append((name, pod, names, pod.start(pod.prepare(name)), time.time()))
    windows, pods, logs = {}, {}, {}
    for key, pod, containers, running, t0 in started:
        rc = running.proc.wait(timeout=400)
        logs[key] = running.log(400)
        assert rc == 0, f"share {key} failed ({rc}):\n{running.log(80)}"
        windows[key] = (t0, time.time())
        pods[id(pod)] = (pod, containers)
    return [_pod_status(pod, containers, "u-run") for pod, containers in pods.values()], windows, logs


#: The registry's record of each view, read as the materialization pod reads it.
RECORDED = """import json, os
from feast import FeatureStore
store = FeatureStore(fs_yaml_file=os.environ["FEAST_FS_YAML_FILE_PATH"])
ends = {fv.name: fv.most_recent_end_time for fv in store.list_feature_views(allow_cache=False)}
print("RESULT " + json.dumps({k: v and v.isoformat() for k, v in ends.items()}))
"""


def _recorded(runner: PodRunner) -> dict[str, str | None]:
    pod = runner.pod(runner.find("CronJob"), name="check")
    container = runner.find("CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["name"]
    prepared = pod.prepare(container)
    prepared.argv = ["python", "-c", RECORDED]
    out = pod.run(prepared, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def _run(versions: ApiVersions, parallelism: int, repo: dict[str, str], views: list[str] | None = None) -> Run:
    fs = _store(parallelism, views or [])
    names = Names(fs)
    password = uuid.uuid4().hex
    with RedisServer(password=password) as redis_srv:
        endpoints = Endpoints(
            online=OnlineEndpoint(redis_srv.host, redis_srv.port, password=SecretKey(names.online_secret, "password")),
            offline=OfflineEndpoint(claim=names.data_claim),
        )
        rendered = render.render(fs, endpoints, OperatorConfig(), versions=versions, repo=RepoSource("r1"))
        with PodRunner(
            rendered.objects,
            secrets={names.online_secret: {"password": password}},
            config_maps={"driver-feature-repo": repo},
            namespace=NAMESPACE,
        ) as runner:
            apply = runner.pod(next(o for o in rendered.objects if o["kind"] == "Job")).run_job(timeout=300)
            assert apply.returncode == 0, f"feast apply failed:\n{apply.stdout}\n{apply.stderr}"
            pods, windows, logs = _run_shares(runner, versions, parallelism)
            recorded = _recorded(runner)
            r = redis_srv.client(retry=no_retry())
            rows = {k: r.hgetall(k) for k in r.scan_iter(count=1000)}
    return Run(rows, pods, windows, logs, recorded)


def _write_two_days(parquet: Path) -> None:
    """The driver stats with each driver's stale row 30 h old: the views' ttl is 2 days, so a run
    of 2 windows writes the stale rows in its first window and the newest rows in its second."""
    import pandas as pd

    feature_repo.write_driver_stats(parquet)
    df = pd.read_parquet(parquet)
    stale = df["event_timestamp"] < df["event_timestamp"].max() - pd.Timedelta(hours=2)
    df.loc[stale, ["event_timestamp", "created"]] = df["event_timestamp"].max() - pd.Timedelta(hours=29)
    df.to_parquet(parquet, index=False)


@pytest.fixture(scope="module")
def runs():
    data_dir = Path(tempfile.mkdtemp(prefix="feast-fanout-", dir=DATA_PARENT))
    for d in ("/etc/feast", "/data", "/repo"):
        os.makedirs(d, exist_ok=True)
    try:
        parquet = data_dir / "driver_stats.parquet"
        _write_two_days(parquet)
        repo = feature_repo.repo_files(parquet)
        # five independent runs (each its own redis-server, volumes and registry), two at a time
        yield concurrently(
            {
                "one": lambda: _run(ApiVersions(), 1, repo),
                "containers": lambda: _run(V120, 2, repo),
                "indexed": lambda: _run(ApiVersions(), 2, repo),
                "one view": lambda: _run(ApiVersions(), 1, repo, [BIG_VIEW]),
                "one view, 2 shares": lambda: _run(ApiVersions(), 2, repo, [BIG_VIEW]),
            }
        )
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.mark.parametrize("split", ["containers", "indexed"])
def test_the_shares_write_exactly_the_rows_of_one_run(runs, split):
    one, shares = runs["one"].rows, runs[split].rows
    assert one, "the unsplit run wrote nothing: the comparison would prove nothing"
    views_written = {f.split(b":", 1)[1].decode() for h in one.values() for f in h if f.startswith(b"_ts:")}
    assert views_written == VIEWS, views_written
    assert shares == one


@pytest.mark.parametrize("split", ["containers", "indexed"])
def test_each_share_ran_at_the_same_time_and_the_run_reports_every_view(runs, split):
    run = runs[split]
    assert len(run.windows) == 2
    (a0, a1), (b0, b1) = run.windows.values()
    assert a0 < b1 and b0 < a1, f"the shares did not overlap in time: {run.windows}"
    merged = report_of(run.pods, "u-run")
    assert merged is not None and {v.name for v in merged.views} == VIEWS, merged


@pytest.mark.parametrize("split", ["containers", "indexed"])
def test_each_share_takes_one_window_of_every_view(runs, split):
    shares = sorted(re.findall(r"share (\d) of 2: \[([^\]]*)\]", "\n".join(runs[split].logs.values())))
    assert shares == [
        ("0", "'driver_hourly_stats@1/2', 'driver_rating@1/2'"),
        ("1", "'driver_hourly_stats@2/2', 'driver_rating@2/2'"),
    ], runs[split].logs


@pytest.mark.parametrize("split", ["one", "containers", "indexed"])
def test_the_registry_keeps_every_views_interval(runs, split):
    """Concurrent shares rewrite the whole registry (Feast's file/GCS registries): none may erase
    another's interval, or the next run re-materializes that view from its old start."""
    recorded = runs[split].recorded
    assert set(recorded) >= VIEWS and all(recorded[v] for v in VIEWS), recorded


def test_one_view_splits_into_a_time_window_per_share_with_the_rows_of_one_run(runs):
    one, split = runs["one view"], runs["one view, 2 shares"]
    assert one.rows and split.rows == one.rows
    stamps = {h[b"_ts:" + BIG_VIEW.encode()] for h in one.rows.values()}
    assert len(one.rows) == len(feature_repo.DRIVERS) and len(stamps) == 1, "every driver's newest row (1 h old)"
    shares = sorted(re.findall(r"share (\d) of 2: \[([^\]]*)\]", "\n".join(split.logs.values())))
    assert shares == [("0", f"'{BIG_VIEW}@1/2'"), ("1", f"'{BIG_VIEW}@2/2'")], split.logs


def test_one_view_is_fresh_to_the_run_end_once_both_windows_are_recorded(runs):
    run = runs["one view, 2 shares"]
    merged = report_of(run.pods, "u-run")
    assert merged is not None and [v.name for v in merged.views] == [BIG_VIEW], merged
    recorded = dt.datetime.fromisoformat(run.recorded[BIG_VIEW] or "")
    assert merged.views[0].materialized_until == recorded and recorded.second == 0, (merged, run.recorded)
    started = min(t0 for t0, _ in run.windows.values())
    assert recorded.timestamp() >= started - started % 60, "fresh to the run's end (its minute), not a window's"
