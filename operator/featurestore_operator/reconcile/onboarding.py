"""Kubeflow profile onboarding: a FeatureStore from the operator's template in every profile namespace.

Behaviour (the contract; handlers/profiles.py only feeds events in):

* A namespace is a candidate when it carries the onboarding label (default
  ``app.kubernetes.io/part-of=kubeflow-profile``, what Kubeflow's profile controller sets) or is the
  namespace of a Profile (``kubeflow.org/v1``; a Profile's namespace is its metadata.name) that owns it
  (:func:`profile_owns`: a Profile's name alone is no claim, any user may make one). It must exist and
  not be terminating; with FSO_NAMESPACES set it must be one of them.
* Opt-out: label or annotation ``featurestore.kubeflow.org/onboarding: disabled`` (also ``false``,
  ``off``, ``no``) on the namespace or on its Profile. Opting out later deletes nothing.
* Create-if-absent, once: the FeatureStore is created with a plain create (never apply/update), so
  an existing FeatureStore - the user's own, or an onboarded one the user edited - is never
  touched; 409 means "exists". It is annotated ``featurestore.kubeflow.org/onboarded-from:
  <template hash>``, so stores from an older template (or a user's own) can be told apart.
* Then a marker ConfigMap ``featurestore-onboarding`` records that the namespace was onboarded.
  While it exists the namespace is never onboarded again: a FeatureStore the user deleted stays
  deleted across operator restarts and template changes. Deleting the marker re-onboards the
  namespace (the operator watches the marker). A crash between create and marker is harmless:
  the retry's create answers 409 and the marker is written.
* Removing the label, deleting the Profile or changing the template deletes and changes nothing:
  a FeatureStore is user data once created. Template changes apply to namespaces onboarded later.
* Shared online store: the template's source Secret is copied (server-side apply, data only)
  into the namespace before the FeatureStore is created, owned (non-controller) by that
  FeatureStore so it goes with it, and re-copied when the source changes
  (:func:`sync_shared_secrets`), for every onboarded FeatureStore that still references the copy.
  "Onboarded" is the operator's own record, not anything a namespace editor can write (a
  FeatureStore's annotations and the marker ConfigMap are theirs to forge): a ConfigMap
  ``featurestore-onboarded-<namespace>`` in the source Secret's namespace (the admin's), holding
  the namespace and the name/uid of the FeatureStore the operator created there. The copy goes
  only to a FeatureStore that record names. One password = one trust domain: every onboarded
  profile can read the shared Redis (docs/security/index.md, "Admin policy and multi-tenancy").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..api import API_VERSION, OperatorConfig
from ..api.onboarding import ONBOARDED_FROM_ANNOTATION, OnboardingTemplate
from ..render.names import MANAGED_BY, MANAGED_BY_LABEL
from ..runtime.kube import ApiError, Kube

log = logging.getLogger(__name__)

MARKER = "featurestore-onboarding"
MARKER_LABEL = "featurestore.kubeflow.org/onboarding-marker"
SHARED_COPY_LABEL = "featurestore.kubeflow.org/shared-online-store-copy"
SOURCE_ANNOTATION = "featurestore.kubeflow.org/copied-from"
#: Label of the operator's records of onboarded stores (ConfigMaps in the shared Secret's namespace).
RECORD_LABEL = "featurestore.kubeflow.org/onboarded-record"
OPT_OUT_VALUES = {"disabled", "false", "off", "no"}


@dataclass(frozen=True)
class Verdict:
    onboard: bool
    reason: str


def _meta(obj: dict[str, Any] | None) -> dict[str, Any]:
    return (obj or {}).get("metadata") or {}


def _opted_out(obj: dict[str, Any] | None, key: str) -> bool:
    m = _meta(obj)
    values = [(m.get("labels") or {}).get(key), (m.get("annotations") or {}).get(key)]
    return any(v is not None and v.strip().lower() in OPT_OUT_VALUES for v in values)


def profile_owns(profile: dict[str, Any] | None, namespace: dict[str, Any]) -> bool:
    """Whether ``profile`` owns ``namespace`` the way Kubeflow's profile controller decides it: the namespace
    is controlled by that Profile (the controller's own namespaces), or its ``owner`` annotation is the
    Profile's ``spec.owner.name`` (kubeflow/dashboard profile_controller.go refuses any other existing
    namespace: "namespace already exist, but not owned by profile creator"). A Profile is named after its
    namespace and may be made by any user where the dashboard's registration flow is on: its name alone
    must never let the operator act in someone else's namespace (issue 25)."""
    if profile is None:
        return False
    uid = _meta(profile).get("uid")
    for ref in _meta(namespace).get("ownerReferences") or []:
        if ref.get("kind") == "Profile" and ref.get("controller") and uid and ref.get("uid") == uid:
            return True
    owner = ((profile.get("spec") or {}).get("owner") or {}).get("name")
    return isinstance(owner, str) and bool(owner) and (_meta(namespace).get("annotations") or {}).get("owner") == owner


