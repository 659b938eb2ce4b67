"""Parallel materialization: N pods (or containers) of one run, each with a disjoint share of the
feature views.

The operator never imports Feast and does not know the feature views (they live in the registry).
So each share is chosen inside the run, by ``SHARE_PROGRAM``: the names of the views a plain
``feast materialize-incremental`` would materialize (or the ``--views`` the spec lists), sorted,
and every N-th one from the share's index. Every share computes the same sorted list from the
same registry, so the shares are disjoint and together cover every view once.

Where the index comes from:

* Kubernetes >= 1.25 (``ApiVersions.indexed_jobs``): the CronJob's Job is an Indexed Job of N
  completions run N at a time; the Job controller sets ``JOB_COMPLETION_INDEX`` in every pod.
* older servers have no Indexed Jobs (1.20, the node in CI, silently drops ``completionMode``):
  the run's one pod holds N containers ``materialize-0`` .. ``materialize-<N-1>``, each with a
  fixed ``FEAST_SLICE_INDEX``. They share the pod's node, so they scale to its cores only.

Each share reports the freshness of every view after its own run (``freshness.SUMMARY_SCRIPT``);
the operator merges the reports of the run, keeping each view's newest time
(``reconcile.freshness``).
"""

from __future__ import annotations

from typing import Any

#: Container name of the only share, and the prefix of the shares' container names.
CONTAINER = "materialize"
#: Env of every share: how many shares the run has (absent or 1: no fan-out).
COUNT_ENV = "FEAST_SLICE_COUNT"
#: Env of a share without an Indexed Job: its index (the Job controller's JOB_COMPLETION_INDEX wins).
INDEX_ENV = "FEAST_SLICE_INDEX"

#: Materializes this share's views (incrementally, up to now) and makes the registry keep their
#: intervals. argv: the spec's ``--views`` list (after the shell script's ``--``); none: every view a
#: plain ``feast materialize-incremental`` would take. Feast's file and GCS registries rewrite the
#: whole registry from the writer's cached copy (no compare-and-swap), so a share committing with
#: a copy read before another share's commit erases that share's interval, and the view would be
#: materialized again from its old start next run. Hence: refresh the copy right before each
#: commit, then re-check a few times while the other shares may still commit, re-recording what
#: was lost.
SHARE_PROGRAM = """import datetime as dt, os, random, sys, time
from pathlib import Path
from feast import FeatureStore
count = int(os.environ["FEAST_SLICE_COUNT"])
index = int(os.environ.get("JOB_COMPLETION_INDEX") or os.environ["FEAST_SLICE_INDEX"])
args = sys.argv[1:]
store = FeatureStore(fs_yaml_file=Path(os.environ["FEAST_FS_YAML_FILE_PATH"]))
names = {args[i + 1] for i in range(len(args) - 1) if args[i] == "--views"}
if not names:  # the views `feast materialize-incremental` without --views takes (Feast 0.67)
    names = {fv.name for fv in store._get_feature_views_to_materialize(None)}
mine = sorted(names)[index::count]
print(f"share {index} of {count}: {mine or 'no feature view'}", flush=True)
if not mine:
    sys.exit(0)
end = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
record = store.registry.apply_materialization
def fresh_record(*a, **kw):
    store.refresh_registry()
    return record(*a, **kw)
store.registry.apply_materialization = fresh_record
store.materialize_incremental(end_date=end, feature_views=mine)
for _ in range(int(os.environ.get("FEAST_SLICE_RECHECKS", "4"))):
    time.sleep(random.uniform(1.0, 4.0))
    store.refresh_registry()
    for name in mine:
        fv = store.get_feature_view(name)
        if fv.most_recent_end_time is None or fv.most_recent_end_time < end:
            print(f"share {index}: re-recording {name} up to {end} (overwritten by a concurrent share)", flush=True)
            fresh_record(fv, store.project, fv.most_recent_end_time or end, end)
"""


def share_containers(container: dict[str, Any], count: int, indexed: bool) -> list[dict[str, Any]]:
    """The materialization container(s) of one run pod for ``count`` shares."""
    if count <= 1:
        return [container]
    env = [*container.get("env", []), {"name": COUNT_ENV, "value": str(count)}]
    if indexed:
        return [{**container, "env": env}]
    return [
        {**container, "name": f"{CONTAINER}-{i}", "env": [*env, {"name": INDEX_ENV, "value": str(i)}]}
        for i in range(count)
    ]


def indexed_job(count: int) -> dict[str, Any]:
    """Job spec fields of a run of ``count`` pods, one per share (``{}``: one pod)."""
    if count <= 1:
        return {}
    return {"completionMode": "Indexed", "completions": count, "parallelism": count}


def is_share(container_name: str) -> bool:
    """Whether a container of a run pod is a materialization share (its message is a summary)."""
    head, _, index = container_name.partition("-")
    return head == CONTAINER and (not index or index.isdigit())
