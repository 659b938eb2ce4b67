"""kopf's settings and login. kopf is used through its public API only (the health endpoint is the
operator's own: ``runtime.health``)."""

from __future__ import annotations

import logging
from typing import Any

import kopf

log = logging.getLogger(__name__)


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """kopf's own minimal logins (service account, kubeconfig) instead of its default piggybacking
    on the `kubernetes` package: the operator does not import that 48 MiB package at all."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.posting.enabled = False  # Events come from the operator itself (runtime.events)
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.watching.reconnect_backoff = 1.0
    settings.networking.request_timeout = 30
    settings.execution.max_workers = 4  # kopf's thread pool: our handlers are all async
