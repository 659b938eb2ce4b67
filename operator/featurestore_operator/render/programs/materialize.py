"""The materialization container's program (runs in the Feast image, one process): materializes
the run's feature views incrementally up to now, then leaves the freshness summary of every view as
the container's termination message (render/freshness.py parses it; the kubelet keeps 4096 bytes).

    python -c SOURCE [--log-level LEVEL] [--views NAME ...]

One process for both steps: importing Feast is most of a small run's CPU (about 2.5 s of a quiet
core), and a shell calling the CLI and then a summary script paid it twice.

Parallel shares (render/fanout.py): with FEAST_SLICE_COUNT=N > 1 this process materializes only
its share of the views (sorted names, every N-th from its index: JOB_COMPLETION_INDEX of an
Indexed Job, else FEAST_SLICE_INDEX). Feast's file and GCS registries rewrite the whole registry
from the writer's cached copy (no compare-and-swap): a share committing a copy read before another
share's commit erases that share's interval, and the view would be materialized again from its old
start next run. So each commit first refreshes the copy, and the share re-checks its views a few
times while other shares may still commit, re-recording what was lost.

compute.ray.kubeRay (render/rayjob.py, FEAST_RAY_JOBS_URL set): the run is a Ray job on the
store's RayCluster, so the driver is a Ray node (Feast's Ray engine reads with Ray Data, which does
not run through Ray Client). This process submits it to the head's Jobs API (token auth from
RAY_AUTH_TOKEN), ships the Job's feature_store.yaml (the Redis AUTH string expanded as Feast does)
and the online store's CA as the job's working_dir (the Ray pods hold no store config or Secret
between runs, and the secret is not in the job's listed runtime_env), prints the job's logs as they
grow, stops the job when the pod is terminated, and takes the job's result as its own.

The exit code is the materialization's; the summary is written whatever happened.
"""

import argparse
import datetime as dt
import json
import logging
import os
import random
import re
import shlex
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from feast import FeatureStore

SUMMARY_LIMIT = 4000
TERMINATION_LOG = os.environ.get("FEAST_TERMINATION_LOG", "/dev/termination-log")


def summary(store: FeatureStore) -> dict[str, Any]:
    """Each view's materialized-until time, sorted by name, cut before the kubelet's limit."""
    views: dict[str, str] = {}
    size, cut = 40, False
    for fv in sorted(store.list_feature_views(allow_cache=False), key=lambda v: v.name):
        end = fv.most_recent_end_time
        if end is None:
            continue
        item = {fv.name: end.isoformat()}
        size += len(json.dumps(item)) + 1
        if size > SUMMARY_LIMIT:
            cut = True
            break
        views.update(item)
    return {"v": 1, "views": views, "truncated": cut}


def share(store: FeatureStore, asked: list[str] | None, index: int, count: int) -> list[str]:
    """This share's views: every ``count``-th of the sorted names, from ``index``."""
    names = set(asked or [])
    if not names:  # the views `feast materialize-incremental` without --views takes (Feast 0.67)
        names = {fv.name for fv in store._get_feature_views_to_materialize(None)}
    return sorted(names)[index::count]


def refresh_before_commit(store: FeatureStore) -> Any:
    """Make every interval commit start from the registry's newest copy; returns the recorder."""
    record = store.registry.apply_materialization

    def fresh(*args: Any, **kwargs: Any) -> Any:
        store.refresh_registry()
        return record(*args, **kwargs)

    store.registry.apply_materialization = fresh  # type: ignore[method-assign]
    return fresh


def recheck(store: FeatureStore, views: list[str], end: dt.datetime, record: Any, times: int) -> None:
    """Re-record the intervals of ``views`` that a concurrent share's commit erased."""
    for _ in range(times):
        time.sleep(random.uniform(1.0, 3.0))
        store.refresh_registry()
        for name in views:
            fv = store.get_feature_view(name)
            if fv.most_recent_end_time is None or fv.most_recent_end_time < end:
                print(f"re-recording {name} up to {end} (erased by a concurrent share)", flush=True)
                record(fv, store.project, fv.most_recent_end_time or end, end)


