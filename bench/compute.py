"""Materialization throughput: the local engine (one pod) vs Ray, at equal cores, side by side.

    bash hack/bench.sh compute [--rows N]      (default: calibrated so local@1 CPU takes >= 60 s)

Real processes only: a redis-server, a Ray cluster (a head with no task CPUs plus 1 or 2 workers
with 1 CPU each, started from the ``ray`` CLI), and ``feast materialize`` with the job
feature_store.yaml the operator renders for each engine (the /data volume path mapped to a temp
dir). Every process of a scenario is pinned with taskset to the cores the scenario may use.
Each scenario flushes Redis, materializes the same N rows (one entity each) and counts the keys.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _p in (str(ROOT / "operator"), str(ROOT)):
    if _p not in sys.path:
        sys.path.insert(0, _p)


from featurestore_operator import render  # noqa: E402
from featurestore_operator.api import FeatureStore, OperatorConfig, resolve  # noqa: E402
from featurestore_operator.render import Endpoints, OfflineEndpoint, OnlineEndpoint, SecretKey  # noqa: E402
from featurestore_operator.render.compute import JOB_CONFIG_KEY  # noqa: E402
from featurestore_operator.render.feast_config import FEAST_CONFIG_FILE  # noqa: E402
from featurestore_operator.render.inputs import DATA_MOUNT  # noqa: E402

from tests.support import feature_repo  # noqa: E402
from tests.support.ray_cluster import LocalRayCluster  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402

BIN = Path(sys.executable).parent
VIEW = "driver_hourly_stats"


def write_rows(path: Path, n: int) -> None:
    import numpy as np
    import pandas as pd

    ts = pd.Timestamp(dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1))
    ids = np.arange(n, dtype="int64")
    pd.DataFrame(
        {
            "driver_id": ids,
            "event_timestamp": ts,
            "created": ts,
            "conv_rate": (ids % 100 / 100).astype("float32"),
            "acc_rate": (ids % 7 / 7).astype("float32"),
            "avg_daily_trips": ids % 500,
            "city": pd.Series(ids % 50).map(lambda i: f"city-{i}"),
            "rating": (ids % 5).astype("float32"),
        }
    ).to_parquet(path, index=False, row_group_size=20_000)  # row groups: Ray can split the read


#: spec.compute.ray.address names a Service of the store's namespace; the bench's head runs on this host
RAY_SERVICE = "ray-head.bench.svc.cluster.local"


def config_files(work: Path, redis: RedisServer, password: str, compute: dict) -> tuple[Path, Path]:
    fs = FeatureStore.model_validate(
        {
            "apiVersion": "featurestore.kubeflow.org/v1alpha1",
            "kind": "FeatureStore",
            "metadata": {"name": "bench", "namespace": "bench", "uid": str(uuid.uuid4())},
            "spec": {"project": feature_repo.PROJECT, "provider": "local", "compute": compute},
        }
    )
    fs = fs.model_copy(update={"spec": resolve(fs.spec, OperatorConfig())})
    endpoints = Endpoints(
        online=OnlineEndpoint(redis.host, redis.port, password=SecretKey("s", "password")),
        offline=OfflineEndpoint(claim="bench-data"),
    )
    out = render.render(fs, endpoints, OperatorConfig())
    [cm] = [
        o
        for o in out.objects
        if o["kind"] == "ConfigMap"
        and FEAST_CONFIG_FILE in o.get("data", {})
        and o["metadata"]["name"].endswith("-feast-config")
    ]
    paths = []
    for key in (FEAST_CONFIG_FILE, JOB_CONFIG_KEY):
        text = cm["data"].get(key, cm["data"][FEAST_CONFIG_FILE]).replace(f"{DATA_MOUNT}/", f"{work}/data/")
        text = text.replace(RAY_SERVICE, "127.0.0.1")  # no cluster DNS here: the head's Service is this host
        path = work / f"{compute.get('engine', 'local')}-{key}"
        path.write_text(text)
        paths.append(path)
    return paths[0], paths[1]


def materialize(job_yaml: Path, redis: RedisServer, password: str, cores: list[int], n: int) -> float:
    redis.client().flushall()
    end = dt.datetime.now(dt.UTC).replace(microsecond=0)
    start = end - dt.timedelta(days=2)
    env = {**os.environ, "REDIS_PASSWORD": password, "FEAST_USAGE": "False", "RAY_USAGE_STATS_ENABLED": "0"}
    t0 = time.monotonic()
    res = subprocess.run(
        [
            "taskset",
            "-c",
            ",".join(map(str, cores)),
            str(BIN / "feast"),
            "-f",
            str(job_yaml),
            "materialize",
            start.strftime("%Y-%m-%dT%H:%M:%S"),
            end.strftime("%Y-%m-%dT%H:%M:%S"),
            "--views",
            VIEW,
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    seconds = time.monotonic() - t0
    if res.returncode != 0:
        raise SystemExit(f"materialize failed ({job_yaml.name}):\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}")
    keys = redis.client().dbsize()
    if keys != n:
        raise SystemExit(f"{job_yaml.name}: {keys} keys in Redis, expected {n}")
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=0, help="rows to materialize (0: calibrate to >= 60 s on local@1 CPU)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-compute-", dir="/var/tmp"))
    (work / "data").mkdir()
    password = uuid.uuid4().hex
    results: list[tuple[str, int, float]] = []
    with RedisServer(password=password) as redis:
        server_yaml, local_job = config_files(work, redis, password, {"engine": "local"})
        repo = work / "repo"
        repo.mkdir()
        parquet = work / "rows.parquet"
        (repo / "features.py").write_text(feature_repo.repo_files(parquet)["features.py"])
        env = {**os.environ, "REDIS_PASSWORD": password, "FEAST_USAGE": "False"}
        n = args.rows or 50_000
        write_rows(parquet, n)
        subprocess.run(
            [str(BIN / "feast"), "-f", str(server_yaml), "--chdir", str(repo), "apply"],
            check=True,
            env=env,
            capture_output=True,
        )
        if not args.rows:  # calibrate: local@1 CPU on 50k rows, then size N for >= 60 s
            rate = n / materialize(local_job, redis, password, [0], n)
            n = int(rate * 66 / 10_000 + 1) * 10_000
            write_rows(parquet, n)
            print(f"calibration: local@1 CPU {rate:,.0f} rows/s -> N = {n:,}", flush=True)
        results.append(("local, 1 CPU", 1, materialize(local_job, redis, password, [0], n)))
        results.append(("local, 2 CPUs", 2, materialize(local_job, redis, password, [0, 1], n)))
        for workers in (1, 2):
            ray = LocalRayCluster(workers, head_cpus=0, object_store_bytes=300_000_000, cores=[0, 1][:workers])
            try:
                _, ray_job = config_files(
                    work,
                    redis,
                    password,
                    {
                        "engine": "ray",
                        "ray": {
                            "address": f"{RAY_SERVICE}:{ray.port}",
                            "writeConcurrency": workers,
                            "targetPartitionSizeMb": 4,
                        },
                    },
                )
                results.append(
                    (
                        f"ray, {workers} worker(s) x 1 CPU",
                        workers,
                        materialize(ray_job, redis, password, [0, 1][:workers], n),
                    )
                )
            finally:
                ray.close()
    shutil.rmtree(work, ignore_errors=True)
    base = n / results[0][2]
    print(f"\nmaterialize {n:,} rows (1 feature view, 4 features, 1 row per entity) into redis-server")
    print(f"{'scenario':<32}{'CPUs':>5}{'seconds':>10}{'rows/s':>12}{'vs local@1':>12}")
    for name, cpus, seconds in results:
        print(f"{name:<32}{cpus:>5}{seconds:>10.1f}{n / seconds:>12,.0f}{n / seconds / base:>11.2f}x")


if __name__ == "__main__":
    main()
