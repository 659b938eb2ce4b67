"""Deletion: run each backend's delete per its deletion policy, then drop our finalizer. Owned
objects go by garbage collection (ownerReferences).

A store can also vanish without our finalizer ever being honoured: kube-apiserver's DELETE decides
"no finalizers: delete at once" on the object it read and its storage delete does not check again
(k8s.io/apiserver ``Store.Delete`` -> etcd3 ``conditionalDelete``), so a finalizer patched in
between is answered 200 and deleted with the object; or someone removed the finalizer by hand.
:func:`clean_up_vanished` then deletes the cloud resources from the last body the operator saw:
by their deterministic names, each backend checking the owner labels (this uid only) and the
deletion policy as in a normal deletion."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..api import FeatureStore, FeatureStoreStatus, Phase, SpecError, names
from ..api.resource import FINALIZER
from ..backends.base import BackendContext
from ..backends.recorded import recorded_store
from ..runtime.events import Event
from . import records
from .core import Deps, parse, write_status
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
    result = await _delete_backends(deps, fs, body, lambda status: write_status(deps, body, status))
    if result.done:
        await _drop_finalizer(deps, body)
        await _drop_record(deps, body)
        deps.applier.forget_owner(fs.metadata.namespace, fs.metadata.name)
    return result


async def clean_up_vanished(deps: Deps, body: dict[str, Any]) -> Finalized:
    """Clean up after a FeatureStore that is gone although it was not finalized; ``body`` is the last
    one seen, its status kept up to date here (operation names) for the next attempt."""
    fs = _parsed(body, deps) or recorded_store(body)
    if fs is None or not any(b.needs_cleanup(fs) for _, b in all_backends(deps.backends, fs)):
        await _drop_record(deps, body)
        return Finalized(True, "no cloud resources to clean up")
    meta = body["metadata"]
    if fs.status.phase is not Phase.DELETING:  # first attempt (later ones carry the phase set below)
        log.warning(
            "%s/%s (uid %s) is gone and its clean-up did not run (deleted past or before its finalizer); "
            "cleaning up from its last known spec",
            meta["namespace"],
            meta["name"],
            meta.get("uid"),
        )

    async def keep(status: FeatureStoreStatus) -> None:
        body["status"] = status.model_dump(mode="json", by_alias=True)

    result = await _delete_backends(deps, fs, body, keep)
    if result.done:
        await _drop_record(deps, body)
        log.info("%s/%s: cloud resources of the deleted store cleaned up", meta["namespace"], meta["name"])
    return result


async def _delete_backends(
    deps: Deps, fs: FeatureStore, body: dict[str, Any], save: Callable[[FeatureStoreStatus], Awaitable[None]]
) -> Finalized:
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
    await save(status)
    if pending:
        return Finalized(False, "; ".join(pending), retry)
    return Finalized(True, "backends cleaned up")


async def _drop_record(deps: Deps, body: dict[str, Any]) -> None:
    """Delete the store's clean-up record (in the operator's namespace, by the name derived from the
    store's validated namespace, name and uid; never a name read from a record)."""
    meta = body["metadata"]
    try:
        name = records.record_name(meta.get("namespace"), meta.get("name"), meta.get("uid"))
    except names.UnsafeName as err:
        log.warning("not deleting a clean-up record: %s", err)
        return
    await deps.kube.delete("ConfigMap", "v1", deps.config.records_namespace, name)


async def _drop_finalizer(deps: Deps, body: dict[str, Any]) -> None:
    meta = body["metadata"]
    remaining = [f for f in meta.get("finalizers") or [] if f != FINALIZER]
    if await deps.kube.patch_guarded(body, {"metadata": {"finalizers": remaining}}) is None:
        raise Conflict("the FeatureStore changed while its finalizer was being removed; retrying")
    log.info("%s/%s: cloud resources cleaned up, finalizer removed", meta["namespace"], meta["name"])


class Conflict(Exception):
    """The object changed under us: read it again and retry."""
