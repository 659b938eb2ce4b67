"""Backends: ensure each store of a FeatureStore and collect the typed outcomes."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..api import ConditionType as T
from ..api import FeatureStore, FeatureStoreStatus
from ..backends.base import Backend, BackendContext, Failed, Outcome, Pending, Ready, StatusUpdate
from ..render import Endpoints

log = logging.getLogger(__name__)


class BackendSet(Protocol):
    def online(self, fs: FeatureStore) -> Backend[Any]: ...
    def offline(self, fs: FeatureStore) -> Backend[Any]: ...
    def extra(self, fs: FeatureStore) -> list[tuple[T, Backend[Any]]]: ...


def all_backends(backends: BackendSet, fs: FeatureStore) -> list[tuple[T, Backend[Any]]]:
    return [(T.ONLINE_STORE, backends.online(fs)), (T.OFFLINE_STORE, backends.offline(fs)), *backends.extra(fs)]


@dataclass(frozen=True)
class BackendResults:
    outcomes: dict[T, Outcome[Any]]
    #: the status with what backends recorded (operation names) merged in
    status: FeatureStoreStatus

    @property
    def online(self) -> Outcome[Any]:
        return self.outcomes[T.ONLINE_STORE]

    @property
    def offline(self) -> Outcome[Any]:
        return self.outcomes[T.OFFLINE_STORE]

    @property
    def endpoints(self) -> Endpoints:
        return Endpoints(
            online=self.online.endpoint if isinstance(self.online, Ready) else None,
            offline=self.offline.endpoint if isinstance(self.offline, Ready) else None,
        )

    @property
    def ready(self) -> bool:
        return isinstance(self.online, Ready) and isinstance(self.offline, Ready)

    @property
    def online_secret(self) -> dict[str, str] | None:
        return self.online.secret if isinstance(self.online, Ready) else None

    def waiting(self) -> list[str]:
        return [f"{t.value} {o.reason}" for t, o in self.outcomes.items() if not isinstance(o, Ready)]

    def retry_after(self) -> float | None:
        waits = [o.retry_after for o in self.outcomes.values() if isinstance(o, (Pending, Failed))]
        return min(waits) if waits else None


def merge_status(status: FeatureStoreStatus, update: StatusUpdate) -> FeatureStoreStatus:
    """``status`` with a backend's typed update merged in (only the fields it set)."""
    return update.applied_to(status) if update else status


async def ensure_backends(
    backends: BackendSet,
    fs: FeatureStore,
    ctx: BackendContext,
    status: FeatureStoreStatus,
    persist: Callable[[FeatureStoreStatus], Awaitable[None]],
) -> BackendResults:
    """Run every backend's ``ensure``; what one records in status (a long-running operation's name)
    is persisted at once, before anything else can fail, so a restarted operator resumes it."""
    outcomes: dict[T, Outcome[Any]] = {}
    for type_, backend in all_backends(backends, fs):
        try:
            outcome = await backend.ensure(fs, ctx)
        except Exception as err:  # noqa: BLE001 - a backend bug must not take the operator down
            log.exception(
                "backend %s failed for %s/%s", type(backend).__name__, fs.metadata.namespace, fs.metadata.name
            )
            outcome = Failed("BackendError", f"{type(backend).__name__}: {type(err).__name__}: {err}", retryable=True)
        outcomes[type_] = outcome
        if outcome.status:
            status = merge_status(status, outcome.status)
            fs = fs.model_copy(update={"status": status})
            await persist(status)
    return BackendResults(outcomes, status)
