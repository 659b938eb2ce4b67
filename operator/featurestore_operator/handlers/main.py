"""`featurestore-operator run`: validate the configuration, then hand over to kopf."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time

import kopf
from pydantic import ValidationError

from ..api import OperatorConfig
from ..metrics import STORES
from .runtime import Runtime

log = logging.getLogger(__name__)


def run(args: argparse.Namespace) -> int:
    try:
        config = OperatorConfig()
    except ValidationError as err:
        for e in err.errors(include_url=False):
            field = "FSO_" + "_".join(str(x) for x in e["loc"]).upper()
            print(f"error: operator config {field}: {e['msg']} (got {e.get('input')!r})", file=sys.stderr)
        return 2
    namespaces = args.namespace or config.namespaces
    peering = None if args.standalone else (args.peering or config.peering)
    # kopf pauses every replica that sees a live peer of the same or a higher priority, so equal
    # priorities (kopf's default 0 for all) leave NO replica acting. Older replicas rank higher:
    # a new replica (rolling update, restart) stands by until the acting one is gone.
    priority = config.peering_priority if config.peering_priority is not None else -time.time_ns() // 1000
    liveness = args.liveness or f"http://0.0.0.0:{config.health_port}/healthz"

    # Importing registers the handlers on kopf's default registry.
    from . import children, featurestore, profiles, startup  # noqa: F401

    profiles.register(config)  # Kubeflow: optional CRDs; profile onboarding only when enabled

    kopf.configure(
        log_format=kopf.LogFormat.JSON,
        verbose=bool(os.environ.get("FSO_DEBUG")),
        debug=bool(os.environ.get("FSO_DEBUG")),
    )
    if not os.environ.get("FSO_DEBUG"):
        # kopf reports every successful child-watch handler at INFO: one line per event.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    # kopf ends the whole operator when one watch request fails for good; a restarted API server
    # answers 404 for custom resources (FeatureStore, PodDefault) for a moment until it has loaded
    # the CRDs again. Such transient API failures restart kopf inside this process (every store is
    # listed again: level-triggered, nothing is lost) instead of taking the process down. A signal
    # (SIGTERM/SIGINT) ends kopf normally and the process exits.
    backoff = 1.0
    while True:
        started = time.monotonic()
        STORES.clear()  # stores by phase are counted again by the new run's workers
        try:
            asyncio.run(
                kopf.operator(
                    clusterwide=not namespaces,
                    namespaces=namespaces or (),
                    # kopf treats a peering name as "peering is mandatory": pass it only for HA.
                    standalone=peering is None,
                    peering_name=peering,
                    priority=priority,
                    liveness_endpoint=liveness,
                    memo=Runtime(config=config),
                )
            )
            return 0
        except Exception as err:  # noqa: BLE001 - classified right below
            if not _transient(err):
                raise
            backoff = 1.0 if time.monotonic() - started > 120 else min(backoff * 2, 30.0)
            log.error(
                "kopf stopped on a transient Kubernetes API failure (%s: %s); restarting it in %.0fs",
                type(err).__name__,
                err,
                backoff,
            )
            time.sleep(backoff)


def _transient(err: BaseException) -> bool:
    """API failures a retry can fix (server errors, a 404 of a resource while CRDs load, dropped
    connections). Authentication/authorization failures are configuration: the process fails."""
    import aiohttp
    from kopf._cogs.clients import errors as kerrors

    if isinstance(err, (kerrors.APIUnauthorizedError, kerrors.APIForbiddenError)):
        return False
    return isinstance(err, (kerrors.APIError, aiohttp.ClientError, TimeoutError, ConnectionError))
