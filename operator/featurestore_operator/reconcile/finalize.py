"""Deletion: run each backend's delete per its deletion policy, then drop our finalizer. Owned
objects go by garbage collection (ownerReferences)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ..api import FeatureStore, FeatureStoreStatus, Phase, SpecError
from ..api.resource import FINALIZER
from ..backends.base import BackendContext
from ..backends.recorded import recorded_store
from .core import Deps, parse, write_status
from .events import Event
from .observe import secret_reader
from .outcomes import all_backends, merge_status

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Finalized:
    done: bool
    message: str
    retry_after: float = 10.0


def _parsed(body: dict[str, Any], deps: Deps) -> FeatureStore | None:
    try:
        return parse(body, deps.config)
    except SpecError:
        return None


async def finalize(deps: Deps, body: dict[str, Any]) -> Finalized:
    """Clean up a FeatureStore being deleted; the finalizer is removed once every backend is done."""
    meta = body["metadata"]
    if FINALIZER not in (meta.get("finalizers") or []):
        deps.applier.forget_owner(meta["namespace"], meta["name"])
        return Finalized(True, "no cloud resources to clean up")
    # a spec that became invalid still names what status recorded the operator created
    fs = _parsed(body, deps) or recorded_store(body)
    if fs is None:
        await _drop_finalizer(deps, body)
        return Finalized(True, "spec invalid and nothing recorded in status: nothing to clean up")
    result = await _delete_backends(deps, fs, body)
    if result.done:
        await _drop_finalizer(deps, body)
        deps.applier.forget_owner(fs.metadata.namespace, fs.metadata.name)
    return result


async def _delete_backends(deps: Deps, fs: FeatureStore, body: dict[str, Any]) -> Finalized:
    ctx = BackendContext(config=deps.config, get_secret=secret_reader(deps.kube, deps.cache, fs.metadata.namespace))
    status = FeatureStoreStatus.model_validate(body.get("status") or {}).model_copy(update={"phase": Phase.DELETING})
    pending: list[str] = []
    retry = 60.0
    for _, backend in all_backends(deps.backends, fs):
        if not backend.needs_cleanup(fs):
            continue
        result = await backend.delete(fs.model_copy(update={"status": status}), ctx)
        status = merge_status(status, result.status)
        if result.message:
            deps.emit(Event("Normal" if result.done else "Warning", "Deleting", result.message))
        if not result.done:
            pending.append(result.message or type(backend).__name__)
            retry = min(retry, result.retry_after)
    await write_status(deps, body, status)
    if pending:
        return Finalized(False, "; ".join(pending), retry)
    return Finalized(True, "backends cleaned up")


async def _drop_finalizer(deps: Deps, body: dict[str, Any]) -> None:
    meta = body["metadata"]
    remaining = [f for f in meta.get("finalizers") or [] if f != FINALIZER]
    if await deps.kube.patch_guarded(body, {"metadata": {"finalizers": remaining}}) is None:
        raise Conflict("the FeatureStore changed while its finalizer was being removed; retrying")
    log.info("%s/%s: cloud resources cleaned up, finalizer removed", meta["namespace"], meta["name"])


class Conflict(Exception):
    """The object changed under us: read it again and retry."""
