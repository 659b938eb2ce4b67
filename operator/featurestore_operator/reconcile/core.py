"""One level-triggered reconcile pass: observe -> ensure backends -> render -> apply -> prune -> status.

Idempotent: the same FeatureStore and cluster state give the same writes, and an unchanged
FeatureStore gives none (the applier skips objects that are as we left them; status is patched
only when it changed). Used for create, update, resume and resync alike.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from ..api import FeatureStore, FeatureStoreStatus, OperatorConfig, SpecError, parse_featurestore, resolve
from ..api import ConditionType as T
from ..api.resource import API_VERSION, FINALIZER
from ..backends.base import Backend, BackendContext, Failed, Pending, Ready
from ..render import Endpoints, RepoSource, render
from ..render.names import Names, meta
from . import conditions as cond
from .applier import Applier, ObservedCache
from .discovery import Discovery
from .kinds import KINDS, key
from .kube import Kube

log = logging.getLogger(__name__)
Emit = Callable[[str, str, str], None]  # (type Normal|Warning, reason, message)


class BackendSet(Protocol):
    def online(self, fs: FeatureStore) -> Backend[Any]: ...
    def offline(self, fs: FeatureStore) -> Backend[Any]: ...
    def extra(self, fs: FeatureStore) -> list[tuple[T, Backend[Any]]]: ...


@dataclass
class Deps:
    kube: Kube
    cache: ObservedCache
    discovery: Discovery
    config: OperatorConfig
    backends: BackendSet
    emit: Emit = lambda type_, reason, message: None
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc)
    applier: Applier = field(init=False)

    def __post_init__(self) -> None:
        self.applier = Applier(self.kube, self.cache)


@dataclass(frozen=True)
class Result:
    #: seconds until the next pass is useful (None: only on change or resync)
    requeue_after: float | None
    phase: str | None = None


def _rfc3339(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


async def _write_status(deps: Deps, body: dict[str, Any], status: FeatureStoreStatus) -> None:
    new = status.model_dump(mode="json", by_alias=True)
    current = FeatureStoreStatus.model_validate(body.get("status") or {}).model_dump(mode="json", by_alias=True)
    if new == current:
        return
    m = body["metadata"]
    result = await deps.kube.patch_status(
        KINDS["FeatureStore"], API_VERSION, m["namespace"], m["name"], {"status": new}
    )
    body["status"] = result.get("status", new)  # later writes in this pass compare against it
    body["metadata"]["resourceVersion"] = result["metadata"]["resourceVersion"]


def _merge_status(status: FeatureStoreStatus, update: dict[str, Any]) -> FeatureStoreStatus:
    if not update:
        return status
    data = status.model_dump(mode="json", by_alias=True)
    for k, v in update.items():
        if isinstance(v, dict) and isinstance(data.get(k), dict):
            data[k] = {**data[k], **v}
        else:
            data[k] = v
    return FeatureStoreStatus.model_validate(data)


def _emit_transitions(
    deps: Deps, before: FeatureStoreStatus, after: FeatureStoreStatus, parts: list[cond.Part]
) -> None:
    """Events for what a user should see in `kubectl describe`, not for every step of a creation:

    - a part entering a state that carries an Event (``Part.event``: a problem, or an action
      such as a Memorystore operation), as ``<Condition><Reason>``;
    - a part outside the Ready set (Kubeflow, WorkloadIdentity) coming back to True;
    - the store becoming Ready (Normal ``Ready``) and a Ready store leaving it (``NotReady``,
      Warning when a part has a problem).

    A creation that goes well posts one Event (Ready); each Event is a write to the API server."""
    old = {c.type: c for c in before.conditions}
    for p in parts:
        prev = old.get(p.type.value)
        entered = prev is None or prev.status != p.status or prev.reason != p.reason
        reason = f"{p.type.value}{p.reason}" if p.type.value != p.reason else p.reason
        if entered and p.event:
            deps.emit(p.event, reason, p.message)
        elif p.status == "True" and prev is not None and prev.status != "True" and p.type not in cond.READY_PARTS:
            deps.emit("Normal", reason, p.message)
    was = old.get(T.READY.value)
    now = next((c for c in after.conditions if c.type == T.READY.value), None)
    if now is None:
        return
    if now.status == "True" and (was is None or was.status != "True"):
        deps.emit("Normal", "Ready", now.message)
    elif now.status != "True" and was is not None and was.status == "True":
        problem = any(p.event == "Warning" or p.failed for p in parts)
        deps.emit("Warning" if problem else "Normal", "NotReady", now.message)


async def _repo_revision(deps: Deps, fs: FeatureStore) -> RepoSource | None:
    repo = fs.spec.feature_repo
    if repo is None:
        return None
    if repo.git:
        if (
            repo.git.secret_ref
            and await deps.kube.get("Secret", "v1", fs.metadata.namespace, repo.git.secret_ref.name) is None
        ):
            return None  # no apply Job without its credentials: reported as SecretNotFound
        ident = json.dumps(repo.git.wire(), sort_keys=True)
        return RepoSource(hashlib.sha256(ident.encode()).hexdigest()[:16])
    assert repo.config_map is not None
    cm = await deps.kube.get("ConfigMap", "v1", fs.metadata.namespace, repo.config_map.name)
    if cm is None:
        return None
    content = json.dumps({"data": cm.get("data") or {}, "binaryData": cm.get("binaryData") or {}}, sort_keys=True)
    return RepoSource(hashlib.sha256(content.encode()).hexdigest()[:16])


def _secret_object(fs: FeatureStore, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta(fs, Names(fs).online_secret, "online-store"),
        "type": "Opaque",
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in sorted(data.items())},
    }


def _secret_reader(deps: Deps, namespace: str) -> Callable[[str], Any]:
    async def get_secret(name: str) -> dict[str, str] | None:
        ref = ("Secret", namespace, name)
        cached = deps.cache.objects.get(ref)
        if cached is not None and ref in deps.cache.applied:  # ours, as applied/watched: no GET needed
            return {k: base64.b64decode(v).decode() for k, v in (cached.get("data") or {}).items()}
        return await deps.kube.get_secret(namespace, name)

    return get_secret


async def _guard_cleanup(deps: Deps, fs: FeatureStore, body: dict[str, Any]) -> bool:
    """Cloud resources are created only under our finalizer. kopf adds it too, but only after it has
    spawned the worker, so the first pass could create a Memorystore instance before the finalizer
    lands; a crash there plus a deletion while the operator is down would orphan the instance. So a
    store whose backends need cleanup gets the finalizer here first. False: not added yet (the object
    changed since it was read; the next pass, a moment later, sees the new version)."""
    meta = body["metadata"]
    if FINALIZER in (meta.get("finalizers") or []):
        return True
    backends = [deps.backends.online(fs), deps.backends.offline(fs), *[b for _, b in deps.backends.extra(fs)]]
    if not any(b.needs_cleanup(fs) for b in backends):
        return True
    result = await deps.kube.add_finalizer(KINDS["FeatureStore"], API_VERSION, body, FINALIZER)
    if result is None:
        return False
    meta["finalizers"] = result["metadata"].get("finalizers")
    meta["resourceVersion"] = result["metadata"]["resourceVersion"]
    return True


async def reconcile(deps: Deps, body: dict[str, Any]) -> Result:
    """One pass over one FeatureStore ``body`` (a dict as read from the API; updated in place
    with the status written)."""
    now = _rfc3339(deps.now())
    previous = FeatureStoreStatus.model_validate(body.get("status") or {})
    generation = body["metadata"].get("generation")

    # -- observe and validate ----------------------------------------------------------------
    try:
        fs = parse_featurestore(body)
        fs = fs.model_copy(update={"spec": resolve(fs.spec, deps.config)})
    except SpecError as err:
        part = cond.Part(
            T.SPEC, "False", "InvalidSpec", f"{err}. Fix the FeatureStore and re-apply.", failed=True, event="Warning"
        )
        status = previous.model_copy(
            update={
                "observed_generation": generation,
                "phase": cond.Phase.FAILED,
                "conditions": cond.merge_conditions(previous.conditions, [part], generation, now),
            }
        )
        _emit_transitions(deps, previous, status, [part])
        await _write_status(deps, body, status)
        return Result(None, "Failed")

    ns, name = fs.metadata.namespace, fs.metadata.name
    if not await _guard_cleanup(deps, fs, body):
        return Result(1.0, previous.phase.value if previous.phase else None)
    versions = await deps.discovery.versions()
    ctx = BackendContext(config=deps.config, get_secret=_secret_reader(deps, ns))
    status = previous

    # -- backends ----------------------------------------------------------------------------
    outcomes: dict[T, Any] = {}
    for type_, backend in [
        (T.ONLINE_STORE, deps.backends.online(fs)),
        (T.OFFLINE_STORE, deps.backends.offline(fs)),
        *deps.backends.extra(fs),
    ]:
        try:
            outcome = await backend.ensure(fs, ctx)
        except Exception as err:  # a backend bug must not take the operator down
            log.exception("backend %s failed for %s/%s", type(backend).__name__, ns, name)
            outcome = Failed("BackendError", f"{type(backend).__name__}: {type(err).__name__}: {err}", retryable=True)
        outcomes[type_] = outcome
        if outcome.status:
            status = _merge_status(status, outcome.status)
            fs = fs.model_copy(update={"status": status})
            await _write_status(deps, body, status)  # persist operation names before anything else
    online, offline = outcomes[T.ONLINE_STORE], outcomes[T.OFFLINE_STORE]

    if isinstance(online, Ready) and online.secret:
        await deps.applier.apply(_secret_object(fs, online.secret))

    endpoints = Endpoints(
        online=online.endpoint if isinstance(online, Ready) else None,
        offline=offline.endpoint if isinstance(offline, Ready) else None,
    )
    repo = await _repo_revision(deps, fs)

    # -- render, apply, prune ----------------------------------------------------------------
    backends_ready = endpoints.online is not None and endpoints.offline is not None
    # A store that served before keeps its workloads and config untouched while a backend is in
    # transition (Memorystore maintenance, resize, repair): rewriting the config to "pending"
    # would take a working store down for a routine cloud event.
    hold = not backends_ready and previous.config_hash is not None and previous.endpoints.online_store is not None
    applied: dict[tuple[str, str, str], dict[str, Any]] = {}
    config_hash = previous.config_hash
    if hold:
        waiting = [f"{t.value} {o.reason}" for t, o in outcomes.items() if not isinstance(o, Ready)]
        log.info("%s/%s: keeping workloads as they are while %s", ns, name, ", ".join(waiting))
    else:
        rendered = render(fs, endpoints, deps.config, versions, repo)
        config_hash = rendered.config_hash
        keep = {key(o) for o in rendered.objects}
        if isinstance(online, Ready) and online.secret:
            keep.add(("Secret", ns, Names(fs).online_secret))
        for obj in rendered.objects:
            applied[key(obj)] = await deps.applier.apply(obj)
        if backends_ready:  # don't prune workloads while a backend is merely pending
            for k in await deps.applier.prune(ns, name, fs.metadata.uid or "", keep):
                log.info("pruned %s %s/%s", k[0], k[1], k[2])
    serving = backends_ready or hold

    # -- status --------------------------------------------------------------------------------
    names = Names(fs)
    spec = fs.spec

    def child(kind: str, n: str) -> dict[str, Any] | None:
        return deps.cache.objects.get((kind, ns, n)) or applied.get((kind, ns, n))

    parts = [cond.from_outcome(t, o) for t, o in outcomes.items()]
    online_part = parts[0]
    if spec.online_store.in_cluster and online_part.status == "True":
        parts[0] = cond.statefulset_part(T.ONLINE_STORE, child("StatefulSet", names.redis))
    want = (
        spec.feature_server.autoscaling.min_replicas
        if spec.feature_server.autoscaling
        else spec.feature_server.replicas
    )
    if serving:
        registry_path = endpoints.offline.registry_path if endpoints.offline else previous.endpoints.registry
        parts.append(cond.deployment_part(T.FEATURE_SERVER, child("Deployment", names.feature_server), want))
        if spec.registry.server.enabled:
            reg = cond.deployment_part(
                T.REGISTRY, child("Deployment", names.registry_server), spec.registry.server.replicas
            )
            parts.append(
                cond.Part(
                    T.REGISTRY,
                    reg.status,
                    reg.reason,
                    f"{registry_path} via registry server: {reg.message}",
                    event=reg.event,
                )
            )
        else:
            parts.append(cond.Part(T.REGISTRY, "True", "Ready", f"registry at {registry_path}"))
        runs = [
            o
            for o in deps.cache.children(ns, name)
            if o["kind"] == "Job" and any(r.get("kind") == "CronJob" for r in o["metadata"].get("ownerReferences", []))
        ]
        mat, mat_info = cond.materialization_part(
            child("CronJob", names.materialize), runs, spec.materialization.enabled
        )
        parts.append(mat)
        job = child("Job", names.apply_job(repo.revision)) if repo else None
        repo_part = cond.feature_repo_part(
            spec.feature_repo is not None, job, previous.feature_repo.applied_revision, repo.revision if repo else None
        )
        if (
            spec.feature_repo is not None
            and repo is None
            and spec.feature_repo.git
            and spec.feature_repo.git.secret_ref
        ):
            repo_part = cond.Part(
                T.FEATURE_REPO,
                "False",
                "SecretNotFound",
                f"spec.featureRepo.git.secretRef.name: Secret {spec.feature_repo.git.secret_ref.name!r} "
                f"not found in namespace {ns} (the FeatureStore's own namespace); create it with key "
                f"token (https) or ssh-privatekey (ssh)",
                event="Warning",
            )
        elif spec.feature_repo is not None and repo is None:
            repo_part = cond.Part(
                T.FEATURE_REPO,
                "False",
                "ConfigMapNotFound",
                f"spec.featureRepo.configMap.name: ConfigMap {spec.feature_repo.config_map.name!r} "
                f"not found in namespace {ns}; create it with the feature repo's files",
                event="Warning",
            )
        parts.append(repo_part)
    else:
        waiting = "waiting for the online and offline stores"
        parts += [
            cond.Part(t, "False", "WaitingForBackends", waiting)
            for t in (T.FEATURE_SERVER, T.REGISTRY, T.MATERIALIZATION, T.FEATURE_REPO)
        ]
        mat_info = {}
        job = None
    parts.append(_kubeflow_part(fs, versions, deps.config.istio))

    repo_status = status.feature_repo.model_copy(
        update={
            "revision": repo.revision if repo else None,
            "job": names.apply_job(repo.revision) if repo else None,
            "applied_revision": repo.revision
            if job is not None and cond.job_state(job) == "Succeeded"
            else status.feature_repo.applied_revision,
        }
    )
    new_status = status.model_copy(
        update={
            "observed_generation": generation,
            "phase": cond.phase(parts, previous),
            "conditions": cond.merge_conditions(previous.conditions, parts, generation, now),
            "endpoints": status.endpoints
            if hold
            else status.endpoints.model_copy(update=_endpoint_status(fs, endpoints)),
            "feature_repo": repo_status,
            "materialization": status.materialization.model_copy(update={_snake(k): v for k, v in mat_info.items()}),
            "config_hash": config_hash,
        }
    )
    _emit_transitions(deps, previous, new_status, parts)
    await _write_status(deps, body, new_status)

    waits = [o.retry_after for o in outcomes.values() if isinstance(o, (Pending, Failed))]
    if not waits and new_status.phase != cond.Phase.READY:
        waits.append(15.0)  # workloads converging: look again soon (watch events usually come first)
    return Result(min(waits) if waits else None, new_status.phase.value if new_status.phase else None)


def _snake(camel: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in camel)


def _endpoint_status(fs: FeatureStore, endpoints: Endpoints) -> dict[str, Any]:
    from ..render.feast_config import FEATURE_SERVER_PORT, OFFLINE_SERVER_PORT, REGISTRY_SERVER_PORT, UI_PORT

    names = Names(fs)
    spec = fs.spec
    out: dict[str, Any] = {
        "online_store": endpoints.online.address if endpoints.online else None,
        "bucket": (endpoints.offline.bucket or endpoints.offline.claim) if endpoints.offline else None,
        "registry": endpoints.offline.registry_path if endpoints.offline else None,
        "feature_server": f"http://{names.svc_host(names.feature_server)}:{FEATURE_SERVER_PORT}",
        "registry_server": f"{names.svc_host(names.registry_server)}:{REGISTRY_SERVER_PORT}"
        if spec.registry.server.enabled
        else None,
        "offline_server": f"{names.svc_host(names.offline_server)}:{OFFLINE_SERVER_PORT}"
        if spec.offline_server.enabled
        else None,
        "ui": f"http://{names.svc_host(names.ui)}:{UI_PORT}" if spec.ui.enabled else None,
    }
    return out


def _kubeflow_part(fs: FeatureStore, versions: Any, istio: bool) -> cond.Part:
    missing = []
    if fs.spec.kubeflow.pod_default and "PodDefault" not in versions.optional_kinds:
        missing.append("PodDefault (kubeflow.org/v1alpha1): notebooks get no Feast config")
    if istio and "AuthorizationPolicy" not in versions.optional_kinds:
        missing.append("AuthorizationPolicy (security.istio.io/v1beta1): feature server access is not restricted")
    if missing:
        return cond.Part(
            T.KUBEFLOW,
            "False",
            "CRDNotInstalled",
            "not installed: " + "; ".join(missing) + ". Installing them later is picked up automatically.",
            event="Warning",
        )
    return cond.Part(T.KUBEFLOW, "True", "Configured", "PodDefault and access policy in place")