def decide(config: OperatorConfig, namespace: dict[str, Any] | None, profile: dict[str, Any] | None) -> Verdict:
    """Whether a namespace (as last seen; None: not seen/absent) with its Profile (None: none) gets
    onboarded. Pure."""
    if not config.onboarding_enabled:
        return Verdict(False, "onboarding is disabled (FSO_ONBOARDING_ENABLED)")
    if namespace is None:
        return Verdict(False, "the namespace does not exist (yet)")
    m = _meta(namespace)
    name = m.get("name", "")
    if m.get("deletionTimestamp") or (namespace.get("status") or {}).get("phase") == "Terminating":
        return Verdict(False, "the namespace is terminating")
    if config.namespaces and name not in config.namespaces:
        return Verdict(False, "the namespace is not one the operator watches (FSO_NAMESPACES)")
    key, value = config.onboarding_label
    labelled = (m.get("labels") or {}).get(key) == value
    if not labelled and profile is None:
        return Verdict(False, f"neither labelled {key}={value} nor the namespace of a Profile")
    if not labelled and not profile_owns(profile, namespace):
        return Verdict(
            False,
            f"the Profile {name} does not own the namespace (neither its controller nor its spec.owner.name in the "
            f"namespace's owner annotation, as Kubeflow's profile controller requires); label the namespace "
            f"{key}={value} to onboard it",
        )
    opt_out = config.onboarding_opt_out_label
    if _opted_out(namespace, opt_out):
        return Verdict(False, f"opted out ({opt_out} on the namespace)")
    if _opted_out(profile, opt_out):
        return Verdict(False, f"opted out ({opt_out} on the Profile)")
    return Verdict(True, "labelled profile namespace" if labelled else "namespace of a Profile")


def marker(template: OnboardingTemplate, namespace: str, result: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": MARKER,
            "namespace": namespace,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY, MARKER_LABEL: "true"},
        },
        "data": {
            "featureStore": template.name,
            "templateHash": template.hash,
            "result": result,
            "README": "The featurestore-operator onboarded this namespace (Kubeflow profile onboarding) and will "
            "not create its FeatureStore again while this ConfigMap exists, even if the FeatureStore "
            "is deleted. Delete this ConfigMap to have it onboarded again.\n",
        },
    }


def shared_secret_copy(
    template: OnboardingTemplate, namespace: str, source: dict[str, Any], owner: dict[str, Any] | None
) -> dict[str, Any]:
    """The copy of the shared online store's Secret in a profile namespace (data only)."""
    assert template.shared_online_store is not None
    ref = template.shared_online_store.secret_ref
    meta: dict[str, Any] = {
        "name": template.shared_secret_name,
        "namespace": namespace,
        "labels": {MANAGED_BY_LABEL: MANAGED_BY, SHARED_COPY_LABEL: "true"},
        "annotations": {SOURCE_ANNOTATION: f"{ref.namespace}/{ref.name}"},
    }
    if owner is not None:
        # Not the controller: the FeatureStore's reconcile must neither adopt nor prune it.
        meta["ownerReferences"] = [
            {
                "apiVersion": API_VERSION,
                "kind": "FeatureStore",
                "name": _meta(owner)["name"],
                "uid": _meta(owner)["uid"],
            }
        ]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta,
        "type": "Opaque",
        "data": dict(source.get("data") or {}),
    }


def record_name(namespace: str) -> str:
    return f"featurestore-onboarded-{namespace}"


def onboarded_record(template: OnboardingTemplate, fs: dict[str, Any]) -> dict[str, Any]:
    """The operator's record that it created ``fs`` by onboarding: a ConfigMap in the shared Secret's
    namespace (the admin's, where namespace editors cannot write)."""
    assert template.shared_online_store is not None
    m = _meta(fs)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": record_name(m["namespace"]),
            "namespace": template.shared_online_store.secret_ref.namespace,
            "labels": {RECORD_LABEL: "true"},
        },
        "data": {"namespace": m["namespace"], "featureStore": m["name"], "uid": m["uid"]},
    }


async def onboarded_by_us(kube: Kube, template: OnboardingTemplate, fs: dict[str, Any]) -> bool:
    """Whether the operator itself onboarded exactly this FeatureStore (its record names it)."""
    assert template.shared_online_store is not None
    m = _meta(fs)
    record = await kube.get(
        "ConfigMap", "v1", template.shared_online_store.secret_ref.namespace, record_name(m.get("namespace", ""))
    )
    want = {"namespace": m.get("namespace"), "featureStore": m.get("name"), "uid": m.get("uid")}
    return record is not None and {k: (record.get("data") or {}).get(k) for k in want} == want


