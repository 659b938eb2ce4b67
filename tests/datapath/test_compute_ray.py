"""spec.compute engine ray, for real: a local Ray cluster (a head and a worker process, started
here from the ``ray`` CLI) materializes the feature repo and answers a historical retrieval, from
the RENDERED materialization Job (its container, env, volumes and ``materialize.yaml``, run by
``tests/support/podrunner.py``), into a real redis-server. The same store rendered with the local
engine does the same into a second redis-server; both must hold exactly the same rows.

The Ray processes run on the host (not in the pod's mount namespace): what they read is the
parquet file under /var/tmp, visible to both, like a bucket. The registry and the Job's config
stay inside the pod (its /data volume and /etc/feast).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.prerequisites import missing, need_module

need_module("feast", "feast[redis]==0.67.0 is needed to run materialization", module=True)
need_module("ray", "ray (the test extra) is needed for a local Ray cluster", module=True)

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from featurestore_operator import render  # noqa: E402
from featurestore_operator.api import FeatureStore, OperatorConfig, resolve  # noqa: E402
from featurestore_operator.reconcile.freshness import views_status  # noqa: E402
from featurestore_operator.render import Endpoints, OfflineEndpoint, OnlineEndpoint, RepoSource, SecretKey  # noqa: E402
from featurestore_operator.render.compute import JOB_CONFIG_KEY  # noqa: E402
from featurestore_operator.render.freshness import parse_summary  # noqa: E402
from featurestore_operator.render.names import Names  # noqa: E402

from tests.support import feature_repo  # noqa: E402
from tests.support.podrunner import Mount, PodRunner, unshare_available  # noqa: E402
from tests.support.ray_cluster import LocalRayCluster  # noqa: E402
from tests.support.redis_server import RedisServer, no_retry  # noqa: E402

pytestmark = pytest.mark.timeout(600)

NAMESPACE = "team-a"
VIEW = "driver_hourly_stats"
DATA_PARENT = "/var/tmp"

if unshare_available():
    missing(f"podrunner: {unshare_available()}", module=True)

#: Historical retrieval inside the materialization pod, from the config Feast is pointed at.
RETRIEVE = r"""
import json, os, sys
import pandas as pd
from feast import FeatureStore
store = FeatureStore(fs_yaml_file=os.environ["FEAST_FS_YAML_FILE_PATH"])
rows = json.loads(sys.argv[1])
entity_df = pd.DataFrame({"driver_id": [r[0] for r in rows],
                          "event_timestamp": pd.to_datetime([r[1] for r in rows], utc=True)})
