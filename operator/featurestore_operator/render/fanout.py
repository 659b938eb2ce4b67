"""Parallel materialization: N pods (or containers) of one run, each with a disjoint share of the
run's (feature view, time window) units.

The operator never imports Feast and does not know the feature views (they live in the registry).
So each share is chosen inside the run, by the materialization program (programs/materialize.py):
the views a plain ``feast materialize-incremental`` would materialize (or the ``--views`` the spec
lists), sorted, each view's interval since its last recorded end cut into N time windows, and every
N-th unit from the share's index (window i of every view for share i). Every share computes the same
plan from the same registry, so the shares are disjoint and together cover every view's interval
once.

Where the index comes from:

* Kubernetes >= 1.25 (``ApiVersions.indexed_jobs``): the CronJob's Job is an Indexed Job of N
  completions run N at a time; the Job controller sets ``JOB_COMPLETION_INDEX`` in every pod.
* older servers have no Indexed Jobs (1.20, the node in CI, silently drops ``completionMode``):
  the run's one pod holds N containers ``materialize-0`` .. ``materialize-<N-1>``, each with a
  fixed ``FEAST_SLICE_INDEX``. They share the pod's node, so they scale to its cores only.

Each share reports the freshness of every view after its own run (its termination message): the
end of the view's contiguous recorded intervals, so a view with a failed window is not fresh past
it. The operator merges the reports of the run, keeping each view's newest time
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
