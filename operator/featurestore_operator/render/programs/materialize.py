"""The materialization container's program (runs in the Feast image, one process): materializes
the run's feature views incrementally up to now, then leaves the freshness summary of every view as
the container's termination message (render/freshness.py parses it; the kubelet keeps 4096 bytes).

    python -c SOURCE [--log-level LEVEL] [--views NAME ...]

One process for both steps: importing Feast is most of a small run's CPU (about 2.5 s of a quiet
core), and a shell calling the CLI and then a summary script paid it twice.

Work units (render/fanout.py): every run is planned as (view, time window) units. A view's interval
[start, end) starts at its *frontier*, the end of the first contiguous run of its recorded
materialization intervals (not Feast's newest interval end: a window that failed or whose record was
lost leaves a gap, and the next run starts there again), and is cut into W windows. With
FEAST_SLICE_COUNT=N > 1 this process materializes every N-th unit from its index
(JOB_COMPLETION_INDEX of an Indexed Job, else FEAST_SLICE_INDEX); W = N (FEAST_SLICE_WINDOWS
overrides it), so share i takes window i of every view: a view's rows split evenly over the shares
when they arrive evenly in time, where whole views would split as unevenly as the views' sizes
(bench/compute.py: 2 views of 4 and 1 features over 2 shares, 1.51x one pod by view, 1.62x by
window); a window re-reads its view's source, about 1 % of a pod's CPU. The shares' run end is now
floored to FEAST_SLICE_ALIGN seconds (default 60), so shares started a few seconds apart cut the
same windows; if they still disagree, a gap only delays its rows to the next run (the frontier stops
before it) and an overlap rewrites the same rows (Feast's Redis store keeps each entity's newest
event).

Feast's file registry rewrites the whole registry from the writer's cached copy (no
compare-and-swap), on every interval and on every view state change (materialize() sets a view
MATERIALIZING first): a share committing a copy read before another share's commit erases that
share's interval. So every commit takes an exclusive lock (flock on ``<registry>.lock``), reads
the stored registry, adds the intervals only it has to the copy, and writes, all under the lock.
A gs:// registry has no such lock here (the read-merge-write leaves a window of one commit): there
the share also re-checks its windows a few times, re-recording what was lost.

The summary reports each view's frontier, so a view is fresh to the run's end only once every
window of it is recorded; the operator keeps each view's newest report across shares, and the
frontier only grows, so the newest report is the last share's, which saw every commit.

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
import contextlib
import datetime as dt
import fcntl
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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from feast import FeatureStore

SUMMARY_LIMIT = 4000
TERMINATION_LOG = os.environ.get("FEAST_TERMINATION_LOG", "/dev/termination-log")


def frontier(view: Any) -> dt.datetime | None:
    """The view's frontier (None: never materialized)."""
    if not hasattr(view, "materialization_intervals"):
        return view.most_recent_end_time  # an on-demand view: Feast's own record
    return frontier_of(view.materialization_intervals)


def frontier_of(spans: list[tuple[dt.datetime, dt.datetime]]) -> dt.datetime | None:
    """The end of the first contiguous run of intervals (None: none)."""
    spans = sorted(spans)
    if not spans:
        return None
    end = spans[0][1]
    for start, stop in spans[1:]:
        if start > end:
            break
        end = max(end, stop)
    return end


def summary(store: FeatureStore) -> dict[str, Any]:
    """Each view's frontier, sorted by name, cut before the kubelet's limit."""
    views: dict[str, str] = {}
    size, cut = 40, False
    for fv in sorted(store.list_feature_views(allow_cache=False), key=lambda v: v.name):
        end = frontier(fv)
        if end is None:
            continue
        item = {fv.name: end.isoformat()}
        size += len(json.dumps(item)) + 1
        if size > SUMMARY_LIMIT:
            cut = True
            break
        views.update(item)
    return {"v": 1, "views": views, "truncated": cut}


@dataclass(frozen=True)
class Unit:
    view: str
    #: the window [start, end); None: an on-demand view, materialized whole by Feast
    start: dt.datetime | None
    end: dt.datetime
    label: str
    #: a never-materialized view's start: recorded as an empty interval before any window, so a
    #: later window recorded first is not taken for the view's frontier (its rows start here)
    origin: dt.datetime | None = None