def references_shared_copy(template: OnboardingTemplate, fs: dict[str, Any]) -> bool:
    """An onboarded FeatureStore whose spec (still) uses the shared online store's copy."""
    if ONBOARDED_FROM_ANNOTATION not in (_meta(fs).get("annotations") or {}):
        return False
    ext = ((fs.get("spec") or {}).get("onlineStore") or {}).get("external") or {}
    return (ext.get("secretRef") or {}).get("name") == template.shared_secret_name


@dataclass(frozen=True)
class Outcome:
    #: Created | Existed | AlreadyOnboarded | Skipped
    result: str
    message: str
    featurestore: dict[str, Any] | None = None


def _gone(err: ApiError) -> bool:
    """The namespace vanished or is being deleted: nothing to onboard."""
    return err.gone or err.namespace_terminating


async def _source_secret(kube: Kube, template: OnboardingTemplate) -> dict[str, Any] | None:
    assert template.shared_online_store is not None
    ref = template.shared_online_store.secret_ref
    return await kube.get("Secret", "v1", ref.namespace, ref.name)


async def onboard(kube: Kube, config: OperatorConfig, namespace: str) -> Outcome:
    """Onboard one namespace that :func:`decide` accepted. Idempotent; safe to repeat."""
    template = config.onboarding_template
    try:
        if await kube.get("ConfigMap", "v1", namespace, MARKER) is not None:
            return Outcome("AlreadyOnboarded", f"namespace {namespace} was onboarded before (ConfigMap {MARKER})")
        source = await _source_secret(kube, template) if template.shared_online_store else None
        fs = await kube.get("FeatureStore", API_VERSION, namespace, template.name)
        copied = False
        if fs is None:
            if source is not None:  # before the store, so that its first reconcile finds the Secret
                await kube.apply(shared_secret_copy(template, namespace, source, None))
                copied = True
            elif template.shared_online_store:
                ref = template.shared_online_store.secret_ref
                log.warning(
                    "onboarding %s: shared online store Secret %s/%s not found; the FeatureStore reports it "
                    "until the Secret exists (it is copied then)",
                    namespace,
                    ref.namespace,
                    ref.name,
                )
            fs = await kube.create(template.manifest(namespace)) or await kube.get(
                "FeatureStore", API_VERSION, namespace, template.name
            )  # None: someone created it meanwhile
        # Ours if it carries the annotation: created now, or by an attempt that crashed before the marker.
        ours = fs is not None and ONBOARDED_FROM_ANNOTATION in (_meta(fs).get("annotations") or {})
        result = "Created" if ours else "Existed"
        if ours and fs is not None and template.shared_online_store:
            await kube.apply(onboarded_record(template, fs))
        if ours and source is not None and fs is not None and references_shared_copy(template, fs):
            await kube.apply(shared_secret_copy(template, namespace, source, fs))
        elif copied:  # the user's own store won the race: leave no stray credentials behind
            await kube.delete("Secret", "v1", namespace, template.shared_secret_name)
        await kube.apply(marker(template, namespace, result))
    except ApiError as err:
        if _gone(err):
            return Outcome("Skipped", f"namespace {namespace} is gone or terminating")
        raise
    if result == "Created":
        return Outcome(
            result, f"created FeatureStore {namespace}/{template.name} from the onboarding template {template.hash}", fs
        )
    return Outcome(result, f"FeatureStore {namespace}/{template.name} already exists; left as it is", fs)


async def sync_shared_secrets(kube: Kube, config: OperatorConfig) -> int:
    """Re-copy the shared online store's Secret to every onboarded FeatureStore that uses it (after
    the source changed, e.g. a rotated password). Returns how many copies were applied."""
    template = config.onboarding_template
    if not config.onboarding_enabled or template.shared_online_store is None:
        return 0
    source = await _source_secret(kube, template)
    if source is None:
        return 0
    count = 0
    stores: list[dict[str, Any]] = []
    scopes: list[str | None] = [*config.namespaces] or [None]
    for ns in scopes:  # a namespaced operator may not list cluster-wide
        stores += await kube.list("FeatureStore", API_VERSION, ns)
    for fs in stores:
        if references_shared_copy(template, fs) and await onboarded_by_us(kube, template, fs):
            try:
                await kube.apply(shared_secret_copy(template, _meta(fs)["namespace"], source, fs))
                count += 1
            except ApiError as err:
                if not _gone(err):
                    raise
    return count