def ray_working_dir(config_path: Path) -> Path:
    """A private directory with the job's feature_store.yaml (expanded as Feast loads it) and the
    online store's CA file(s) (public; paths made relative): the job's working_dir."""
    work = Path(tempfile.mkdtemp(prefix="feast-run-"))

    def ship(m: re.Match[str]) -> str:
        name = f"ca-{len(list(work.iterdir()))}.crt"
        shutil.copyfile(m.group(2), work / name)
        return m.group(1) + name

    config = re.sub(r"(ssl_ca_certs=)([^,\s\x22\x27]+)", ship, os.path.expandvars(config_path.read_text()))
    (work / "feature_store.yaml").write_text(config)
    (work / "feature_store.yaml").chmod(0o600)
    return work


def ray_job(views: list[str] | None, end: dt.datetime, log_level: str | None) -> int:
    """Submit the run to the RayCluster's Jobs API, follow it, stop it on SIGTERM; its exit code."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    client = JobSubmissionClient(os.environ["FEAST_RAY_JOBS_URL"])
    argv = ["feast", *(["--log-level", log_level] if log_level else []), "-f", "feature_store.yaml"]
    argv += ["materialize-incremental", end.strftime("%Y-%m-%dT%H:%M:%S")]
    argv += [w for v in views or [] for w in ("--views", v)]
    entrypoint = " ".join(shlex.quote(a) for a in argv)  # Ray runs it with a shell: the views are quoted
    run = f"feast-materialize-{os.environ.get('HOSTNAME', 'pod')}-{int(time.time())}"
    work = ray_working_dir(Path(os.environ["FEAST_FS_YAML_FILE_PATH"]))
    try:
        client.submit_job(
            entrypoint=entrypoint,
            submission_id=run,
            runtime_env={"working_dir": str(work)},
            metadata={"featurestore": os.environ.get("FEAST_STORE_NAME", "")},
        )
    finally:
        shutil.rmtree(work)
    print(f"submitted Ray job {run}: {entrypoint}", flush=True)

    def stop(signum: int, frame: Any) -> None:
        print(f"terminated: stopping Ray job {run}", flush=True)
        client.stop_job(run)
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, stop)  # PID 1 ignores SIGTERM without a handler
    shown = 0
    while True:
        status = client.get_job_status(run)
        logs = client.get_job_logs(run)
        sys.stdout.write(logs[shown:])
        sys.stdout.flush()
        shown = len(logs)
        if status in {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED}:
            break
        time.sleep(2)
    info = client.get_job_info(run)
    print(f"Ray job {run}: {status.value}" + (f" ({info.message})" if info.message else ""), flush=True)
    return 0 if status == JobStatus.SUCCEEDED else 1


def materialize(store: FeatureStore, views: list[str] | None) -> None:
    end = dt.datetime.now(dt.UTC).replace(microsecond=0)
    count = int(os.environ.get("FEAST_SLICE_COUNT") or 1)
    if count <= 1:
        store.materialize_incremental(end_date=end, feature_views=views)
        return
    index = int(os.environ.get("JOB_COMPLETION_INDEX") or os.environ["FEAST_SLICE_INDEX"])
    mine = share(store, views, index, count)
    print(f"share {index} of {count}: {mine or 'no feature view'}", flush=True)
    if not mine:
        return  # feature_views=None would take every view
    record = refresh_before_commit(store)
    store.materialize_incremental(end_date=end, feature_views=mine)
    recheck(store, mine, end, record, int(os.environ.get("FEAST_SLICE_RECHECKS") or 3))


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="materialize")
    ap.add_argument("--log-level")
    ap.add_argument("--views", action="append")
    args = ap.parse_args(argv)
    if args.log_level:
        logging.basicConfig(level=args.log_level.upper())
    store = FeatureStore(fs_yaml_file=Path(os.environ["FEAST_FS_YAML_FILE_PATH"]))
    rc = 0
    try:
        if os.environ.get("FEAST_RAY_JOBS_URL"):
            rc = ray_job(args.views, dt.datetime.now(dt.UTC).replace(microsecond=0), args.log_level)
        else:
            materialize(store, args.views)
    except Exception:
        traceback.print_exc()
        rc = 1
    try:
        with open(TERMINATION_LOG, "w") as out:
            out.write(json.dumps(summary(store), separators=(",", ":")))
    except Exception:
        traceback.print_exc()
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
