"""Deletion: run each backend's delete per its deletion policy; owned objects go by garbage collection."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ..api import FeatureStore, FeatureStoreStatus, Phase, SpecError, parse_featurestore, resolve
from .core import Deps, _merge_status, _secret_reader, _write_status
from ..backends.base import BackendContext

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Finalized:
    done: bool
    message: str
    retry_after: float = 10.0


def resolved(body: dict[str, Any], deps_config: Any) -> FeatureStore | None:
    try:
        fs = parse_featurestore(body)
        return fs.model_copy(update={"spec": resolve(fs.spec, deps_config)})
    except SpecError:
        return None


def needs_cleanup(deps: Deps, body: dict[str, Any]) -> bool:
    fs = resolved(body, deps.config)
    if fs is None:
        return False
    backends = [deps.backends.online(fs), deps.backends.offline(fs), *[b for _, b in deps.backends.extra(fs)]]
    return any(b.needs_cleanup(fs) for b in backends)


async def finalize(deps: Deps, body: dict[str, Any]) -> Finalized:
    fs = resolved(body, deps.config)
    if fs is None:
        return Finalized(True, "spec invalid: nothing the operator created can be identified")
    ns, name = fs.metadata.namespace, fs.metadata.name
    ctx = BackendContext(config=deps.config, get_secret=_secret_reader(deps, ns))
    status = FeatureStoreStatus.model_validate(body.get("status") or {}).model_copy(update={"phase": Phase.DELETING})
    pending: list[str] = []
    retry = 60.0
    for backend in [deps.backends.online(fs), deps.backends.offline(fs), *[b for _, b in deps.backends.extra(fs)]]:
        if not backend.needs_cleanup(fs):
            continue
        result = await backend.delete(fs.model_copy(update={"status": status}), ctx)
        status = _merge_status(status, result.status)
        if result.message:
            deps.emit("Normal" if result.done else "Warning", "Deleting", result.message)
        if not result.done:
            pending.append(result.message or type(backend).__name__)
            retry = min(retry, result.retry_after)
    await _write_status(deps, body, status)
    if pending:
        return Finalized(False, "; ".join(pending), retry)
    deps.cache.drop_owner(ns, name)
    return Finalized(True, "backends cleaned up")
