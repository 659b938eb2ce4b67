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
from .runtime import Runtime


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

    kopf.configure(log_format=kopf.LogFormat.JSON, verbose=bool(os.environ.get("FSO_DEBUG")), debug=bool(os.environ.get("FSO_DEBUG")))
    if not os.environ.get("FSO_DEBUG"):
        # kopf reports every successful child-watch handler at INFO: one line per event.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
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
