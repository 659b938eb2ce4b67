"""kopf's settings, login and probes. kopf is used through its public API only."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from ..api import GROUP
from . import profiles
from .runtime import Runtime

log = logging.getLogger(__name__)


class NoDiffBase(kopf.DiffBaseStorage):
    """No diff base ("last-handled-configuration"): every handler is on.event, so nothing reads a
    diff; kopf's default would store a deep copy of every watched body (~9% of the operator's busy
    CPU in bench/reconcile.py --profile)."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> None:  # type: ignore[override]
        return None

    def fetch(self, *, body: kopf.Body) -> None:  # type: ignore[override]
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: Any) -> None:  # type: ignore[override]
        return None


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """kopf's own minimal logins (service account, kubeconfig) instead of its default piggybacking
    on the `kubernetes` package: the operator does not import that 48 MiB package at all."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: Runtime, **_: Any) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.posting.enabled = False  # Events come from the operator itself (handlers.events)
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.watching.reconnect_backoff = 1.0
    settings.networking.request_timeout = 30
    settings.execution.max_workers = 4  # kopf's thread pool: our handlers are all async
    profiles.server_side_selectors(settings, memo.config)
