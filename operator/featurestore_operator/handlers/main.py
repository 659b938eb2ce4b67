"""`featurestore-operator run`: validate the configuration, then hand over to kopf."""

from __future__ import annotations

import argparse
import asyncio
import sys

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
    liveness = args.liveness or f"http://0.0.0.0:{config.health_port}/healthz"

    # Importing registers the handlers on kopf's default registry.
    from . import children, featurestore, startup  # noqa: F401

    kopf.configure(log_format=kopf.LogFormat.JSON, verbose=False)
    asyncio.run(
        kopf.operator(
            clusterwide=not namespaces,
            namespaces=namespaces or (),
            standalone=peering is None,
            peering_name=peering or "featurestore-operator",
            liveness_endpoint=liveness,
            memo=Runtime(config=config),
        )
    )
    return 0
