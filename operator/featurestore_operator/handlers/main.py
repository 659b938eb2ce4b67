"""`featurestore-operator run`: validate the configuration, then run the operator:

- the health endpoint (``handlers.health``) and the metrics endpoint;
- leader election on a Lease when several replicas run (``handlers.leadership``);
- once acting: the watches of owned kinds (``reconcile.watches``), the Event poster, and kopf, which
  watches FeatureStores (and, with onboarding, namespaces/Profiles) and hands them to the per-store
  workers (``handlers.workers``).

kopf stops when its watch of a resource fails for good, e.g. while a restarted API server answers
404 for custom resources until it has loaded the CRDs again. It is then started again in the same
process (the workers and their caches keep running), but only once the FeatureStore resource is
served again: a kopf run started before that would find no FeatureStore resource and never watch
it. Meanwhile /healthz answers 503.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from collections.abc import Coroutine
from typing import Any

import kopf
from prometheus_client import start_http_server
from pydantic import ValidationError

from ..api import API_VERSION, OperatorConfig
from ..reconcile.kube import ApiError, Kube
from .leadership import LeaderElector
from .runtime import Runtime

log = logging.getLogger(__name__)
#: how often the acting replica checks that the FeatureStore resource is still served
SERVED_CHECK_SECONDS = 10.0


def run(args: argparse.Namespace) -> int:
    try:
        config = OperatorConfig()
    except ValidationError as err:
        for e in err.errors(include_url=False):
            field = "FSO_" + "_".join(str(x) for x in e["loc"]).upper()
            print(f"error: operator config {field}: {e['msg']} (got {e.get('input')!r})", file=sys.stderr)
        return 2
    if args.namespace:
        config = config.model_copy(update={"namespaces": list(args.namespace)})
    election = None if args.standalone else (args.leader_election or config.leader_election)
    debug = bool(os.environ.get("FSO_DEBUG"))
    kopf.configure(log_format=kopf.LogFormat.JSON, verbose=debug, debug=debug)
    if not debug:
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    return asyncio.run(operate(config, election))


async def operate(config: OperatorConfig, election: str | None) -> int:
    # Importing registers the handlers on kopf's default registry.
    from . import featurestore, profiles, startup  # noqa: F401

    profiles.register(config)
    rt = Runtime(config, Kube.from_environment())
    await rt.health.start(config.health_port)
    if config.metrics_port:
        start_http_server(config.metrics_port)
    elector = _elector(rt, election)
    tasks: list[asyncio.Task[Any]] = []
    try:
        if elector is not None:
            rt.health.leading = False
            await elector.acquire()
            rt.health.leading = True
        tasks = [_task(rt.watches.run(), "watches"), _task(rt.events.run(), "events")]
        acting = [_task(run_kopf(rt), "kopf")] + ([_task(elector.keep(), "leadership")] if elector else [])
        tasks += acting
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        failed = [t for t in done if t.get_name() != "kopf" or t.exception() is not None]
        for t in failed:
            if not t.cancelled() and t.exception() is not None:
                log.error("%s ended: %s", t.get_name(), t.exception())
        return 1 if failed else 0
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await rt.workers.stop()
        if elector is not None:
            await elector.release()
        await rt.health.stop()
        await rt.kube.close()


def _task(coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
    return asyncio.create_task(coro, name=name)


def _elector(rt: Runtime, election: str | None) -> LeaderElector | None:
    if not election:
        return None
    namespace = rt.config.leader_election_namespace or os.environ.get("POD_NAMESPACE") or _own_namespace()
    identity = os.environ.get("POD_NAME") or f"{os.uname().nodename}-{os.getpid()}"
    return LeaderElector(rt.kube, namespace, election, identity, float(rt.config.leader_election_seconds))


def _own_namespace() -> str:
    try:
        with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace", encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return "default"


async def run_kopf(rt: Runtime) -> None:
    """kopf, again and again: returns when kopf ends normally (SIGTERM/SIGINT)."""
    namespaces = list(rt.config.namespaces)
    backoff = 1.0
    while True:
        await wait_until_served(rt)
        started = time.monotonic()
        checker = _task(_watch_served(rt), "served-check")
        try:
            await kopf.operator(clusterwide=not namespaces, namespaces=namespaces, standalone=True, memo=rt)
            return
        except kopf.LoginError:
            raise
        except Exception as err:  # noqa: BLE001 - any watch failure: start again once served
            rt.health.watching = False
            backoff = 1.0 if time.monotonic() - started > 120 else min(backoff * 2, 30.0)
            log.error("kopf stopped (%s: %s); starting it again in %.0fs once FeatureStores are served",
                      type(err).__name__, err, backoff)
            await asyncio.sleep(backoff)
        finally:
            checker.cancel()
            rt.health.watching = False


async def wait_until_served(rt: Runtime) -> None:
    """Until the API server serves the FeatureStore resource (a restarted API server answers 404
    for custom resources until it has loaded their CRDs). Authentication failures end the process."""
    namespace = rt.config.namespaces[0] if rt.config.namespaces else None
    delay = 1.0
    while True:
        try:
            if await rt.kube.served("FeatureStore", API_VERSION, namespace):
                rt.discovery.invalidate()
                return
            rt.health.reason = "the FeatureStore resource is not served: is its CRD installed?"
        except ApiError as err:
            if err.status in (401, 403):
                raise
            rt.health.reason = f"API server: {err}"
        except Exception as err:  # noqa: BLE001 - the API server is not reachable yet
            rt.health.reason = f"API server: {type(err).__name__}: {err}"
        log.warning("waiting for the FeatureStore resource: %s", rt.health.reason)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 10.0)


async def _watch_served(rt: Runtime) -> None:
    """While kopf runs: healthy as long as the FeatureStore resource is served."""
    namespace = rt.config.namespaces[0] if rt.config.namespaces else None
    while True:
        try:
            served = await rt.kube.served("FeatureStore", API_VERSION, namespace)
            rt.health.reason = "watching FeatureStores" if served else "the FeatureStore resource is not served"
        except Exception as err:  # noqa: BLE001
            served = False
            rt.health.reason = f"API server: {type(err).__name__}: {err}"
        rt.health.watching = served
        await asyncio.sleep(SERVED_CHECK_SECONDS)
