"""Handlers of FeatureStore objects: a per-object worker (kopf daemon) that runs the level-triggered
reconcile whenever something changed or a backend asked to be looked at again, plus deletion."""

from __future__ import annotations

import asyncio
import copy
import time
from typing import Any

import kopf

from ..api import GROUP, PLURAL, VERSION
from ..reconcile.core import Deps, reconcile
from ..reconcile.finalize import finalize, needs_cleanup
from .metrics import RECONCILE_SECONDS, RECONCILES, STORES
from .runtime import Runtime

MAX_BACKOFF = 60.0


def _deps(memo: Runtime, body: Any) -> Deps:
    assert memo.deps is not None, "startup did not run"

    def emit(type_: str, reason: str, message: str) -> None:
        kopf.event(body, type=type_, reason=reason, message=message[:1024])

    return Deps(kube=memo.deps.kube, cache=memo.cache, discovery=memo.deps.discovery, config=memo.config,
                backends=memo.deps.backends, emit=emit)


def _set_phase(memo: Runtime, key: tuple[str, str], phase: str | None) -> None:
    old = memo.phases.pop(key, None)
    if old:
        STORES.labels(old).dec()
    if phase:
        memo.phases[key] = phase
        STORES.labels(phase).inc()


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=10.0)
async def featurestore_worker(body: kopf.Body, meta: kopf.Meta, memo: Runtime, stopped: kopf.DaemonStopped,
                              logger: Any, **_: Any) -> None:
    """Reconciles one FeatureStore until it is deleted (or this operator loses leadership)."""
    key = (meta["namespace"], meta["name"])
    wake = memo.wakeup(*key)
    backoff = 1.0
    deps = _deps(memo, body)
    try:
        while not stopped:
            wake.clear()
            started = time.perf_counter()
            snapshot = copy.deepcopy(dict(body))
            if snapshot.get("metadata", {}).get("deletionTimestamp"):
                return
            try:
                result = await reconcile(deps, snapshot)
                delay = result.requeue_after if result.requeue_after is not None else memo.config.resync_seconds
                RECONCILES.labels(result.phase or "unknown").inc()
                _set_phase(memo, key, result.phase)
                backoff = 1.0
            except Exception as err:  # never let one store's error kill its worker
                logger.exception(f"reconcile failed: {type(err).__name__}: {err}")
                RECONCILES.labels("error").inc()
                delay, backoff = backoff, min(backoff * 2, MAX_BACKOFF)
            finally:
                RECONCILE_SECONDS.observe(time.perf_counter() - started)
            try:
                await asyncio.wait_for(wake.wait(), timeout=min(delay, memo.config.resync_seconds))
            except asyncio.TimeoutError:
                pass
    finally:
        memo.wakeups.pop(key, None)


@kopf.on.event(GROUP, VERSION, PLURAL)
async def featurestore_changed(event: dict[str, Any], meta: kopf.Meta, memo: Runtime, **_: Any) -> None:
    """Spec changes (new generation) and deletion wake the worker at once."""
    key = (meta["namespace"], meta["name"])
    if event["type"] == "DELETED":
        memo.generations.pop(key, None)
        _set_phase(memo, key, None)
        memo.cache.drop_owner(*key)
        return
    generation = meta.get("generation")
    if memo.generations.get(key) != generation:
        memo.generations[key] = generation
        memo.poke(*key)


def _needs_cleanup(body: kopf.Body, memo: Runtime, **_: Any) -> bool:
    return memo.deps is not None and needs_cleanup(_deps(memo, body), copy.deepcopy(dict(body)))


@kopf.on.delete(GROUP, VERSION, PLURAL, when=_needs_cleanup)
async def featurestore_deleted(body: kopf.Body, memo: Runtime, **_: Any) -> None:
    """Runs only for stores with cloud resources to clean up (only they carry the finalizer)."""
    result = await finalize(_deps(memo, body), copy.deepcopy(dict(body)))
    if not result.done:
        raise kopf.TemporaryError(result.message, delay=result.retry_after)
