"""Materialization throughput against the physical limit, side by side in one run:

    bash hack/bench.sh compute [--rows N] [--no-ray] [--profile]
    (default N: calibrated so one pod takes >= 60 CPU-s; --profile: where one pod's time goes, py-spy)

* the limit: raw redis-py pipelined HSETs of exactly the keys and values Feast wrote;
* one pod of the local engine (the rendered materialization script, `feast materialize-incremental`);
* the same pod before the operator's tuning: Feast's classes instrumented by typeguard at import and a
  whole time window written in one batch (Feast's defaults; render/programs/skip_typechecks.py and
  ``spec.materialization.writeBatchSize`` undo them), with each pod's peak memory;
* parallel shares (spec.materialization.parallelism 2: the rendered share program, one process per
  share, each pinned to its own core as a pod on its own node would be), as the operator plans them
  (by time window: each share one half of each view's interval) and a whole view each (the two
  views, one per share; FEAST_SLICE_WINDOWS=1);
* Ray with 1 and 2 workers (a head with no task CPUs plus workers of 1 CPU each, ``ray`` CLI).

Real processes only: a redis-server and Feast with the feature_store.yaml the operator renders (the
/data volume path mapped to a temp dir). Every process of a scenario is pinned with taskset to the
cores the scenario may use. Each scenario starts from the registry as `feast apply` left it and an
empty Redis, materializes the same N rows of two feature views (one entity each, 5 features in all)
and counts the keys and fields.
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
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
for _p in (str(ROOT / "operator"), str(ROOT)):
    if _p not in sys.path:
        sys.path.insert(0, _p)


from featurestore_operator import render  # noqa: E402
from featurestore_operator.api import FeatureStore, OperatorConfig, resolve  # noqa: E402
from featurestore_operator.backends.planned import planned_endpoints  # noqa: E402
from featurestore_operator.render import (  # noqa: E402
    Endpoints,
    OfflineEndpoint,
    OnlineEndpoint,
    SecretKey,
    jobs,
    programs,
)
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

    now = pd.Timestamp(dt.datetime.now(dt.UTC).replace(microsecond=0))
    ids = np.arange(n, dtype="int64")
    # spread over the views' 2-day ttl (47 h .. 1 h old): a run's time windows each hold a share
    ts = now - pd.to_timedelta(47 - ids * 46 / n, unit="h").round("s")
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


VIEWS = [VIEW, "driver_rating"]
FIELDS_PER_KEY = 2 + 4 + 1  # one _ts:<view> per view + the features


@dataclass
class Timing:
    wall: float
    #: CPU seconds of each process of the scenario (they ran at the same time)
    cpu: list[float]
    #: peak resident memory of each process, MiB (its largest child's when it has children)
    rss: list[int] = field(default_factory=list)

    @property
    def critical(self) -> float:
        """Seconds on idle cores of its own: the busiest process's CPU time."""
        return max(self.cpu)


