"""Wiring of the Kubeflow integration: profile onboarding and optional CRDs installed later, as feeds
of the operator's watch engine (``runtime.watches``: relist, backoff, metrics, health).

Made by :func:`feeds` at start-up from the configuration, so that with onboarding off (the default)
the operator does not watch namespaces, Profiles or marker ConfigMaps at all and needs no RBAC for
them. The decisions live in :mod:`..reconcile.onboarding`.

Watches (onboarding on):
  * namespaces (all; decided client-side: label, Profile, opt-out) - every listing (at start-up and
    after any gap) is the "resume": every existing profile namespace is checked again;
  * Profiles (kubeflow.org/v1), once discovery finds the CRD served;
  * the onboarding marker ConfigMaps, selected server-side by their label (deleting one re-onboards
    its namespace); the operator never lists the cluster's other ConfigMaps.
The shared online store's source Secret is read by name (``reconcile.onboarding.follow_shared_secret``):
the operator may not list or watch Secrets.
Always: CustomResourceDefinitions of the optional Kubeflow/Istio kinds, so that installing (or
removing) Profile/PodDefault/AuthorizationPolicy is picked up at once rather than at the next
discovery refresh: the feeds of those kinds (Profiles above, the owned PodDefaults and
AuthorizationPolicies) start as soon as discovery finds them served. Onboarding does not depend on
the Profile watch: Kubeflow labels every profile namespace, and namespaces are always watched.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from ..api import OperatorConfig
from ..reconcile.onboarding import MARKER, MARKER_LABEL, Onboarder, Outcome
from ..runtime.events import Event
from ..runtime.watches import Feed
from .runtime import Runtime

log = logging.getLogger(__name__)
OPTIONAL_CRD_GROUPS = {"kubeflow.org", "security.istio.io"}
#: A CRD is Established a moment before discovery lists its kind: look again after this delay.
REDISCOVER_AFTER = 5.0
CRD_VERSION = "apiextensions.k8s.io/v1"
Obj = dict[str, Any]


class Onboarding:
    """Feeds namespace, Profile and marker events to the process's :class:`Onboarder`. Each event is
    handled in a task of its own (an onboarding makes API calls: one slow namespace must not hold up
    the watch); the Onboarder serializes per namespace."""

    def __init__(self, rt: Runtime):
        def emit(outcome: Outcome) -> None:
            if outcome.featurestore and outcome.result in ("Created", "Existed"):
                reason = "Onboarded" if outcome.result == "Created" else "OnboardingSkipped"
                rt.events.post(outcome.featurestore, Event("Normal", reason, outcome.message))

        self.onboarder = Onboarder(rt.kube, rt.config, emit)
        self._tasks: set[asyncio.Task[Any]] = set()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def namespaces_listed(self, items: list[Obj]) -> None:
        names = {(o.get("metadata") or {}).get("name") for o in items}
        for gone in [n for n in self.onboarder.namespaces if n not in names]:
            self.namespace_event("DELETED", {"metadata": {"name": gone}})
        for obj in items:
            self.namespace_event("ADDED", obj)

    def namespace_event(self, event_type: str, obj: Obj) -> None:
        self._spawn(self.onboarder.namespace_event(event_type, obj))

    def profiles_listed(self, items: list[Obj]) -> None:
        names = {(o.get("metadata") or {}).get("name") for o in items}
        for gone in [n for n in self.onboarder.profiles if n not in names]:
            self.profile_event("DELETED", {"metadata": {"name": gone}})
        for obj in items:
            self.profile_event("ADDED", obj)

    def profile_event(self, event_type: str, obj: Obj) -> None:
        self._spawn(self.onboarder.profile_event(event_type, obj))

    def marker_event(self, event_type: str, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        if event_type == "DELETED" and meta.get("name") == MARKER and meta.get("namespace"):
            self._spawn(self.onboarder.marker_deleted(meta["namespace"]))


class OptionalCrds:
    """PodDefault/AuthorizationPolicy/Profile CRDs added, established or removed: rediscover and
    reconcile every FeatureStore, so the Kubeflow condition, the objects and the watches follow at once."""

    def __init__(self, rt: Runtime):
        self.rt = rt
        self.seen: dict[str, bool] | None = None

    def listed(self, items: list[Obj]) -> None:
        seen = {_meta_name(o): _established(o) for o in items if _optional(o)}
        if self.seen is not None and seen != self.seen:  # changed while not watching
            self._changed("relisted")
        self.seen = seen

    def event(self, event_type: str, obj: Obj) -> None:
        if not _optional(obj):
            return
        if self.seen is not None:
            if event_type == "DELETED":
                self.seen.pop(_meta_name(obj), None)
            else:
                self.seen[_meta_name(obj)] = _established(obj)
        log.info("optional CRD %s changed (%s): rediscovering API versions", _meta_name(obj), event_type)
        self._changed(event_type)

    def _changed(self, why: str) -> None:
        self.rt.rediscover()
        # Again a little later: a CRD is Established a moment before discovery lists its kind.
        asyncio.get_running_loop().call_later(REDISCOVER_AFTER, self.rt.rediscover)


def _meta_name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name"))


def _optional(obj: Obj) -> bool:
    return (obj.get("spec") or {}).get("group") in OPTIONAL_CRD_GROUPS


def _established(obj: Obj) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def _slim_crd(obj: Obj) -> Obj:
    """What the CRD feed reads of a CRD (its schemas can be large): name, group, Established."""
    return {
        "metadata": {"name": _meta_name(obj)},
        "spec": {"group": (obj.get("spec") or {}).get("group")},
        "status": {
            "conditions": [
                c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == "Established"
            ]
        },
    }


def feeds(rt: Runtime, config: OperatorConfig) -> list[Feed]:
    """The feeds this configuration needs."""
    crds = OptionalCrds(rt)
    out = [Feed("CustomResourceDefinition", None, crds.listed, crds.event, api_version=CRD_VERSION, each=_slim_crd)]
    if not config.onboarding_enabled:
        return out
    onboarding = Onboarding(rt)
    out += [
        Feed("Namespace", None, onboarding.namespaces_listed, onboarding.namespace_event, api_version="v1"),
        # api_version None: once discovery finds Profiles served (the CRD may come later)
        Feed("Profile", None, onboarding.profiles_listed, onboarding.profile_event),
    ]
    scopes: list[str | None] = [*config.namespaces] or [None]
    out += [
        Feed("ConfigMap", ns, lambda items: None, onboarding.marker_event, {MARKER_LABEL: "true"}, api_version="v1")
        for ns in scopes
    ]
    return out
