"""Observe materialization state per feature view: after each successful run, read the summary its
pod left as the ``materialize`` container's termination message (``render.freshness``) once, and
turn it into ``status.materialization.featureViews``.

Trust: the message comes from a pod in the store's own namespace, so it is never trusted beyond
that namespace. Only pods listed in the store's namespace, labelled with the run's Job name AND
controlled by that Job (ownerReference uid of the Job the store's CronJob started) with exit code 0
count; the message is parsed strictly (bounded, typed); metric labels come from the store, never
from the message. A namespace editor can forge their own stores' freshness this way (they can also
write the registry the summary is read from: the data is theirs), never another namespace's.

The operator reads pods only when the chart granted it (``compute.enabled`` ->
``FSO_COMPUTE_ENABLED``: ``list`` on pods, the one read that needs).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from ..api import FeatureStore
from ..api.status import FeatureViewFreshness, MaterializationStatus
from ..render.freshness import Summary, merge, parse_summary, share_messages
from ..runtime.kube import ApiError, Kube
from .conditions import job_state

log = logging.getLogger(__name__)


def _time(value: object) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _rfc3339(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def newest_success(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    done = [j for j in runs if job_state(j) == "Succeeded"]
    return max(done, key=lambda j: (j["metadata"].get("creationTimestamp") or "", j["metadata"]["name"]), default=None)


def report_of(pods: list[dict[str, Any]], job_uid: str) -> Summary | None:
    """The merged summaries of the Job's successful pods, one per share (``render.fanout``): an
    Indexed Job has a pod per share, an older cluster's run pod a container per share. Pods the Job
    does not control, failed attempts and messages that are no summary are ignored."""
    summaries = []
    for pod in pods:
        owners = pod["metadata"].get("ownerReferences") or []
        if not any(o.get("uid") == job_uid and o.get("controller") for o in owners):
            continue
        if (pod.get("status") or {}).get("phase") == "Succeeded":
            summaries += [parse_summary(m) for m in share_messages(pod)]
    return merge(summaries)


def views_status(summary: Summary | None, run_end: dt.datetime) -> list[FeatureViewFreshness] | None:
    if summary is None:
        return None
    return [
        FeatureViewFreshness(
            name=v.name, last_end=_rfc3339(v.materialized_until), lag_seconds=int(v.lag_seconds(run_end))
        )
        for v in summary.views
    ]


async def observe_freshness(
    kube: Kube, fs: FeatureStore, runs: list[dict[str, Any]], previous: MaterializationStatus
) -> dict[str, Any]:
    """``status.materialization`` fields from the newest successful run not read yet ({}: keep)."""
    last = newest_success(runs)
    if last is None or last["metadata"]["name"] == previous.feature_views_job:
        return {}
    name = last["metadata"]["name"]
    try:
        pods = await kube.list("Pod", "v1", fs.metadata.namespace, {"job-name": name})
    except ApiError as err:
        log.warning(
            "%s/%s: cannot read the pods of Job %s for freshness: %s",
            fs.metadata.namespace,
            fs.metadata.name,
            name,
            err,
        )
        return {}
    run_end = _time((last.get("status") or {}).get("completionTime")) or dt.datetime.now(dt.UTC)
    views = views_status(report_of(pods, last["metadata"].get("uid", "")), run_end)
    if views is None:  # no report (pod gone, old image): keep the views last known
        return {"feature_views_job": name}
    return {"feature_views_job": name, "feature_views": views}