class Scenario:
    """One materialization run: processes started together, timed until the last exits."""

    def __init__(self, work: Path, redis: RedisServer, password: str, n: int) -> None:
        self.work, self.redis, self.password, self.n = work, redis, password, n

    def reset(self) -> None:
        """Redis empty, the registry as `feast apply` left it (no materialization intervals)."""
        self.redis.client().flushall()
        for saved in (self.work / "registry-applied").iterdir():
            shutil.copy2(saved, self.work / "data" / saved.name)

    def run(self, name: str, procs: list[tuple[list[str], dict[str, str], list[int]]]) -> Timing:
        """Wall seconds until the last process exits, and each process's CPU seconds (user + system,
        its children included): on a machine shared with other work, the CPU figures still hold."""
        self.reset()
        base = {**os.environ, "REDIS_PASSWORD": self.password, "FEAST_USAGE": "False", "RAY_USAGE_STATS_ENABLED": "0"}
        logs = [tempfile.TemporaryFile(mode="w+") for _ in procs]
        t0 = time.monotonic()
        running = [
            subprocess.Popen(
                ["taskset", "-c", ",".join(map(str, cores)), *argv],
                env={**base, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for (argv, env, cores), log in zip(procs, logs, strict=True)
        ]
        cpu, rss = [], []
        for p, log in zip(running, logs, strict=True):
            _, status, usage = os.wait4(p.pid, 0)
            p.returncode = os.waitstatus_to_exitcode(status)
            cpu.append(usage.ru_utime + usage.ru_stime)
            rss.append(usage.ru_maxrss // 1024)
            if p.returncode != 0:
                log.seek(0)
                raise SystemExit(f"{name} failed ({p.returncode}):\n{log.read()[-4000:]}")
        seconds = time.monotonic() - t0
        self.check(name)
        return Timing(seconds, cpu, rss)

    def check(self, name: str) -> None:
        r = self.redis.client()
        keys = r.dbsize()
        fields = sum(r.hlen(k) for k in r.scan_iter(count=5000))
        if keys != self.n or fields != self.n * FIELDS_PER_KEY:
            raise SystemExit(
                f"{name}: {keys} keys / {fields} fields in Redis, expected {self.n} / {self.n * FIELDS_PER_KEY}"
            )

    def raw_limit(self) -> Timing:
        """The same keys and values (as the last scenario left them) written back by pipelined HSETs."""
        r = self.redis.client()
        rows = {k: r.hgetall(k) for k in r.scan_iter(count=5000)}
        r.flushall()
        os.sched_setaffinity(0, {0})
        try:
            t0, c0 = time.monotonic(), time.process_time()
            pipe = r.pipeline(transaction=False)
            for i, (key, mapping) in enumerate(rows.items(), 1):
                pipe.hset(key, mapping=mapping)
                if i % 1000 == 0:
                    pipe.execute()
            pipe.execute()
            seconds, cpu = time.monotonic() - t0, time.process_time() - c0
        finally:
            os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
        self.check("raw redis")
        return Timing(seconds, [cpu])


def rendered_script(parallelism: int) -> tuple[list[str], str]:
    """The materialization container's command + args as the operator renders them (the shares'
    index comes from the pod: FEAST_SLICE_INDEX/JOB_COMPLETION_INDEX)."""
    fs = FeatureStore.model_validate(
        {
            "apiVersion": "featurestore.kubeflow.org/v1alpha1",
            "kind": "FeatureStore",
            "metadata": {"name": "bench", "namespace": "bench", "uid": "u"},
            "spec": {"project": feature_repo.PROJECT, "materialization": {"parallelism": parallelism}},
        }
    )
    fs = fs.model_copy(update={"spec": resolve(fs.spec, OperatorConfig())})
    out = render.render(fs, planned_endpoints(fs), OperatorConfig())
    [cron] = [o for o in out.objects if o["kind"] == "CronJob"]
    [c] = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    return [*c["command"], *c["args"]], {e["name"]: e["value"] for e in c["env"] if "value" in e}.get(
        "FEAST_SLICE_COUNT", "1"
    )


def untuned(work: Path, job_yaml: Path) -> tuple[Path, list[str]]:
    """The job config and one pod's argv as Feast's defaults would have them (see the docstring)."""
    config = yaml.safe_load(job_yaml.read_text())
    config.pop("materialization")
    path = work / "untuned-job.yaml"
    path.write_text(yaml.safe_dump(config))
    argv, _ = rendered_script(1)
    return path, [programs.feast_program("materialize.py") if a == jobs.MATERIALIZE_PROGRAM else a for a in argv]


def pod_procs(
    work: Path, job_yaml: Path, parallelism: int, windows: int = 0, argv: list[str] | None = None
) -> list[tuple[list[str], dict[str, str], list[int]]]:
    rendered, count = rendered_script(parallelism)
    argv = argv or rendered
    env = {
        **({"FEAST_SLICE_WINDOWS": str(windows)} if windows else {}),
        "FEAST_FS_YAML_FILE_PATH": str(job_yaml),
        "FEAST_TERMINATION_LOG": str(work / "termination-log"),
        "PATH": f"{BIN}:{os.environ['PATH']}",
    }
    if parallelism == 1:
        return [(argv, env, [0])]
    return [
        (argv, {**env, "FEAST_SLICE_COUNT": count, "JOB_COMPLETION_INDEX": str(i)}, [i]) for i in range(parallelism)
    ]


def feast_materialize(job_yaml: Path, cores: list[int]) -> list[tuple[list[str], dict[str, str], list[int]]]:
    end = dt.datetime.now(dt.UTC).replace(microsecond=0)
    start = end - dt.timedelta(days=2)
    views = [w for v in VIEWS for w in ("--views", v)]
    fmt = "%Y-%m-%dT%H:%M:%S"
    argv = [str(BIN / "feast"), "-f", str(job_yaml), "materialize", start.strftime(fmt), end.strftime(fmt), *views]
    return [(argv, {}, cores)]


def ray_run(sc: Scenario, work: Path, redis: RedisServer, password: str, workers: int) -> Timing:
    token = uuid.uuid4().hex  # Ray >= 2.5x picks up ~/.ray/auth_token when one exists: always use token auth
    ray = LocalRayCluster(workers, head_cpus=0, object_store_bytes=300_000_000, cores=[0, 1][:workers], token=token)
    try:
        compute = {
            "engine": "ray",
            "ray": {"address": f"{RAY_SERVICE}:{ray.port}", "writeConcurrency": workers, "targetPartitionSizeMb": 4},
        }
        _, ray_job = config_files(work, redis, password, compute)
        [(argv, _, cores)] = feast_materialize(ray_job, [0, 1][:workers])
        return sc.run(f"ray x{workers}", [(argv, {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}, cores)])
    finally:
        ray.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=0, help="rows to materialize (0: calibrate to >= 60 s on local@1 CPU)")
    ap.add_argument("--no-ray", action="store_true", help="skip the Ray scenarios")
    ap.add_argument("--profile", action="store_true", help="also where one pod's CPU goes (py-spy), before and after")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-compute-", dir="/var/tmp"))
    (work / "data").mkdir()
    password = uuid.uuid4().hex
    results: list[tuple[str, int, Timing]] = []
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
        shutil.copytree(work / "data", work / "registry-applied")
        sc = Scenario(work, redis, password, n)
        if not args.rows:  # calibrate: one pod on 1 CPU with 50k rows, then size N for >= 60 s
            rate = n / sc.run("calibration", pod_procs(work, local_job, 1)).critical
            n = sc.n = int(rate * 66 / 10_000 + 1) * 10_000
            write_rows(parquet, n)
            print(f"calibration: one pod, 1 CPU: {rate:,.0f} rows/CPU-s -> N = {n:,}", flush=True)
        results.append(("one pod (local engine), 1 CPU", 1, sc.run("one pod", pod_procs(work, local_job, 1))))
        results.insert(0, ("raw redis-py pipelined HSET", 1, sc.raw_limit()))
        before_job, before_argv = untuned(work, local_job)
        before = sc.run("before tuning", pod_procs(work, before_job, 1, argv=before_argv))
        results.append(("one pod, before tuning (Feast defaults)", 1, before))
        if args.profile:
            profile(sc, work, [("after", local_job, None), ("before", before_job, before_argv)])
        windows = sc.run("2 shares", pod_procs(work, local_job, 2))  # the plan: window i of every view
        results.append(("2 shares x 1 CPU, by time window", 2, windows))
        views = sc.run("2 shares, whole views", pod_procs(work, local_job, 2, windows=1))
        results.append(("2 shares x 1 CPU, a whole view each", 2, views))
        if not args.no_ray:
            report(n, results)  # the local figures, whatever Ray does
            for workers in (1, 2):
                results.append(
                    (f"ray, {workers} worker(s) x 1 CPU", workers, ray_run(sc, work, redis, password, workers))
                )
    shutil.rmtree(work, ignore_errors=True)
    report(n, results)


#: where a sample's time goes: the first part (in this order) with one of its frames in the stack
PROFILE_PARTS = [
    ("Redis writes (Feast's online_write_batch, redis-py)", "online_write_batch"),
    ("Arrow -> protobuf (Feast's _convert_arrow_to_proto)", "_convert_arrow_to_proto"),
    ("offline read, filter, dedup (dask, pandas, pyarrow)", "LocalSourceReadNode|LocalDedupNode|LocalFilterNode"),
    ("imports (Feast, typeguard's instrumentation, pandas, dask)", "_find_and_load"),
    ("registry reads and commits", "Registry.|RegistryStore."),
]


def profile(sc: Scenario, work: Path, runs: list[tuple[str, Path, list[str] | None]]) -> None:
    """One pod per run under py-spy (50 samples/s, its own core): the share of its samples each
    part of the materialization takes."""
    for label, job, argv in runs:
        out = work / f"profile-{label}.txt"
        [(cmd, env, cores)] = pod_procs(work, job, 1, argv=argv)
        spy = [str(BIN / "py-spy"), "record", "-r", "50", "-f", "raw", "-o", str(out), "--"]
        sc.run(f"profile {label}", [([*spy, *cmd], env, cores)])
        parts: Counter[str] = Counter()
        for line in out.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            part = next((p for p, frames in PROFILE_PARTS if any(f in stack for f in frames.split("|"))), "other")
            parts[part] += int(count)
        total = sum(parts.values())
        print(f"\nwhere one pod's time goes, {label} tuning ({total} samples at 50/s):")
        for part, count in parts.most_common():
            print(f"  {count / total:6.1%}  {part}")


def report(n: int, results: list[tuple[str, int, Timing]]) -> None:
    """Wall-clock figures, and the same on idle cores (the busiest process's CPU seconds): the
    second column set holds on a machine shared with other work, the first only on a quiet one."""
    one, limit = results[1][2], results[0][2]
    print(f"\nmaterialize {n:,} rows x 2 feature views (5 features, 1 row per entity) into redis-server")
    head = f"{'scenario':<40}{'CPUs':>5}{'wall s':>8}{'rows/s':>9}{'vs 1 pod':>9}"
    print(f"{head}{'CPU s':>10}{'rows/s*':>9}{'vs 1 pod*':>10}{'of limit*':>10}{'peak MiB':>10}")
    for name, cpus, t in results:
        wall, crit = n / t.wall, n / t.critical
        line = f"{name:<40}{cpus:>5}{t.wall:>8.1f}{wall:>9,.0f}{wall / (n / one.wall):>8.2f}x"
        cpu, rss = "+".join(f"{c:.1f}" for c in t.cpu), "+".join(map(str, t.rss)) or "-"
        line += f"{cpu:>10}{crit:>9,.0f}{crit / (n / one.critical):>9.2f}x{crit / (n / limit.critical):>10.1%}"
        print(f"{line}{rss:>10}")
    print(
        "* on idle cores: rows / the busiest process's CPU seconds (what the wall time is when each "
        "process has a core of its own)"
    )
    print(f"load average at the end: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")


if __name__ == "__main__":
    main()