def windows(start: dt.datetime, end: dt.datetime, count: int) -> list[tuple[dt.datetime, dt.datetime]]:
    """[start, end) cut into ``count`` windows of whole seconds (fewer if shorter)."""
    span = int((end - start).total_seconds())
    cuts = [start + dt.timedelta(seconds=span * k // count) for k in range(count)] + [end]
    return [(a, b) for a, b in zip(cuts, cuts[1:], strict=False) if a < b]


def default_start(fv: Any, end: dt.datetime) -> dt.datetime:
    """A never-materialized view's start: its ttl before ``end`` (Feast's materialize-incremental,
    from the run's end so every share computes the same)."""
    if fv.ttl is None:
        raise ValueError(f"No start time found for feature view {fv.name}: set a ttl or materialize it once")
    return end - (fv.ttl if fv.ttl.total_seconds() > 0 else dt.timedelta(weeks=52))


def run_start(fv: Any, end: dt.datetime, per_view: int) -> dt.datetime:
    """Where this run's interval of the view starts, the same for a share that plans after other
    shares of the run committed windows: the start S whose own windows, set aside, leave the
    registry's frontier at S (the view's frontier before the run)."""
    spans = [(utc(a), utc(b)) for a, b in fv.materialization_intervals]
    base = None if spans else default_start(fv, end)
    # S is the frontier (no window of the run recorded before it) or the start of a window of this
    # run, among the newest intervals (Feast appends them); the list grows every run: only its tail
    tail = {t for span in spans[-2 * (per_view + 2) :] for t in span}
    for s in sorted(tail | {x for x in (base, frontier_of(spans)) if x is not None}):
        mine = set(windows(s, end, per_view))
        if (frontier_of([x for x in spans if x not in mine]) or base) == s:
            return s
    return frontier_of(spans) or default_start(fv, end)


def utc(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def plan(store: FeatureStore, asked: list[str] | None, end: dt.datetime, count: int) -> list[Unit]:
    """Every unit of the run, in the same order for every share: views by name, windows in time."""
    fvs = sorted(store._get_feature_views_to_materialize(asked or None), key=lambda v: v.name)
    per_view = int(os.environ.get("FEAST_SLICE_WINDOWS") or count)
    units: list[Unit] = []
    for fv in fvs:
        if not hasattr(fv, "materialization_intervals"):
            units.append(Unit(fv.name, None, end, fv.name))
            continue
        start = run_start(fv, end, per_view)
        origin = None if fv.materialization_intervals else start
        cut = windows(start, end, per_view)
        for k, (a, b) in enumerate(cut):
            label = fv.name if per_view == 1 else f"{fv.name}@{k + 1}/{per_view}"
            units.append(Unit(fv.name, a, b, label, origin))
    return units


def run_end(count: int) -> dt.datetime:
    """The run's end: now, floored to FEAST_SLICE_ALIGN seconds when shares must agree on it."""
    now = int(time.time())
    align = int(os.environ.get("FEAST_SLICE_ALIGN") or 60) if count > 1 else 1
    return dt.datetime.fromtimestamp(now - now % max(align, 1), dt.UTC)


def local_registry(store: FeatureStore) -> str | None:
    """The path of a file registry on a (shared) file system; None: another kind."""
    registry = store.config.registry
    path = str(registry.path)
    if getattr(registry, "registry_type", "file") != "file" or ("://" in path and not path.startswith("file://")):
        return None
    return path.removeprefix("file://")


@contextlib.contextmanager
def registry_lock(store: FeatureStore) -> Iterator[None]:
    """Exclusive across the run's shares while a commit reads and rewrites a file registry."""
    path = local_registry(store)
    if path is None:
        yield
        return
    with open(path + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def merge_intervals(cached: Any, fresh: Any) -> None:
    """Add to the registry copy about to be written the intervals only the stored one has."""
    stored = {(v.spec.project, v.spec.name): v.meta.materialization_intervals for v in fresh.feature_views}
    for view in cached.feature_views:
        mine = view.meta.materialization_intervals
        have = {i.SerializeToString() for i in mine}
        for interval in stored.get((view.spec.project, view.spec.name), []):
            if interval.SerializeToString() not in have:
                mine.add().CopyFrom(interval)


def guard_commits(store: FeatureStore) -> Any:
    """Make every registry commit (an interval, a view's state) keep what other shares recorded:
    under the registry lock, read the stored registry, merge its intervals into the copy, write.
    Returns the interval recorder."""
    registry: Any = store.registry
    if not hasattr(registry, "_registry_store"):  # a registry server or SQL registry commits per change
        return registry.apply_materialization
    write = registry.commit

    def commit() -> Any:
        with registry_lock(store):
            merge_intervals(registry.cached_registry_proto, registry._registry_store.get_registry_proto())
            return write()

    registry.commit = commit
    return registry.apply_materialization


def recheck(store: FeatureStore, units: list[Unit], record: Any, times: int) -> None:
    """Re-record the windows of ``units`` that a concurrent share's commit erased (gs:// only)."""
    if local_registry(store) is not None:
        return  # the lock serializes the commits
    for _ in range(times):
        time.sleep(random.uniform(1.0, 3.0))
        store.refresh_registry()
        for u in units:
            fv = store.get_feature_view(u.view)
            if u.start is not None and (u.start, u.end) not in set(fv.materialization_intervals):
                print(f"re-recording {u.label} (erased by a concurrent share)", flush=True)
                record(fv, store.project, u.start, u.end)


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
    count = int(os.environ.get("FEAST_SLICE_COUNT") or 1)
    index = int(os.environ.get("JOB_COMPLETION_INDEX") or os.environ.get("FEAST_SLICE_INDEX") or 0)
    units = plan(store, views, run_end(count), count)[index::count]
    print(f"share {index} of {count}: {[u.label for u in units] or 'no feature view'}", flush=True)
    record = guard_commits(store)
    for view, origin in sorted({(u.view, u.origin) for u in units if u.origin}):
        record(store.get_feature_view(view), store.project, origin, origin)
    for u in units:
        if u.start is None:
            store.materialize_incremental(end_date=u.end, feature_views=[u.view])
        else:
            store.materialize(u.start, u.end, feature_views=[u.view])
    recheck(store, units, record, int(os.environ.get("FEAST_SLICE_RECHECKS") or 3) if count > 1 else 0)


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