df = store.get_historical_features(entity_df=entity_df, features=json.loads(sys.argv[2])).to_df()
df["event_timestamp"] = df["event_timestamp"].astype(str)
rows = sorted(df.to_dict("records"), key=lambda r: (r["driver_id"], r["event_timestamp"]))
print("RESULT " + json.dumps(rows, default=str))
"""


@dataclass
class Run:
    redis: RedisServer
    rendered: render.Rendered
    runner: PodRunner
    summary: str
    retrieval: list[dict[str, Any]]
    #: wall-clock seconds when the materialization pod started and ended
    window: tuple[float, float]
    #: the materialization container's output
    log: str = ""


#: spec.compute.ray.address may only name a Service of the store's namespace (api/compute.py)
RAY_SERVICE = f"ray-head.{NAMESPACE}.svc.cluster.local"


def _store(compute: dict[str, Any]) -> FeatureStore:
    fs = FeatureStore.model_validate(
        {
            "apiVersion": "featurestore.kubeflow.org/v1alpha1",
            "kind": "FeatureStore",
            "metadata": {"name": "drivers", "namespace": NAMESPACE, "uid": str(uuid.uuid4())},
            "spec": {
                "project": feature_repo.PROJECT,
                "provider": "local",
                "featureRepo": {"configMap": {"name": "driver-feature-repo"}},
                "materialization": {"featureViews": [VIEW]},
                "compute": compute,
            },
        }
    )
    return fs.model_copy(update={"spec": resolve(fs.spec, OperatorConfig())})


def _run(
    compute: dict[str, Any],
    repo: dict[str, str],
    entity_rows: list[list[Any]],
    ray_dir: Path,
    *,
    adapt: Any = None,
    secrets: dict[str, dict[str, str]] | None = None,
    retrieve: bool = True,
    data: Path | None = None,
) -> Run:
    """``adapt(rendered)``: what this host lacks of a cluster (DNS, a bucket), swapped in place;
    ``data``: the host directory behind the store's volume claim (default: the runner's own)."""
    fs = _store(compute)
    names = Names(fs)
    password = uuid.uuid4().hex
    redis_srv = RedisServer(password=password).start()
    endpoints = Endpoints(
        online=OnlineEndpoint(redis_srv.host, redis_srv.port, password=SecretKey(names.online_secret, "password")),
        offline=OfflineEndpoint(claim=names.data_claim),
    )
    rendered = render.render(fs, endpoints, OperatorConfig(), repo=RepoSource("r1"))
    for cm in (o for o in rendered.objects if o["kind"] == "ConfigMap"):  # no cluster DNS: the head is this host
        cm["data"] = {k: v.replace(RAY_SERVICE, "127.0.0.1") for k, v in cm["data"].items()}
    if adapt is not None:
        adapt(rendered)
    runner = PodRunner(
        rendered.objects,
        secrets={names.online_secret: {"password": password}, **(secrets or {})},
        config_maps={"driver-feature-repo": repo},
        namespace=NAMESPACE,
        claims={names.data_claim: data} if data else None,
    )
    apply = runner.pod(next(o for o in rendered.objects if o["kind"] == "Job")).run_job(timeout=300)
    assert apply.returncode == 0, f"feast apply failed:\n{apply.stdout}\n{apply.stderr}"
    pod = runner.pod(runner.find("CronJob"))
    # a Ray node's session dir (raylet sockets) is on the node's filesystem, as in a Ray pod
    node = [Mount(str(ray_dir), str(ray_dir))]
    started = time.time()
    res = pod.run(pod.prepare("materialize", extra_mounts=node), timeout=400)
    window = (started, time.time())
    assert res.returncode == 0, f"materialization ({compute}) failed:\n{res.stdout[-3000:]}\n{res.stderr[-6000:]}"
    if not retrieve:
        return Run(redis_srv, rendered, runner, pod.termination_message("materialize"), [], window, res.stdout)
    prepared = pod.prepare("materialize", extra_mounts=node)
    prepared.argv = [
        "python",
        "-c",
        RETRIEVE,
        json.dumps(entity_rows),
        json.dumps(feature_repo.FEATURE_REFS + [feature_repo.RATING_REF]),
    ]
    out = pod.run(prepared, timeout=300)
    assert out.returncode == 0, f"historical retrieval ({compute}) failed:\n{out.stdout[-3000:]}\n{out.stderr[-6000:]}"
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("RESULT "))
    result = json.loads(line[len("RESULT ") :])
    return Run(redis_srv, rendered, runner, pod.termination_message("materialize"), result, window, res.stdout)


def _rows(srv: RedisServer) -> dict[bytes, dict[bytes, bytes]]:
    r = srv.client(retry=no_retry())
    return {k: r.hgetall(k) for k in r.scan_iter(count=1000)}


@pytest.fixture(scope="module")
def mount_points():
    """Keep the host mount points of the pods' volumes alive while this module runs. podrunner
    creates missing ones and removes them when its runner closes; removing a directory detaches
    every bind mount on it in every mount namespace, so another runner's close (another test run on
    this machine) would empty /etc/feast under a running pod. A file inside keeps rmdir from
    succeeding; ours are removed afterwards."""
    keep, created = [], []
    for d in ("/etc/feast", "/data", "/repo"):
        if not os.path.isdir(d):
            os.makedirs(d)
            created.append(d)
        path = Path(d) / f".podrunner-keep-{os.getpid()}"
        path.touch()
        keep.append(path)
    yield
    for path in keep:
        path.unlink(missing_ok=True)
    for d in created:
        try:
            os.rmdir(d)
        except OSError:
            pass


@dataclass
class Baseline:
    """The driver data, its feature repo, the retrieval's entity rows and the local engine's run of
    them: what every Ray run (this module's and test_compute_rayjob's) must equal."""

    data_dir: Path
    repo: dict[str, str]
    rows: list[list[Any]]
    local: Run


def _baseline() -> Baseline:
    data_dir = Path(tempfile.mkdtemp(prefix="feast-compute-", dir=DATA_PARENT))
    parquet = data_dir / "driver_stats.parquet"
    feature_repo.write_driver_stats(parquet)
    repo = feature_repo.repo_files(parquet)
    now = time.time()
    rows = [
        [d, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - age))]
        for d in feature_repo.DRIVERS
        for age in (3 * 3600, 1800)
    ] + [[feature_repo.UNKNOWN_DRIVER, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))]]
    node = data_dir / "node"  # the pod mounts a Ray node's directory as the Ray run's does; no Ray reads it
    node.mkdir()
    local = _run({"engine": "local"}, repo, rows, node)
    local.runner.close()  # what the tests read of it is taken: its rows stay in its redis-server
    return Baseline(data_dir, repo, rows, local)


def _close_baseline(baseline: Baseline) -> None:
    baseline.local.redis.stop()
    shutil.rmtree(baseline.data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def baseline(mount_points, shared_once) -> Baseline:
    """One local run for both Ray modules (its feast apply, materialization and retrieval: ~15 s)."""
    return shared_once("ray-local-baseline", _baseline, _close_baseline)


@pytest.fixture(scope="module")
def runs(mount_points, baseline):
    cluster = LocalRayCluster(workers=1)
    done: list[Run] = []
    try:
        done.append(
            _run(
                {"engine": "ray", "ray": {"address": f"{RAY_SERVICE}:{cluster.port}", "writeConcurrency": 2}},
                baseline.repo,
                baseline.rows,
                cluster.temp,
            )
        )
        yield {"local": baseline.local, "ray": done[0], "cluster": cluster}
    finally:
        for run in done:
            run.runner.close()
            run.redis.stop()
        cluster.close()


def test_rendered_job_config_points_feast_at_the_ray_cluster(runs):
    import yaml

    ray_run, local_run = runs["ray"], runs["local"]
    cm = next(o for o in ray_run.rendered.objects if o["kind"] == "ConfigMap" and JOB_CONFIG_KEY in o["data"])
    job = yaml.safe_load(cm["data"][JOB_CONFIG_KEY])
    assert job["batch_engine"] == {
        "type": "ray.engine",
        "staging_location": "/data/staging",
        "ray_address": runs["cluster"].address,
        "write_concurrency": 2,
        "target_partition_size_mb": 64,
    }
    assert job["offline_store"] == {
        "type": "ray",
        "storage_path": "/data/staging",
        "ray_address": runs["cluster"].address,
    }
    assert "batch_engine" not in ray_run.rendered.server_yaml, "servers and feast apply keep the local engine"
    assert not any(JOB_CONFIG_KEY in o.get("data", {}) for o in local_run.rendered.objects if o["kind"] == "ConfigMap")


def test_ray_materialization_writes_the_same_rows_as_local(runs):
    local, ray_rows = _rows(runs["local"].redis), _rows(runs["ray"].redis)
    assert len(local) == len(feature_repo.DRIVERS), local.keys()
    assert ray_rows == local, "the Ray engine's Redis rows differ from the local engine's"


def _nulls(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A missing value is NaN in one engine's frame and None in the other's (the Ray store returns
    nullable Int64 columns, the file store float64): both mean null."""
    return [{k: None if v is None or v != v else v for k, v in r.items()} for r in rows]


