"""`featurestore-operator run`: validate the configuration, then run the operator:

- the health endpoint (``runtime.health``) and the metrics endpoint;
- the validating admission webhook, in every replica (``handlers.admission``), leader or not;
- leader election on a Lease when several replicas run (``runtime.leadership``);
- once acting: the operator's one watch engine (``runtime.watches``) with its feeds: FeatureStores
  (``handlers.featurestore``, handed to the per-store workers, ``runtime.workers``), the owned kinds,
  the optional CRDs and, with onboarding, namespaces, Profiles and marker ConfigMaps
  (``handlers.profiles``); the Event poster; and kopf.

kopf watches nothing: it runs the process's operator loop (its login and its handling of SIGTERM and
SIGINT, which end ``run_kopf`` and with it the operator cleanly). The admission webhook has its own
bounded server (``handlers.admission``, ``handlers.webhook_server``). If kopf's loop stops it is started
again in the same process (the workers, watches and caches keep running). Why not kopf's watches: see
docs/concepts/design.md ("One watch engine").
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

from .. import __version__
from ..api import OperatorConfig, names
from ..backends.cluster import with_cluster_id
from ..reconcile.onboarding import follow_shared_secret
from ..runtime.kube import Kube
from ..runtime.leadership import LeaderElector
from . import admission, profiles
from .featurestore import featurestore_feeds
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
    if args.namespace:
        config = config.model_copy(update={"namespaces": list(args.namespace)})
    election = None if args.standalone else (args.leader_election or config.leader_election)
    debug = bool(os.environ.get("FSO_DEBUG"))
    kopf.configure(log_format=kopf.LogFormat.JSON, verbose=debug, debug=debug)
    if not debug:
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
        for noisy in ("httpx", "httpx2", "httpcore"):  # a line per request
            logging.getLogger(noisy).setLevel(logging.WARNING)
    return asyncio.run(operate(config, election))


async def operate(config: OperatorConfig, election: str | None) -> int:
    # Importing registers kopf's login and settings on its default registry.
    from . import startup  # noqa: F401

    kube = Kube.from_environment()
    config = await with_cluster_id(config, kube.get)  # labelled on every cloud resource
    config = config.model_copy(update={"operator_namespace": own_namespace(config, kube)})
    rt = Runtime(config, kube)
    rt.watches.add(featurestore_feeds(rt, _scopes(config)))  # required by /healthz from the start
    rt.watches.add(profiles.feeds(rt, config))  # Kubeflow: optional CRDs; profile onboarding only when enabled
    await rt.health.start(config.health_port)
    if config.metrics_port:
        start_http_server(config.metrics_port)
    elector = _elector(rt, election)
    log.info(
        "featurestore-operator started (version %s, default provider %s%s)",
        __version__,
        config.default_provider.value,
        f", leader election on Lease {elector.namespace}/{elector.name}" if elector else "",
    )
    # The admission webhook is served by every replica, leader or stand-by (handlers/admission.py).
    rt.health.needs_webhook = config.webhook_enabled
    serving = [_task(admission.serve(kube, config, rt.health.webhook), "webhook")] if config.webhook_enabled else []
    tasks: list[asyncio.Task[Any]] = list(serving)
    try:
        if elector is not None:
            rt.health.leading = False
            if not await _lead(elector, serving):
                return 1
            rt.health.leading = True
        tasks += [
            _task(rt.watches.run(), "watches"),
            _task(rt.events.run(), "events"),
        ]
        if config.onboarding_enabled and config.onboarding_template.shared_online_store is not None:
            tasks.append(_task(follow_shared_secret(rt.kube, config), "shared online store Secret"))
        if config.token_reviewers_binding:  # authz kubernetes: who may create TokenReviews
            tasks.append(_task(rt.token_reviewers.run(rt, config.token_reviewers_binding), "token reviewers"))
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


async def _lead(elector: LeaderElector, serving: list[asyncio.Task[Any]]) -> bool:
    """Wait for the Lease; False (after logging why) when a task that runs meanwhile ends first."""
    acquiring = _task(elector.acquire(), "leader election")
    done, _ = await asyncio.wait([acquiring, *serving], return_when=asyncio.FIRST_COMPLETED)
    if acquiring in done:
        acquiring.result()
        return True
    acquiring.cancel()
    for t in done:
        log.error("%s ended: %s", t.get_name(), t.exception() if not t.cancelled() else "cancelled")
    return False


def _scopes(config: OperatorConfig) -> list[str | None]:
    """Namespaces to watch, or None: cluster-wide."""
    return [*config.namespaces] or [None]


def _task(coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
    return asyncio.create_task(coro, name=name)


def _elector(rt: Runtime, election: str | None) -> LeaderElector | None:
    if not election:
        return None
    namespace = rt.config.leader_election_namespace or rt.config.records_namespace
    identity = os.environ.get("POD_NAME") or f"{os.uname().nodename}-{os.getpid()}"
    return LeaderElector(rt.kube, namespace, election, identity, float(rt.config.leader_election_seconds))


def own_namespace(config: OperatorConfig, kube: Kube) -> str:
    """The operator's namespace (where its clean-up records and its Lease live): FSO_OPERATOR_NAMESPACE,
    else POD_NAMESPACE (the chart's downward API), else the client's default namespace (in a pod its
    service account's, else the kubeconfig context's, else "default"). Validated: it goes into URLs."""
    found = config.operator_namespace or os.environ.get("POD_NAMESPACE") or kube.client.namespace or "default"
    return names.namespace(found, "the operator's namespace (FSO_OPERATOR_NAMESPACE / POD_NAMESPACE)")


async def run_kopf(rt: Runtime) -> None:
    """kopf's operator loop (login, signals; it watches nothing), started again if it fails; returns
    when it ends normally (SIGTERM/SIGINT)."""
    namespaces = list(rt.config.namespaces)
    backoff = 1.0
    while True:
        started = time.monotonic()
        try:
            await kopf.operator(clusterwide=not namespaces, namespaces=namespaces, standalone=True, memo=rt)
            return
        except kopf.LoginError:
            raise
        except Exception as err:  # noqa: BLE001 - a failed watch of its own: start it again
            backoff = 1.0 if time.monotonic() - started > 120 else min(backoff * 2, 30.0)
            log.error("kopf stopped (%s: %s); starting it again in %.0fs", type(err).__name__, err, backoff)
            await asyncio.sleep(backoff)
