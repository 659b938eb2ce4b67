"""One level-triggered reconcile pass over one FeatureStore:

    run_pass:  parse -> policy verdict -> finalizer -> reconcile -> write status (the raw body ends here)
    reconcile: observe -> backends -> desired (pure render) -> apply -> status (typed in, status out)

Idempotent: the same FeatureStore and cluster state give the same writes, and an unchanged
FeatureStore gives none (the applier skips objects that are as we left them; status is patched
only when it changed). Used for create, update, resume and resync alike.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import InitVar, dataclass, field
from typing import Any

from ..api import ConditionType as T
from ..api import FeatureStore, FeatureStoreStatus, OperatorConfig, SpecError
from ..api.bounds import namespace_quota
from ..api.resource import API_VERSION, FINALIZER
from ..api.review import resolved
from ..backends import policy
from ..backends.base import BackendContext
from ..render import NotebookAccess
from ..runtime.cache import ObservedCache
from ..runtime.discovery import Discovery
from ..runtime.events import Event
from ..runtime.kube import Kube
from . import conditions as cond
from . import records
from .applier import Applier, ApplyFailure
from .desired import Desired, desired, secret_names
from .events import transitions
from .freshness import observe_freshness
from .gitref import observe_resolution
from .observe import observe_notebooks, observe_repo, secret_reader, service_account_reader
from .outcomes import BackendResults, BackendSet, all_backends, ensure_backends
from .secrets import secret_inputs
from .status import Seen, build_parts, next_status

log = logging.getLogger(__name__)
Emit = Callable[[Event], None]


@dataclass
class Deps:
    kube: Kube
    cache: ObservedCache
    discovery: Discovery
    config: OperatorConfig
    backends: BackendSet
    emit: Emit = lambda event: None
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    #: (creationTimestamp, name) of every FeatureStore of a namespace the operator knows (admin policy
    #: maxStoresPerNamespace); the runtime passes its workers' bodies
    stores: Callable[[str], list[tuple[str, str]]] = lambda namespace: []
    #: name -> spec.kubeflow.defaultStore of every FeatureStore of a namespace (render.kubeflow.default_store)
    default_marks: Callable[[str], dict[str, bool | None]] = lambda namespace: {}
    #: uids of stores whose clean-up record is known to be in place (one per process, shared by passes)
    recorded: set[str] = field(default_factory=set)
    #: one per process (it remembers refused objects across passes); made from kube+cache if absent
    shared_applier: InitVar[Applier | None] = None
    applier: Applier = field(init=False)

    def __post_init__(self, shared_applier: Applier | None) -> None:
        self.applier = shared_applier or Applier(self.kube, self.cache)


@dataclass(frozen=True)
class Result:
    #: seconds until the next pass is useful (None: only on change or resync)
    requeue_after: float | None
    phase: str | None = None


def rfc3339(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse(body: dict[str, Any], config: OperatorConfig) -> FeatureStore:
    """The FeatureStore with its spec resolved against the operator's defaults (raises SpecError,
    also for a spec over the admin policy's maxSpecBytes or one the operator dropped for its size)."""
    return resolved(body, config)


async def write_status(deps: Deps, body: dict[str, Any], status: FeatureStoreStatus) -> None:
    """Patch status when it changed; ``body`` is updated with the answer."""
    new = status.model_dump(mode="json", by_alias=True)
    current = FeatureStoreStatus.model_validate(body.get("status") or {}).model_dump(mode="json", by_alias=True)
    if new == current:
        return
    m = body["metadata"]
    result = await deps.kube.patch_status("FeatureStore", API_VERSION, m["namespace"], m["name"], {"status": new})
    body["status"] = result.get("status", new)
    m["resourceVersion"] = result["metadata"]["resourceVersion"]