def test_ray_historical_retrieval_equals_local(runs):
    local, ray_result = _nulls(runs["local"].retrieval), _nulls(runs["ray"].retrieval)
    assert len(local) == 2 * len(feature_repo.DRIVERS) + 1
    assert ray_result == local
    # half an hour ago every driver's newest row (1 h old) is the point-in-time answer
    expected = {d: feature_repo.latest_values(d) for d in feature_repo.DRIVERS}
    recent = [r for r in local if r["driver_id"] in expected][1::2]
    assert [r["city"] for r in recent] == [expected[d]["city"] for d in feature_repo.DRIVERS]


def test_materialization_reports_freshness_per_feature_view(runs):
    for name in ("local", "ray"):
        summary = parse_summary(runs[name].summary)
        assert summary is not None, (name, runs[name].summary)
        views = {v.name: v.materialized_until for v in summary.views}
        assert set(views) == {VIEW}, views  # driver_rating is not in --views: never materialized
        # the run materializes up to "now" (the script's `date -u`, whole seconds) inside its own window
        started, ended = runs[name].window
        assert started - 1 <= views[VIEW].timestamp() <= ended, (name, views, runs[name].window)
        # ... and the operator's side turns the message into the status entry
        end = dt.datetime.fromtimestamp(ended, dt.UTC)
        [entry] = views_status(parse_summary(runs[name].summary), end)
        assert entry.name == VIEW and 0 <= entry.lag_seconds <= ended - started + 1, entry
