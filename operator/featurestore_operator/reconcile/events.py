"""Events: which condition transitions a user should see in `kubectl describe`. Pure."""

from __future__ import annotations

from ..api import ConditionType as T
from ..api import FeatureStoreStatus
from ..runtime.events import Event
from . import conditions as cond


def transitions(before: FeatureStoreStatus, after: FeatureStoreStatus, parts: list[cond.Part]) -> list[Event]:
    """Events for what a user should see, not for every step of a creation:

    - a part entering a state that carries an Event (``Part.event``: a problem, or an action such
      as a Memorystore operation), as ``<Condition><Reason>``; a Warning again when its message
      changes (another failure), never again for the same one;
    - a part outside the Ready set (Kubeflow, WorkloadIdentity, Synced) coming back to True;
    - the store becoming Ready (Normal ``Ready``) and a Ready store leaving it (``NotReady``,
      Warning when a part has a problem).

    A creation that goes well posts one Event (Ready); each Event is a write to the API server."""
    out: list[Event] = []
    old = {c.type: c for c in before.conditions}
    for p in parts:
        prev = old.get(p.type.value)
        entered = prev is None or prev.status != p.status or prev.reason != p.reason
        changed = p.event == "Warning" and prev is not None and prev.message != p.message[:32768]
        reason = f"{p.type.value}{p.reason}" if p.type.value != p.reason else p.reason
        if (entered or changed) and p.event:
            out.append(Event(p.event, reason, p.message))
        elif p.status == "True" and prev is not None and prev.status != "True" and p.type not in cond.READY_PARTS:
            out.append(Event("Normal", reason, p.message))
    was, now = before.condition(T.READY.value), after.condition(T.READY.value)
    if now is None:
        return out
    if now.status == "True" and (was is None or was.status != "True"):
        out.append(Event("Normal", "Ready", now.message))
    elif now.status != "True" and was is not None and was.status == "True":
        problem = any(p.event == "Warning" or p.failed for p in parts)
        out.append(Event("Warning" if problem else "Normal", "NotReady", now.message))
    return out