async def ensure_finalizer(deps: Deps, fs: FeatureStore, body: dict[str, Any]) -> bool:
    """Cloud resources are created only under our finalizer, so a crash right after a create and a
    deletion while the operator is down cannot orphan them. Only stores whose backends need cleanup
    get it. False: not added (the object changed since it was read; the next pass sees the new one).

    A DELETE racing the patch can still remove the object with the finalizer just added
    (kube-apiserver checks finalizers on the object it read, not again when it deletes): the store
    is read once more before anything is created, and a store that vanishes anyway is cleaned up by
    ``finalize.clean_up_vanished``, from the record written first (``records.record_for``: in the
    operator's own namespace, where tenants cannot write)."""
    meta = body["metadata"]
    if not any(b.needs_cleanup(fs) for _, b in all_backends(deps.backends, fs)):
        return True
    if FINALIZER in (meta.get("finalizers") or []):
        await _ensure_record(deps, body)
        return True
    await deps.kube.create(records.record_for(body, deps.config.records_namespace))  # None: already there
    deps.recorded.add(meta["uid"])
    result = await deps.kube.patch_guarded(
        body, {"metadata": {"finalizers": [*(meta.get("finalizers") or []), FINALIZER]}}
    )
    if result is None:
        return False
    meta["finalizers"] = result["metadata"].get("finalizers")
    meta["resourceVersion"] = result["metadata"]["resourceVersion"]
    return await deps.kube.get("FeatureStore", API_VERSION, meta["namespace"], meta["name"]) is not None


async def _ensure_record(deps: Deps, body: dict[str, Any]) -> None:
    """The clean-up record of a store that already has its finalizer, checked once per process: a store
    finalized by an earlier version has its record in its own namespace (where this version ignores
    records, ``records``) or none; found by the upgrade test with live stores
    (tests/controlplane/test_upgrade_live.py). A create (the chart grants no get there: answered 409,
    nothing written, when the record is in place)."""
    uid = body["metadata"]["uid"]
    if uid not in deps.recorded:
        await deps.kube.create(records.record_for(body, deps.config.records_namespace))  # None: already there
        deps.recorded.add(uid)


async def publish(
    deps: Deps, body: dict[str, Any], previous: FeatureStoreStatus, status: FeatureStoreStatus, parts: list[cond.Part]
) -> None:
    for event in transitions(previous, status, parts):
        deps.emit(event)
    await write_status(deps, body, status)


async def report_invalid(
    deps: Deps, body: dict[str, Any], previous: FeatureStoreStatus, err: SpecError, reason: str = "InvalidSpec"
) -> Result:
    """A spec the operator refuses (invalid, or against the admin policy): a condition naming each
    field; nothing is provisioned or changed."""
    generation = body["metadata"].get("generation")
    part = cond.Part(
        T.SPEC, "False", reason, f"{err}. Fix the FeatureStore and re-apply.", failed=True, event="Warning"
    )
    status = previous.model_copy(
        update={
            "observed_generation": generation,
            "phase": cond.Phase.FAILED,
            "conditions": cond.merge_conditions(previous.conditions, [part], generation, rfc3339(deps.now())),
        }
    )
    await publish(deps, body, previous, status, [part])
    return Result(None, "Failed")


async def apply_desired(deps: Deps, fs: FeatureStore, want: Desired, backends: BackendResults) -> list[ApplyFailure]:
    """Apply in the table's order (policies first); prune what the spec no longer asks for."""
    if want.hold:
        log.info(
            "%s/%s: keeping workloads as they are while %s",
            fs.metadata.namespace,
            fs.metadata.name,
            ", ".join(backends.waiting()),
        )
        return []
    failures = await deps.applier.apply_all(want.objects)
    if backends.ready and not failures:  # don't prune while a backend is merely pending or an apply failed
        for k in await deps.applier.prune(fs.metadata.namespace, fs.metadata.name, fs.metadata.uid or "", want.keep):
            log.info("pruned %s %s/%s", *k)
    return failures


def _runs(deps: Deps, fs: FeatureStore) -> list[dict[str, Any]]:
    """Jobs the materialization CronJob started (as watched)."""
    return [
        o
        for o in deps.cache.children(fs.metadata.namespace, fs.metadata.name)
        if o["kind"] == "Job" and any(r.get("kind") == "CronJob" for r in o["metadata"].get("ownerReferences", []))
    ]


def _quota(deps: Deps, fs: FeatureStore, body: dict[str, Any]) -> list[tuple[str, str]]:
    """maxStoresPerNamespace: the stores created before this one count (the earliest keep running)."""
    ns, name = fs.metadata.namespace, fs.metadata.name
    others = [s for s in deps.stores(ns) if s[1] != name]
    return namespace_quota(fs, body["metadata"].get("creationTimestamp") or "", others, deps.config.effective_policy)


