"""Process-wide state: the client, caches, workers and watches, handed to kopf handlers as its memo."""

from __future__ import annotations

from typing import Any

from ..api import OperatorConfig
from ..backends.registry import DefaultBackends
from ..reconcile.applier import Applier, ObservedCache
from ..reconcile.core import Deps
from ..reconcile.discovery import Discovery
from ..reconcile.events import Event
from ..reconcile.kube import Kube
from ..reconcile.outcomes import BackendSet
from ..reconcile.watches import Watches
from .events import EventPoster
from .health import Health
from .token_reviewers import TokenReviewers
from .workers import Workers


class Runtime:
    def __init__(self, config: OperatorConfig, kube: Kube, backends: BackendSet | None = None):
        self.config = config
        self.kube = kube
        self.cache = ObservedCache()
        namespaces = list(config.namespaces)
        # a namespace-restricted operator may not list cluster-wide: probe kinds where it may
        self.discovery = Discovery(kube, namespace=namespaces[0] if namespaces else None)
        self.applier = Applier(kube, self.cache)
        self.backends: BackendSet = backends or DefaultBackends(config)
        self.events = EventPoster(kube)
        self.health = Health()
        #: uids of clean-up records found not to be the operator's (logged once each)
        self.ignored_records: set[str | None] = set()
        self.workers = Workers(
            self.deps,
            resync=config.resync_seconds,
            concurrency=config.max_concurrent_reconciles,
            max_spec_bytes=config.effective_policy.bounds.max_spec_bytes,
        )
        self.token_reviewers = TokenReviewers(len(namespaces) or 1)
        self.watches = Watches(kube, self.discovery, self.cache, self.workers.wake, namespaces or None)

    def deps(self, body: dict[str, Any]) -> Deps:
        """What one pass over the FeatureStore ``body`` needs; its Events name that store."""

        def emit(event: Event) -> None:
            self.events.post(body, event)

        return Deps(
            kube=self.kube,
            cache=self.cache,
            discovery=self.discovery,
            config=self.config,
            backends=self.backends,
            emit=emit,
            stores=self.workers.stores_in,
            default_marks=self.workers.default_marks,
            shared_applier=self.applier,
        )

    def rediscover(self) -> None:
        """An optional CRD came or went: discover again, watch what is now served, reconcile all."""
        self.discovery.invalidate()
        self.watches.kinds_changed()
        self.workers.wake_all()
