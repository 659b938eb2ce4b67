"""Handlers of FeatureStore objects: a per-object worker (kopf daemon) that runs the level-triggered
reconcile whenever something changed or a backend asked to be looked at again, plus deletion."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import time
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from ..api import GROUP, PLURAL, VERSION
from ..reconcile.core import Deps, reconcile
from ..reconcile.finalize import finalize, needs_cleanup
from ..metrics import RECONCILE_SECONDS, RECONCILES, STORES
from .runtime import Runtime

MAX_BACKOFF = 60.0


def _api_reason(err: ApiException) -> str:
    """The API server's own message, without headers."""
    try:
        body = json.loads(err.body or "{}")
        causes = ",".join(c.get("reason", "") for c in (body.get("details") or {}).get("causes") or [])
        return f"{body.get('message', err.reason)}" + (f" [{causes}]" if causes else "")
    except (ValueError, TypeError):
        return str(err.reason)


def _deps(memo: Runtime, body: Any) -> Deps:
    assert memo.deps is not None, "startup did not run"

    def emit(type_: str, reason: str, message: str) -> None:
        kopf.event(body, type=type_, reason=reason, message=message[:1024])

    return Deps(
        kube=memo.deps.kube,
        cache=memo.cache,
        discovery=memo.deps.discovery,
        config=memo.config,
        backends=memo.deps.backends,
        emit=emit,
    )


def _set_phase(memo: Runtime, key: tuple[str, str], phase: str | None) -> None:
    old = memo.phases.pop(key, None)
    if old:
        STORES.labels(old).dec()
    if phase:
        memo.phases[key] = phase
        STORES.labels(phase).inc()


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=10.0)
async def featurestore_worker(
    body: kopf.Body, meta: kopf.Meta, memo: Runtime, stopped: kopf.DaemonStopped, logger: Any, **_: Any
) -> None:
    """Reconciles one FeatureStore until it is deleted (or this operator loses leadership)."""
    key = (meta["namespace"], meta["name"])
    wake = memo.wakeup(*key)
    backoff = 1.0
    deps = _deps(memo, body)
    try:
        while not stopped:
            wake.clear()
            async with memo.slots:  # bounded concurrency, first come first served: see Runtime.slots
                started = time.perf_counter()
                snapshot = copy.deepcopy(dict(body))  # the latest body: taken once it is our turn
                if snapshot.get("metadata", {}).get("deletionTimestamp") or meta.get("uid") in memo.deleted:
                    return
                try:
                    result = await reconcile(deps, snapshot)
                    delay = result.requeue_after if result.requeue_after is not None else memo.config.resync_seconds
                    RECONCILES.labels(result.phase or "unknown").inc()
                    _set_phase(memo, key, result.phase)
                    backoff = 1.0
                except ApiException as err:
                    reason = _api_reason(err)
                    if "NamespaceTerminating" in reason or err.status == 404 and meta.get("uid") in memo.deleted:
                        return  # the store (or its namespace) is going away
                    logger.warning(f"reconcile failed: Kubernetes API {err.status}: {reason}")
                    deps.emit("Warning", "ReconcileError", f"Kubernetes API {err.status}: {reason}")
                    RECONCILES.labels("error").inc()
                    delay, backoff = backoff, min(backoff * 2, MAX_BACKOFF)
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


def _no_finalizer_for_daemon() -> None:
    """kopf puts a finalizer on every object that has a daemon, so it can stop the daemon before the
    object goes. Our worker needs no such grace (it exits when the object is gone, see
    ``featurestore_changed``), and DESIGN requires the finalizer only while cloud resources need
    cleanup - which the on.delete handler below declares per object. So the daemon opts out."""
    registry = kopf.get_default_registry()
    handlers = registry._spawning._handlers
    for i, handler in enumerate(handlers):
        if getattr(handler.fn, "__name__", "") == "featurestore_worker":
            handlers[i] = dataclasses.replace(handler, requires_finalizer=False)


_no_finalizer_for_daemon()


@kopf.on.event(GROUP, VERSION, PLURAL)
async def featurestore_changed(event: dict[str, Any], meta: kopf.Meta, memo: Runtime, **_: Any) -> None:
    """Spec changes (new generation) and deletion wake the worker at once."""
    key = (meta["namespace"], meta["name"])
    if event["type"] == "DELETED":
        memo.deleted.add(meta.get("uid"))
        memo.poke(*key)  # lets its worker notice and exit
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