#: seconds between reads of the shared online store's Secret: by name, as the operator may not
#: list or watch Secrets (a field selector does not narrow RBAC: the watch would need the right on all)
SHARED_SECRET_POLL = 10.0


async def follow_shared_secret(kube: Kube, config: OperatorConfig, poll: float = SHARED_SECRET_POLL) -> None:
    """Re-copy the shared online store's Secret whenever it changed (its resourceVersion moved), and
    once at start-up (a rotation while no operator ran). Runs until cancelled."""
    template = config.onboarding_template
    if not config.onboarding_enabled or template.shared_online_store is None:
        return
    seen: str | None = None
    while True:
        try:
            source = await _source_secret(kube, template)
            version = source["metadata"].get("resourceVersion") if source else None
            if version is not None and version != seen:
                count = await sync_shared_secrets(kube, config)
                seen = version
                if count:
                    log.info("shared online store Secret copied to %d onboarded namespaces", count)
        except Exception as err:  # noqa: BLE001 - the next read retries
            log.warning("copying the shared online store Secret failed: %s: %s", type(err).__name__, err)
        await asyncio.sleep(poll)


Emit = Callable[[Outcome], None]


@dataclass
class Onboarder:
    """The join of the namespace and Profile watches: namespaces and Profiles as last seen, and
    which namespaces are settled (onboarded, or left alone). One per operator process."""

    kube: Kube
    config: OperatorConfig
    emit: Emit = lambda outcome: None
    namespaces: dict[str, dict[str, Any]] = field(default_factory=dict)
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    settled: set[str] = field(default_factory=set)
    retry_delays: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    _retries: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    async def namespace_event(self, event_type: str | None, obj: dict[str, Any]) -> Outcome | None:
        name = _meta(obj).get("name", "")
        if event_type == "DELETED":
            self.namespaces.pop(name, None)
            self.settled.discard(name)
            return None
        self.namespaces[name] = _slim(obj)
        return await self.evaluate(name)

    async def profile_event(self, event_type: str | None, obj: dict[str, Any]) -> Outcome | None:
        name = _meta(obj).get("name", "")
        if event_type == "DELETED":
            self.profiles.pop(name, None)  # deleting a Profile deletes nothing of ours
            return None
        self.profiles[name] = _slim(obj)
        return await self.evaluate(name)

    async def marker_deleted(self, namespace: str) -> Outcome | None:
        """Someone deleted the marker: onboard the namespace again (if it still qualifies)."""
        self.settled.discard(namespace)
        return await self.evaluate(namespace)

    async def evaluate(self, namespace: str, attempt: int = 0) -> Outcome | None:
        if namespace in self.settled:
            return None
        verdict = decide(self.config, self.namespaces.get(namespace), self.profiles.get(namespace))
        if not verdict.onboard:
            log.debug("onboarding: %s skipped: %s", namespace, verdict.reason)
            return None
        async with self._locks.setdefault(namespace, asyncio.Lock()):
            if namespace in self.settled:
                return None
            try:
                outcome = await onboard(self.kube, self.config, namespace)
            except Exception as err:  # API hiccup, RBAC: retry with backoff, never crash the handler
                delay = self.retry_delays[min(attempt, len(self.retry_delays) - 1)]
                log.warning(
                    "onboarding %s failed (%s: %s); retrying in %.0fs", namespace, type(err).__name__, err, delay
                )
                self._schedule_retry(namespace, attempt + 1, delay)
                return None
            self.settled.add(namespace)
        log.info("onboarding %s: %s", namespace, outcome.message)
        self.emit(outcome)
        return outcome

    def _schedule_retry(self, namespace: str, attempt: int, delay: float) -> None:
        old = self._retries.get(namespace)
        if old is not None and not old.done():
            return

        async def later() -> None:
            await asyncio.sleep(delay)
            self._retries.pop(namespace, None)
            await self.evaluate(namespace, attempt)

        self._retries[namespace] = asyncio.get_running_loop().create_task(later())


def _slim(obj: dict[str, Any]) -> dict[str, Any]:
    """What :func:`decide` reads: name, uid, labels, annotations, owners, deletion, phase and a Profile's
    owner (not the whole body)."""
    m = _meta(obj)
    keys = ("name", "uid", "labels", "annotations", "ownerReferences", "deletionTimestamp")
    owner = ((obj.get("spec") or {}).get("owner") or {}).get("name")
    return {
        "metadata": {k: m.get(k) for k in keys if m.get(k) is not None},
        "status": {"phase": (obj.get("status") or {}).get("phase")},
        **({"spec": {"owner": {"name": owner}}} if isinstance(owner, str) else {}),
    }