async def run_pass(deps: Deps, body: dict[str, Any]) -> Result:
    """One pass over the FeatureStore ``body`` as read from the API: the boundary between the raw
    object and the typed pass. Parses it (a spec the operator refuses is reported), keeps the
    finalizer, runs :func:`reconcile` on the typed store and writes the status it returns (``body``
    is updated with what was written, for the runtime's records)."""
    previous = FeatureStoreStatus.model_validate(body.get("status") or {})
    try:
        fs = parse(body, deps.config)
    except SpecError as err:
        return await report_invalid(deps, body, previous, err)
    # the admin policy, again (the admission webhook may be down or bypassed): once per pass, the
    # verdict is handed to the backends
    verdict = policy.verdict(fs, deps.config)
    problems = [*verdict.problems, *_quota(deps, fs, body)]
    if problems:
        return await report_invalid(deps, body, previous, SpecError(problems), "PolicyViolation")
    if not await ensure_finalizer(deps, fs, body):
        return Result(1.0, previous.phase.value if previous.phase else None)
    done = await reconcile(
        deps, fs.model_copy(update={"status": previous}), verdict, lambda s: write_status(deps, body, s)
    )
    await publish(deps, body, previous, done.status, done.parts)
    return done.result


@dataclass(frozen=True)
class Pass:
    """What :func:`reconcile` decided: the new status (for the caller to write), the parts it is
    made of (for Events) and when to look again."""

    status: FeatureStoreStatus
    parts: list[cond.Part]
    result: Result


async def reconcile(
    deps: Deps, fs: FeatureStore, verdict: policy.Verdict, persist: Callable[[FeatureStoreStatus], Awaitable[None]]
) -> Pass:
    """observe -> backends -> desired -> apply -> status, for the typed, resolved store ``fs``
    (``fs.status``: the status as read) that the admin policy allows (``verdict``). Returns the new
    status; ``persist`` writes what a backend records mid-pass (an operation's name) at once."""
    previous = fs.status
    ns = fs.metadata.namespace
    versions = await deps.discovery.versions()
    owned = deps.cache.children(ns, fs.metadata.name)
    await deps.applier.refresh("Secret", "v1", ns, secret_names(fs, owned))  # Secrets are not watched
    repo_status = await observe_resolution(deps.kube, fs, owned, previous.feature_repo, rfc3339(deps.now()))
    repo = await observe_repo(deps.kube, fs, repo_status)
    ctx = BackendContext(
        config=deps.config,
        get_secret=secret_reader(deps.kube, deps.cache, ns),
        get_service_account=service_account_reader(deps.kube, ns),
        verdict=verdict,
    )
    backends = await ensure_backends(deps.backends, fs, ctx, previous, persist)
    fs = fs.model_copy(update={"status": backends.status})
    inputs = await secret_inputs(fs, backends, ctx, deps.now())

    def child(kind: str, name: str) -> dict[str, Any] | None:
        return deps.cache.objects.get((kind, ns, name))

    look = fs.spec.kubeflow.pod_default and "PodDefault" in versions.optional_kinds
    created = fs.metadata.creation_timestamp or ""
    notebooks = await observe_notebooks(deps.kube, fs, created, deps.stores(ns), deps.default_marks(ns), look)
    access = NotebookAccess(default=notebooks.default_store == fs.metadata.name)
    want = desired(fs, backends, repo, deps.config, versions, previous, inputs, child, access)
    failures = await apply_desired(deps, fs, want, backends)

    seen = Seen(
        fs=fs,
        previous=previous,
        backends=backends,
        repo=repo,
        desired=want,
        failures=failures,
        versions=versions,
        istio=deps.config.istio,
        child=child,
        runs=_runs(deps, fs),
        feast_version=deps.config.feast_version,
        compute_enabled=deps.config.compute_enabled,
        token_reviewers=bool(deps.config.token_reviewers_binding),
        notebooks=notebooks,
        repo_status=repo_status,
    )
    parts, mat_info = build_parts(seen)
    mat_info.update(await observe_freshness(deps.kube, fs, seen.runs, previous.materialization))
    status = next_status(seen, parts, mat_info, fs.metadata.generation, rfc3339(deps.now()))
    result = Result(_next_pass(backends, status, failures), status.phase.value if status.phase else None)
    return Pass(status, parts, result)


def _next_pass(backends: BackendResults, status: FeatureStoreStatus, failures: list[ApplyFailure]) -> float | None:
    wait = backends.retry_after()
    if wait is None and (status.phase != cond.Phase.READY or failures):
        wait = 15.0  # workloads converging or an object refused: look again soon (watch events usually come first)
    return wait
