"""Process-wide state: the client, caches, the FeatureStore controller, its workers and the watches."""

from __future__ import annotations

from typing import Any

from ..api import OperatorConfig
from ..backends.registry import DefaultBackends
from ..reconcile import versions
from ..reconcile.applier import Applier
from ..reconcile.controller import FeatureStoreController, default_marks
from ..reconcile.core import Deps
from ..reconcile.outcomes import BackendSet
from ..runtime.cache import ObservedCache
from ..runtime.events import Event, EventPoster
from ..runtime.health import Health
from ..runtime.kube import Kube
from ..runtime.watches import Watches
from ..runtime.workers import Workers
from .token_reviewers import TokenReviewers


class Runtime:
    def __init__(self, config: OperatorConfig, kube: Kube, backends: BackendSet | None = None):
        self.config = config
        self.kube = kube
        self.cache = ObservedCache()
        namespaces = list(config.namespaces)
        # a namespace-restricted operator may not list cluster-wide: probe kinds where it may
        self.discovery = versions.discovery(
            kube,
            namespace=namespaces[0] if namespaces else None,
            also=frozenset({"Profile"}) if config.onboarding_enabled else frozenset(),  # onboarding watches them
        )
        self.applier = Applier(kube, self.cache)
        self.backends: BackendSet = backends or DefaultBackends(config)
        self.events = EventPoster(kube)
        self.health = Health()
        #: uids of clean-up records found not to be the operator's (logged once each)
        self.ignored_records: set[str | None] = set()
        #: uids of stores whose clean-up record is in place (reconcile.core.Deps.recorded)
        self.recorded: set[str] = set()
        self.controller = FeatureStoreController(
            kube, self.deps, max_spec_bytes=config.effective_policy.bounds.max_spec_bytes
        )
        self.workers = Workers(
            self.controller, resync=config.resync_seconds, concurrency=config.max_concurrent_reconciles
        )
        self.token_reviewers = TokenReviewers(len(namespaces) or 1)
        self.watches = Watches(kube, self.discovery, self.cache, self.workers.wake, namespaces or None)
        self.health.failing = self.watches.failing

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
            default_marks=lambda namespace: default_marks(self.workers.bodies, namespace),
            recorded=self.recorded,
            shared_applier=self.applier,
        )

    def rediscover(self) -> None:
        """An optional CRD came or went: discover again, watch what is now served, reconcile all."""
        self.discovery.invalidate()
        self.watches.kinds_changed()
        self.workers.wake_all()
