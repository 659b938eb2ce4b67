"""Materialization state per feature view: how fresh each feature view's online values are.

The operator never imports Feast. The materialization Job, which runs Feast anyway, reads the
registry after each run and writes a small JSON summary as its container's termination message
(render/programs/materialize.py, ``jobs.MATERIALIZE_PROGRAM``; the kubelet keeps up to 4096 bytes
in the pod's status). The operator reads that message from the finished pod and parses it here:

    {"v": 1, "views": {"driver_hourly_stats": "2026-11-29T22:00:00+00:00", ...}, "truncated": false}

The pod runs in the user's namespace, so the message is untrusted input: bounded, strictly
parsed, and anything unexpected is dropped rather than shown.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass

from .fanout import is_share

MAX_MESSAGE = 4096
MAX_VIEWS = 200
_VIEW_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class FeatureViewFreshness:
    name: str
    #: End of the last successful materialization interval (online values are current up to it).
    materialized_until: dt.datetime

    def lag_seconds(self, now: dt.datetime) -> float:
        return max(0.0, (now - self.materialized_until).total_seconds())


@dataclass(frozen=True)
class Summary:
    views: tuple[FeatureViewFreshness, ...]
    truncated: bool = False


def _timestamp(value: object) -> dt.datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        t = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


def parse_summary(message: str | None) -> Summary | None:
    """The summary in a materialization pod's termination message; None when there is none or it
    is not one (a crashed run, an old image, a message written by something else)."""
    if not message or len(message) > MAX_MESSAGE:
        return None
    try:
        doc = json.loads(message.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None
    if not isinstance(doc, dict) or doc.get("v") != 1 or not isinstance(doc.get("views"), dict):
        return None
    views = []
    for name, value in sorted(doc["views"].items())[:MAX_VIEWS]:
        t = _timestamp(value)
        if isinstance(name, str) and _VIEW_NAME.fullmatch(name) and t is not None:
            views.append(FeatureViewFreshness(name, t))
    return Summary(tuple(views), truncated=doc.get("truncated") is True)


def merge(summaries: list[Summary | None]) -> Summary | None:
    """One summary of a run's shares (``render.fanout``): each view's newest time; None: none."""
    found = [s for s in summaries if s is not None]
    if not found:
        return None
    newest: dict[str, dt.datetime] = {}
    for view in (v for s in found for v in s.views):
        newest[view.name] = max(newest.get(view.name, view.materialized_until), view.materialized_until)
    views = tuple(FeatureViewFreshness(n, t) for n, t in sorted(newest.items())[:MAX_VIEWS])
    return Summary(views, truncated=any(s.truncated for s in found))


def share_messages(pod: dict) -> list[str]:
    """The termination messages of a run pod's materialization containers (one per share)."""
    out = []
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if isinstance(status.get("name"), str) and is_share(status["name"]):
            message = termination_message(pod, status["name"])
            if message is not None:
                out.append(message)
    return out


def termination_message(pod: dict, container: str = "materialize") -> str | None:
    """The termination message of ``container`` in a pod as read from the API (a dict)."""
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == container:
            terminated = (status.get("state") or {}).get("terminated") or {}
            message = terminated.get("message")
            return message if isinstance(message, str) else None
    return None
