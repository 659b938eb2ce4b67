"""kopf wiring of the Kubeflow integration: profile onboarding and optional CRDs installed later.

Registered by :func:`register` at start-up rather than at import, so that with onboarding off
(the default) the operator does not watch namespaces, Profiles or RBAC objects at all and needs
no RBAC for them. The decisions live in :mod:`..reconcile.onboarding`.

Watches (onboarding on):
  * namespaces (all; decided client-side: label, Profile, opt-out) - the initial listing at
    start-up is the "resume": every existing profile namespace is checked again;
  * Profiles (kubeflow.org/v1; kopf starts watching once the CRD exists);
  * the onboarding marker ConfigMaps (deleting one re-onboards its namespace);
  * the shared online store's source Secret, when the template has one (copies follow it).
Always: CustomResourceDefinitions of the optional Kubeflow/Istio kinds, so that installing (or
removing) PodDefault/AuthorizationPolicy is picked up at once rather than at the next discovery
refresh; the operator's own watches of PodDefaults and AuthorizationPolicies (runtime.watches)
start as soon as discovery finds them served. Onboarding does not depend on the Profile watch:
Kubeflow labels every profile namespace, and namespaces are always watched.

The marker ConfigMaps and the shared Secret are selected server-side (kopf's
``settings.watching`` selectors): the operator never lists the cluster's other ConfigMaps/Secrets.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from ..api import OperatorConfig
from ..reconcile.onboarding import MARKER, MARKER_LABEL, Onboarder, Outcome
from ..runtime.events import Event
from .runtime import Runtime

log = logging.getLogger(__name__)
OPTIONAL_CRD_GROUPS = {"kubeflow.org", "security.istio.io"}
#: A CRD is Established a moment before discovery lists its kind: look again after this delay.
REDISCOVER_AFTER = 5.0


#: The process's Onboarder. Not on the memo: kopf hands every object a shallow copy of the memo,
#: so an attribute set while handling one object would not be seen while handling another.
_ONBOARDER: list[Onboarder] = []


def _onboarder(memo: Runtime) -> Onboarder:
    if not _ONBOARDER:

        def emit(outcome: Outcome) -> None:
            if outcome.featurestore and outcome.result in ("Created", "Existed"):
                reason = "Onboarded" if outcome.result == "Created" else "OnboardingSkipped"
                memo.events.post(outcome.featurestore, Event("Normal", reason, outcome.message))

        _ONBOARDER.append(Onboarder(memo.kube, memo.config, emit))
    return _ONBOARDER[0]


async def namespace_event(event: kopf.RawEvent, memo: Runtime, **_: Any) -> None:
    await _onboarder(memo).namespace_event(event.get("type"), dict(event["object"]))


async def profile_event(event: kopf.RawEvent, memo: Runtime, **_: Any) -> None:
    await _onboarder(memo).profile_event(event.get("type"), dict(event["object"]))


async def marker_event(event: kopf.RawEvent, meta: kopf.Meta, memo: Runtime, **_: Any) -> None:
    if event.get("type") == "DELETED" and meta.get("name") == MARKER:
        await _onboarder(memo).marker_deleted(meta["namespace"])


async def optional_crd_event(event: kopf.RawEvent, body: kopf.Body, memo: Runtime, **_: Any) -> None:
    """PodDefault/AuthorizationPolicy (or Profile) CRD added, established or removed: rediscover and
    reconcile every FeatureStore, so the Kubeflow condition and the objects follow at once."""
    if event.get("type") is None:
        return  # the initial listing: discovery at start-up saw these already
    log.info(
        "optional CRD %s changed (%s): rediscovering API versions", body.get("metadata", {}).get("name"), event["type"]
    )
    memo.rediscover()
    # Again a little later, without holding up this handler (kopf handles a CRD's events in order).
    asyncio.get_running_loop().call_later(REDISCOVER_AFTER, memo.rediscover)


def _is_optional_crd(body: kopf.Body, **_: Any) -> bool:
    return (body.get("spec") or {}).get("group") in OPTIONAL_CRD_GROUPS


def register(config: OperatorConfig) -> None:
    """Register the handlers this configuration needs on kopf's default registry."""
    kopf.on.event(
        "apiextensions.k8s.io", "customresourcedefinitions", when=_is_optional_crd, id="kubeflow-optional-crds"
    )(optional_crd_event)
    if not config.onboarding_enabled:
        return
    kopf.on.event("namespaces", id="onboarding-namespaces")(namespace_event)
    kopf.on.event("kubeflow.org", "v1", "profiles", id="onboarding-profiles")(profile_event)
    kopf.on.event("v1", "configmaps", labels={MARKER_LABEL: "true"}, id="onboarding-marker")(marker_event)
    # the shared online store's Secret is read by name (reconcile.onboarding.follow_shared_secret):
    # the operator may not list or watch Secrets


def server_side_selectors(settings: kopf.OperatorSettings, config: OperatorConfig) -> None:
    """Only the objects onboarding reads are sent by the API server (kopf's handler filters above
    stay as a second check)."""
    settings.watching.label_selectors["v1", "configmaps"] = f"{MARKER_LABEL}=true"
