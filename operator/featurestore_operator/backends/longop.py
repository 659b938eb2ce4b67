"""Long-running cloud operations as a user sees them: how long one has run and how long such an
operation usually takes, in a condition message that changes at most once a minute; and how long
each took, as a Prometheus histogram.

The start time is recorded in status beside the operation's name (``status.operations``), so the
elapsed time survives an operator restart; the message rounds it down to whole minutes, so a
pass that polls every few seconds rewrites nothing until the minute turns.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ..metrics import CLOUD_OPERATION_SECONDS


@dataclass(frozen=True)
class Typical:
    """The usual duration of one kind of operation, in minutes (from the provider's docs and
    experience: Memorystore creation takes 5-10 min)."""

    low: int
    high: int

    def text(self) -> str:
        return f"usually {self.low}\u2013{self.high} min"


#: Typical durations by (service, verb). Unknown pairs show no typical duration.
TYPICAL: dict[tuple[str, str], Typical] = {
    ("memorystore", "create"): Typical(5, 10),
    ("memorystore", "update"): Typical(1, 10),
    ("memorystore", "delete"): Typical(2, 5),
}

#: The progress word of each verb.
_ING = {"create": "creating", "update": "updating", "delete": "deleting"}


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def timestamp(at: dt.datetime) -> str:
    """RFC 3339, seconds precision, UTC (how Kubernetes writes times)."""
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def elapsed_text(started: dt.datetime | None, at: dt.datetime) -> str:
    """Whole minutes since ``started``: "<1m", "3m", "1h05m"; "" when unknown."""
    if started is None:
        return ""
    minutes = max(0, int((at - started).total_seconds() // 60))
    if minutes == 0:
        return "<1m elapsed"
    if minutes < 60:
        return f"{minutes}m elapsed"
    return f"{minutes // 60}h{minutes % 60:02d}m elapsed"


def progress(service: str, verb: str, started: dt.datetime | None, at: dt.datetime) -> str:
    """E.g. "creating, 3m elapsed, usually 5–10 min". Only changes when the minute does."""
    parts = [_ING.get(verb, verb or "in progress")]
    if elapsed := elapsed_text(started, at):
        parts.append(elapsed)
    if typical := TYPICAL.get((service, verb)):
        parts.append(typical.text())
    return ", ".join(parts)


def record_duration(service: str, verb: str, result: str, started: dt.datetime | None, at: dt.datetime) -> None:
    """Observe one finished operation (``result``: done | failed) in the histogram."""
    if started is not None:
        CLOUD_OPERATION_SECONDS.labels(service, verb or "unknown", result).observe(
            max(0.0, (at - started).total_seconds())
        )
