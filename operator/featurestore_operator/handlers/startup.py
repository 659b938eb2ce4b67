"""Operator start-up: kopf settings and the process-wide clients."""

from __future__ import annotations

import logging
from typing import Any

import kopf
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from prometheus_client import start_http_server

from ..api import FINALIZER, GROUP
from ..backends.registry import DefaultBackends
from ..reconcile.core import Deps
from ..reconcile.discovery import Discovery
from ..reconcile.kube import FIELD_MANAGER, Kube
from .runtime import Runtime

log = logging.getLogger(__name__)
_metrics_port: list[int] = []


def _start_metrics(port: int) -> None:
    """Once per process: kopf may be restarted in-process (handlers.main) and run startup again."""
    if not _metrics_port:
        start_http_server(port)
        _metrics_port.append(port)


def kube_client() -> k8s.ApiClient:
    """In-cluster credentials when running in a pod, else the kubeconfig (KUBECONFIG)."""
    try:
        k8s_config.load_incluster_config()
        return k8s.ApiClient()
    except k8s_config.ConfigException:
        return k8s_config.new_client_from_config()


class NoDiffBase(kopf.DiffBaseStorage):
    """No diff base ("last-handled-configuration"): the worker is level-triggered and no handler
    is on.create/on.update/on.resume, so nothing reads a diff. kopf's default builds one for every
    watch event of every watched kind, a deep copy of the body: ~9% of the operator's busy CPU
    while 200 stores were created (bench/reconcile.py --profile). Deletion handling does not use it."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> None:  # type: ignore[override]
        return None

    def fetch(self, *, body: kopf.Body) -> None:  # type: ignore[override]
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: Any) -> None:  # type: ignore[override]
        return None


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: Runtime, **_: Any) -> None:
    config = memo.config
    settings.persistence.finalizer = FINALIZER
    settings.peering.lifetime = config.peering_lifetime
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.posting.level = logging.WARNING  # our own Events describe transitions; kopf adds failures only
    # kopf posts each object's Events from its own worker, unbounded by default, over a connection
    # pool without a limit: 1000 new stores meant ~1000 parallel POSTs, as many TLS connections
    # (each with a 256 KiB read buffer the heap keeps after they close) and as many handshakes for
    # the API server (bench/memory.py, bench/reconcile.py). Events are fire-and-forget: a few
    # posters suffice.
    settings.posting.worker_limit = 8
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.watching.reconnect_backoff = 1.0
    settings.networking.request_timeout = 30
    settings.batching.error_delays = [1, 2, 5, 10, 30, 60]
    settings.execution.max_workers = 20
    api = kube_client()
    api.user_agent = f"{FIELD_MANAGER}/{__import__('featurestore_operator').__version__}"
    kube = Kube(api)
    memo.deps = Deps(
        kube=kube, cache=memo.cache, discovery=Discovery(kube), config=config, backends=DefaultBackends(config)
    )
    if config.metrics_port:
        _start_metrics(config.metrics_port)
    log.info("featurestore-operator started (default provider %s)", config.default_provider.value)
