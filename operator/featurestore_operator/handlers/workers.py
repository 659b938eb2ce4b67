"""One worker task per FeatureStore: runs the level-triggered pass whenever something changed (the
store, a child, a backend asked to be looked at again) and at least every resync period; cleans up
when the store is deleted, and after it when it vanished without its finalizer being honoured
(``reconcile.finalize.clean_up_vanished``: its last body is kept until its cloud resources are gone).

The tasks are ours (not kopf daemons), so kopf adds no finalizer of its own and a restart of kopf's
watch (``handlers.main``) leaves them running: kopf only hands over the latest body and wakes them.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Callable
from typing import Any

from .. import store_metrics
from ..api import API_VERSION, FINALIZER, FeatureStoreStatus
from ..api.bounds import CostBounds, shed
from ..metrics import RECONCILE_SECONDS, RECONCILES, STORES
from ..reconcile.core import Deps, Result, reconcile
from ..reconcile.finalize import clean_up_vanished, finalize
from ..reconcile.kube import ApiError

log = logging.getLogger(__name__)
Key = tuple[str, str]
MAX_BACKOFF = 60.0


DEFAULT_MAX_SPEC_BYTES: int = CostBounds.model_fields["max_spec_bytes"].default
#: written by kubectl/server-side apply, never read by a pass: not kept for 1000s of stores
_UNREAD_METADATA = ("managedFields",)
_UNREAD_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)


def slim_body(body: dict[str, Any], max_spec_bytes: int = DEFAULT_MAX_SPEC_BYTES) -> dict[str, Any]:
    """The FeatureStore as a pass reads it, without the bookkeeping the API server and kubectl add
    (managedFields grow with every status write; kubectl keeps a copy of the whole object), and
    without a spec over the admin policy's maxSpecBytes (one that got past admission: webhook off or
    failing open): the operator never holds big specs, the pass reports the refusal from the size
    it recorded (api/bounds.py, ``shed``)."""
    body = shed(body, max_spec_bytes)
    meta = {k: v for k, v in body["metadata"].items() if k not in _UNREAD_METADATA}
    if meta.get("annotations"):
        meta["annotations"] = {k: v for k, v in meta["annotations"].items() if k not in _UNREAD_ANNOTATIONS}
    return {**body, "metadata": meta}


class Workers:
    def __init__(
        self,
        deps: Callable[[dict[str, Any]], Deps],
        *,
        resync: float,
        concurrency: int,
        max_spec_bytes: int = DEFAULT_MAX_SPEC_BYTES,
    ):
        self._deps = deps
        self.max_spec_bytes = max_spec_bytes
        self.resync = resync
        #: bounded concurrency, first come first served: 1000 new stores must not run 1000 passes at
        #: once (all their temporaries alive together; bench/memory.py)
        self.slots = asyncio.Semaphore(concurrency)
        self.bodies: dict[Key, dict[str, Any]] = {}
        self.generations: dict[Key, Any] = {}
        self.wakeups: dict[Key, asyncio.Event] = {}
        self.tasks: dict[Key, asyncio.Task[None]] = {}
        self.phases: dict[Key, str] = {}
        #: stores gone without our finalize having completed: their last body, until cleaned up
        self.vanished: dict[Key, dict[str, Any]] = {}
        #: stores seen with our finalizer (cloud resources may exist), and those our finalize completed
        self.guarded: set[Key] = set()
        self.finalized: set[Key] = set()

    # -- fed by the FeatureStore watch and the children's watches -------------------------------
    def observe(self, event_type: str | None, body: dict[str, Any]) -> None:
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        if event_type == "DELETED":
            self.forget(key, body)
            return
        self.bodies[key] = slim_body(body, self.max_spec_bytes)
        if _guarded(body):
            self.guarded.add(key)
        changed = self.generations.get(key) != meta.get("generation") or meta.get("deletionTimestamp")
        self.generations[key] = meta.get("generation")
        if not self._start(key) and changed:
            self.wake(*key)
        if changed:
            self.wake_namespace(key)

    def stores_in(self, namespace: str) -> list[tuple[str, str]]:
        """(creationTimestamp, name) of the namespace's stores (admin policy maxStoresPerNamespace)."""
        return [
            (body["metadata"].get("creationTimestamp") or "", name)
            for (ns, name), body in self.bodies.items()
            if ns == namespace
        ]

    def _start(self, key: Key) -> bool:
        """Start the store's worker unless it runs; True when started."""
        if key in self.tasks and not self.tasks[key].done():
            return False
        self.wakeups[key] = asyncio.Event()
        self.tasks[key] = asyncio.create_task(self._run(key), name=f"featurestore {key[0]}/{key[1]}")
        return True

    def wake(self, namespace: str, name: str) -> None:
        event = self.wakeups.get((namespace, name))
        if event is not None:
            event.set()

    def wake_namespace(self, key: Key) -> None:
        """A store came, went or changed spec: its namespace's other stores look again (which store is
        the namespace's default for notebooks depends on all of them: render.kubeflow.default_store)."""
        for other in [k for k in self.bodies if k[0] == key[0] and k != key]:
            self.wake(*other)

    def default_marks(self, namespace: str) -> dict[str, bool | None]:
        """name -> spec.kubeflow.defaultStore of the namespace's stores (anything but a bool: unset)."""
        marks: dict[str, bool | None] = {}
        for (ns, name), body in self.bodies.items():
            if ns == namespace:
                mark = ((body.get("spec") or {}).get("kubeflow") or {}).get("defaultStore")
                marks[name] = mark if isinstance(mark, bool) else None
        return marks

    def wake_all(self) -> None:
        for event in self.wakeups.values():
            event.set()

    def forget(self, key: Key, last: dict[str, Any] | None = None) -> None:
        """The store is gone; ``last``: its last body (default: the one kept). Unless our finalize
        completed, that body is kept for ``clean_up_vanished``."""
        last = last if last is not None else self.bodies.get(key)
        store_metrics.forget(*key)
        self.bodies.pop(key, None)
        self.generations.pop(key, None)
        self._set_phase(key, None)
        guarded = key in self.guarded or (last is not None and _guarded(last))
        self.guarded.discard(key)
        if key in self.finalized:
            self.finalized.discard(key)
        elif guarded and last is not None:
            self.vanished[key] = slim_body(last, self.max_spec_bytes)
            self._start(key)
        self.wake(*key)  # lets its worker notice (and exit, or clean up)
        self.wake_namespace(key)

    def clean_up(self, key: Key, body: dict[str, Any]) -> None:
        """Clean up after the store ``body`` (gone; from its clean-up record) unless already doing so."""
        if key not in self.vanished:
            self.vanished[key] = slim_body(body, self.max_spec_bytes)
        self._start(key)
        self.wake(*key)

    async def stop(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)

    # -- the worker ---------------------------------------------------------------------------
    async def _run(self, key: Key) -> None:
        backoff = 1.0
        try:
            while key in self.bodies or key in self.vanished:
                self.wakeups[key].clear()
                delay, backoff = await self._pass(key, backoff)
                if delay is None:
                    return
                try:  # asyncio.timeout, not wait_for: no second task per idle store (bench/memory.py)
                    async with asyncio.timeout(min(delay, self.resync)):
                        await self.wakeups[key].wait()
                except TimeoutError:
                    pass
        finally:
            if key not in self.bodies and key not in self.vanished:
                self.wakeups.pop(key, None)

    async def _pass(self, key: Key, backoff: float) -> tuple[float | None, float]:
        """One pass; returns (seconds until the next one or None to stop, next backoff)."""
        async with self.slots:
            vanished = key in self.vanished
            body = self.vanished[key] if vanished else self.bodies.get(key)
            if body is None:
                return None, backoff
            body = copy.deepcopy(body)
            deps = self._deps(body)
            started = time.perf_counter()
            try:
                if vanished:
                    return await self._clean_up(key, deps, body), 1.0
                if body["metadata"].get("deletionTimestamp"):
                    done = await finalize(deps, body)
                    RECONCILES.labels("deleting").inc()
                    if done.done:
                        self._finalized(key, body)
                    return (None if done.done else done.retry_after), 1.0
                result = await reconcile(deps, body)
                self._record(key, body, result)
                return (result.requeue_after or self.resync), 1.0
            except ApiError as err:
                if err.gone and not await self._exists(deps, key):
                    self.forget(key, body)  # this pass's body: what it did (finalizer, records) included
                    return (0.0 if key in self.vanished else None), backoff
                if err.namespace_terminating:  # the store goes with its namespace; its deletion wakes us
                    log.info("%s/%s: namespace is being deleted", *key)
                    return self.resync, backoff
                log.warning("%s/%s: reconcile failed: Kubernetes API %s: %s", *key, err.status, err)
            except Exception as err:  # noqa: BLE001 - never let one store's error kill its worker
                log.exception("%s/%s: reconcile failed: %s: %s", *key, type(err).__name__, err)
            finally:
                RECONCILE_SECONDS.observe(time.perf_counter() - started)
            RECONCILES.labels("error").inc()
            return backoff, min(backoff * 2, MAX_BACKOFF)

    async def _clean_up(self, key: Key, deps: Deps, body: dict[str, Any]) -> float | None:
        done = await clean_up_vanished(deps, body)
        RECONCILES.labels("deleting").inc()
        if not done.done:
            self.vanished[key] = body  # with the operation names this attempt recorded
            return done.retry_after
        self.vanished.pop(key, None)
        return 0.0 if key in self.bodies else None  # a new store of that name: reconcile it now

    def _finalized(self, key: Key, body: dict[str, Any]) -> None:
        gone = self.vanished.get(key)
        if gone is not None and gone["metadata"].get("uid") == body["metadata"].get("uid"):
            del self.vanished[key]  # its DELETED event came first: nothing is left to clean up
        else:
            self.finalized.add(key)

    def _record(self, key: Key, body: dict[str, Any], result: Result) -> None:
        RECONCILES.labels(result.phase or "unknown").inc()
        self._set_phase(key, result.phase)
        store_metrics.observe(*key, FeatureStoreStatus.model_validate(body.get("status") or {}))
        if key in self.bodies:  # later passes compare status against what this one wrote
            self.bodies[key]["status"] = body.get("status")

    async def _exists(self, deps: Deps, key: Key) -> bool:
        return await deps.kube.get("FeatureStore", API_VERSION, key[0], key[1]) is not None

    def _set_phase(self, key: Key, phase: str | None) -> None:
        old = self.phases.pop(key, None)
        if old:
            STORES.labels(old).dec()
        if phase:
            self.phases[key] = phase
            STORES.labels(phase).inc()


def _guarded(body: dict[str, Any]) -> bool:
    return FINALIZER in (body["metadata"].get("finalizers") or [])
