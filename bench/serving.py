"""Online serving benchmark: the rendered feature server vs. Feast's defaults vs. raw Redis reads.

    bash hack/bench.sh serving [--rounds R] [--requests N] [--seconds S]   (as root)

Sets up the same data path as tests/datapath/test_feast_datapath.py (real redis-server with TLS +
AUTH shaped like Memorystore, fake-gcs-server for the gs:// registry, the driver feature repo),
runs the rendered apply Job and materialization CronJob containers, then measures
POST /get-online-features (1 entity, 4 features of driver_hourly_stats) at concurrency 1 and 16
through:

  (a) rendered  the rendered feature server Deployment container, exactly (its flags: workers from
                the CPU limit, --keep-alive-timeout, --registry_ttl_sec, --no-access-log);
  (b) default   `feast -f /etc/feast/feature_store.yaml serve` with Feast's default flags, in the
                same pod (same config, Secret env, mounts), i.e. only the flags differ;
  (c) raw       redis-py on the same Redis (TLS + AUTH): one HMGET of the Feast hash fields
                (key = serialize_entity_key(v3) + project, fields = mmh3("view:feature") and
                "_ts:view" — Feast's own layout and command) + decoding the ValueProtos. The floor
                without HTTP, JSON, registry lookups and Feast's response assembly.

Every request is timed; each (target, concurrency) run is bounded by --requests and --seconds and
follows a warm-up. --rounds rounds run every arm once each, in an order rotated per round; the
summary gives medians over rounds and the median of per-round ratios (noisy machines).
Loopback only; the client threads share the machine's CPUs with the server.
Needs root (mount namespaces, see tests/support/podrunner.py), redis-server, fake-gcs-server,
feast[redis,gcp]. Port 6566 must be free. Cleans up everything it starts; exits 0 on success.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "operator"))

FS_NAME = "drivers"
NAMESPACE = "bench"
VIEW = "driver_hourly_stats"


@dataclass
class Result:
    target: str
    concurrency: int
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float = 0.0
    slow: int = 0  # requests slower than 100 ms

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    idx = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[idx]


def _run_load(target: str, concurrency: int, make_call, total: int, seconds: float, warmup: int) -> Result:
    """``make_call()`` returns (call, close) for one worker thread; call() raises on failure."""
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors = [0] * concurrency
    remaining = [total]
    lock = threading.Lock()
    start_barrier = threading.Barrier(concurrency + 1)
    deadline = [0.0]

    def worker(i: int) -> None:
        call, close = make_call()
        try:
            for _ in range(warmup):
                try:
                    call(i)
                except Exception:  # noqa: BLE001 - warm-up only
                    pass
            start_barrier.wait()
            mine = latencies[i]
            while True:
                with lock:
                    if remaining[0] <= 0:
                        break
                    remaining[0] -= 1
                if time.perf_counter() > deadline[0]:
                    break
                t0 = time.perf_counter()
                try:
                    call(i)
                except Exception:  # noqa: BLE001 - counted
                    errors[i] += 1
                    continue
                mine.append(time.perf_counter() - t0)
        finally:
            close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    for t in threads:
        t.start()
    deadline[0] = time.perf_counter() + seconds + 60  # set properly right after the barrier
    start_barrier.wait()
    t0 = time.perf_counter()
    deadline[0] = t0 + seconds
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    flat = sorted(x for lst in latencies for x in lst)
    return Result(
        target,
        concurrency,
        len(flat),
        sum(errors),
        elapsed,
        _percentile(flat, 0.50) * 1e3,
        _percentile(flat, 0.99) * 1e3,
        (flat[-1] * 1e3) if flat else float("nan"),
        sum(1 for x in flat if x > 0.1),
    )


def _http_caller(port: int, drivers: list[int], features: list[str]):
    bodies = [json.dumps({"features": features, "entities": {"driver_id": [d]}}).encode() for d in drivers]

    def make():
        conn = [http.client.HTTPConnection("127.0.0.1", port, timeout=10)]
        counter = [0]

        def call(i: int) -> None:
            body = bodies[(counter[0] + i) % len(bodies)]
            counter[0] += 1
            try:
                conn[0].request("POST", "/get-online-features", body=body, headers={"Content-Type": "application/json"})
                resp = conn[0].getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException):
                # A keep-alive connection the server closed (e.g. a gunicorn worker recycled after
                # --max-requests): counted as an error, like a client without retries would see it.
                conn[0].close()
                conn[0] = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                raise
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}: {data[:200]!r}")

        return call, lambda: conn[0].close()

    return make


def _raw_caller(redis_srv, project: str, drivers: list[int], features: list[str]):
    import redis
    from feast.infra.online_stores.helpers import _mmh3, _redis_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value
    from google.protobuf.timestamp_pb2 import Timestamp

    keys = [
        _redis_key(project, EntityKey(join_keys=["driver_id"], entity_values=[Value(int64_val=d)]), 3) for d in drivers
    ]
    names = [f.split(":", 1)[1] for f in features]
    fields = [_mmh3(f"{VIEW}:{n}") for n in names] + [f"_ts:{VIEW}".encode()]
    pool = redis.ConnectionPool(
        connection_class=redis.SSLConnection,
        host=redis_srv.host,
        port=redis_srv.port,
        password=redis_srv.password,
        ssl_ca_certs=redis_srv.ca_path,
        max_connections=64,
    )
    client = redis.Redis(connection_pool=pool)

    def make():
        counter = [0]

        def call(i: int) -> None:
            key = keys[(counter[0] + i) % len(keys)]
            counter[0] += 1
            values = client.hmget(key, fields)
            out = {}
            for n, raw in zip(names, values[:-1], strict=True):  # the last field is the timestamp
                v = Value()
                if raw:
                    v.ParseFromString(raw)
                out[n] = v
            ts = Timestamp()
            if values[-1]:
                ts.ParseFromString(values[-1])
            if not out["conv_rate"].HasField("float_val"):
                raise RuntimeError("missing value")

        return call, lambda: None

    return make, pool


def _med(values) -> float:
    import statistics

    return statistics.median(list(values))


def _print_result(r: Result) -> None:
    print(
        f"    c={r.concurrency:<3} {r.requests} req in {r.seconds:.1f} s: {r.rps:.0f} req/s, p50 {r.p50_ms:.2f} ms, "
        f"p99 {r.p99_ms:.2f} ms, max {r.max_ms:.0f} ms, >100ms {r.slow}, errors {r.errors}"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=3000, help="max measured requests per run (default 3000)")
    ap.add_argument("--seconds", type=float, default=15.0, help="max seconds per run (default 15)")
    ap.add_argument("--warmup", type=int, default=20, help="warm-up requests per client thread")
    ap.add_argument("--rounds", type=int, default=3, help="rounds; each runs every arm once, in rotated order")
    ap.add_argument("--concurrency", default="1,16", help="comma-separated client concurrencies")
    ap.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="LABEL=ARGS",
        help="also measure the rendered command plus extra flags, e.g. 'maxreq0=--max-requests 0'",
    )
    args = ap.parse_args()
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    # SIGTERM/SIGHUP -> SystemExit, so every `finally` below stops what it started.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))

    import importlib.util

    if importlib.util.find_spec("feast") is None:
        print(
            "bench/serving.py needs feast[redis,gcp]==0.67.0 importable (run it with the project's venv python)",
            file=sys.stderr,
        )
        return 2
    from featurestore_operator import render
    from featurestore_operator.api import FeatureStore, OperatorConfig, resolve
    from featurestore_operator.render import Endpoints, OfflineEndpoint, OnlineEndpoint, RepoSource, SecretKey
    from featurestore_operator.render.names import Names

    from tests.support import feature_repo
    from tests.support.gcs_emulator import GcsEmulator
    from tests.support.podrunner import PodRunner, unshare_available
    from tests.support.redis_server import RedisServer

    why = unshare_available()
    if why:
        print(f"bench/serving.py cannot run containers here: {why}", file=sys.stderr)
        return 2

    config = OperatorConfig(default_provider="gcp", gcp_project="bench-project", gcp_region="us-central1")
    fs = FeatureStore.model_validate(
        {
            "metadata": {"name": FS_NAME, "namespace": NAMESPACE, "uid": str(uuid.uuid4())},
            "spec": {
                "project": feature_repo.PROJECT,
                "provider": "gcp",
                "featureRepo": {"configMap": {"name": "driver-feature-repo"}},
                "materialization": {"featureViews": [VIEW]},
            },
        }
    )
    fs = fs.model_copy(update={"spec": resolve(fs.spec, config)})
    names = Names(fs)
    password = str(uuid.uuid4())
    data_dir = Path(tempfile.mkdtemp(prefix="feast-bench-", dir="/var/tmp"))
    results: list[Result] = []
    t_setup = time.monotonic()
    with RedisServer(tls=True, password=password) as redis_srv, GcsEmulator() as gcs:
        runner = None
        try:
            bucket = f"fso-bench-{secrets.token_hex(4)}"
            gcs.client().create_bucket(bucket)
            endpoints = Endpoints(
                online=OnlineEndpoint(
                    host=redis_srv.host,
                    port=redis_srv.port,
                    tls=True,
                    password=SecretKey(names.online_secret, "password"),
                    ca=SecretKey(names.online_secret, "ca.crt"),
                ),
                offline=OfflineEndpoint(bucket=bucket),
            )
            parquet = data_dir / "driver_stats.parquet"
            feature_repo.write_driver_stats(parquet)
            rendered = render.render(fs, endpoints, config, repo=RepoSource("bench"))
            runner = PodRunner(
                rendered.objects,
                secrets={names.online_secret: {"password": password, "ca.crt": redis_srv.ca_pem}},
                config_maps={"driver-feature-repo": feature_repo.repo_files(parquet)},
                extra_env=gcs.env(),
                namespace=NAMESPACE,
            )
            for kind in ("Job", "CronJob"):
                res = runner.pod(runner.find(kind)).run_job(timeout=300)
                if res.returncode != 0:
                    print(f"{kind} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}", file=sys.stderr)
                    return 1
            print(f"setup (redis, gcs, apply Job, materialization CronJob): {time.monotonic() - t_setup:.1f} s")

            drivers = [d for d in feature_repo.DRIVERS]
            features = feature_repo.FEATURE_REFS
            deployment = runner.find("Deployment", names.feature_server)
            rendered_argv = runner.pod(deployment).prepare("feature-server").argv
            variants: list[tuple[str, list[str]]] = [
                ("rendered", rendered_argv),
                ("default", ["feast", "-f", "/etc/feast/feature_store.yaml", "serve"]),
            ]
            for spec in args.also:
                label, _, extra = spec.partition("=")
                variants.append((label, rendered_argv + extra.split()))
            make_raw, pool = _raw_caller(redis_srv, feature_repo.PROJECT, drivers, features)
            arms = [label for label, _ in variants] + ["raw"]
            try:
                for rnd in range(args.rounds):
                    # rotate the order each round: no arm always runs first (or right after another)
                    for label in arms[rnd % len(arms) :] + arms[: rnd % len(arms)]:
                        if label == "raw":
                            print(
                                f"[round {rnd}] (raw) redis-py HMGET of the Feast hash fields"
                                " + ValueProto decode (TLS + AUTH)"
                            )
                            for c in concurrencies:
                                r = _run_load("raw", c, make_raw, args.requests, args.seconds, args.warmup)
                                results.append(r)
                                _print_result(r)
                            continue
                        argv = dict(variants)[label]
                        pod = runner.pod(deployment)
                        prepared = pod.prepare("feature-server")
                        prepared.argv = list(argv)
                        print(f"[round {rnd}] ({label}) {' '.join(prepared.argv)}")
                        running = pod.start(prepared)
                        try:
                            ready = running.wait_ready(timeout=120)
                            print(f"    ready after {ready:.1f} s")
                            port = prepared.ports["http"]
                            for c in concurrencies:
                                r = _run_load(
                                    label,
                                    c,
                                    _http_caller(port, drivers, features),
                                    args.requests,
                                    args.seconds,
                                    args.warmup,
                                )
                                results.append(r)
                                _print_result(r)
                        finally:
                            running.stop()
                            log = running.log_path.read_text(errors="replace")
                            # uvicorn's limit_max_requests (gunicorn --max-requests, Feast default 1000 +
                            # jitter 50) ends a worker; gunicorn boots a new one. With one worker nothing
                            # serves meanwhile, and open keep-alive connections are closed (client errors).
                            print(
                                f"    server log: {log.count('Booting worker')} worker boots, "
                                f"{log.count('Maximum request limit')} max-requests recycles"
                            )
            finally:
                pool.disconnect()
        finally:
            if runner is not None:
                runner.close()
            shutil.rmtree(data_dir, ignore_errors=True)

    print()
    print(
        f"get-online-features, 1 entity x {len(feature_repo.FEATURE_REFS)} features, loopback, "
        f"{os.cpu_count()} CPUs shared by clients and server; {args.rounds} rounds, medians over rounds"
    )
    print(
        f"{'target':<10} {'conc':>4} {'requests':>8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"
        f" {'>100ms':>6} {'errors':>6}"
    )
    runs: dict[tuple[str, int], list[Result]] = {}
    for r in results:
        runs.setdefault((r.target, r.concurrency), []).append(r)
    for (target, c), rs in runs.items():
        print(
            f"{target:<10} {c:>4} {sum(r.requests for r in rs):>8} {_med(r.rps for r in rs):>8.0f} "
            f"{_med(r.p50_ms for r in rs):>8.2f} {_med(r.p99_ms for r in rs):>8.2f} {max(r.max_ms for r in rs):>8.0f} "
            f"{sum(r.slow for r in rs):>6} {sum(r.errors for r in rs):>6}"
        )
    print()
    print("ratios: median over rounds of the per-round ratio (round i of one arm against round i of the other)")
    print(f"{'ratio':<22} {'conc':>4} {'req/s':>7} {'p50':>7} {'p99':>7}   per-round req/s ratios")
    for other in [label for label, _ in variants if label != "rendered"] + ["raw"]:
        for c in concurrencies:
            # an arm may have fewer rounds (a failed start): pair what both have
            pairs = list(zip(runs.get(("rendered", c), []), runs.get((other, c), []), strict=False))
            pairs = [(a, b) for a, b in pairs if b.rps and b.p50_ms and b.p99_ms]
            if not pairs:
                continue
            rps = [a.rps / b.rps for a, b in pairs]
            p50 = _med(a.p50_ms / b.p50_ms for a, b in pairs)
            p99 = _med(a.p99_ms / b.p99_ms for a, b in pairs)
            print(
                f"{'rendered/' + other:<22} {c:>4} {_med(rps):>7.2f} {p50:>7.2f} "
                f"{p99:>7.2f}   {', '.join(f'{x:.2f}' for x in rps)}"
            )
    print()
    print("rendered flags: " + " ".join(rendered_argv or []))
    failed = sum(r.errors for r in results)
    if failed:
        # Reported, not fatal: with Feast's --max-requests recycling, clients on a keep-alive
        # connection see resets when a worker restarts (that is a finding, not a bench failure).
        print(f"{failed} requests failed (connection resets/HTTP errors; see the errors column)")
    dead = [f"{r.target} c={r.concurrency}" for r in results if r.requests == 0]
    if dead:
        print("no successful requests: " + ", ".join(dead), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
