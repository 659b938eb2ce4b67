"""Status: the parts (one condition each) from what the pass saw, and the next status. Pure."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ..api import ConditionType as T
from ..api import FeatureStore, FeatureStoreStatus
from ..render import ApiVersions, Endpoints, compute
from ..render.feast_config import FEATURE_SERVER_PORT, OFFLINE_SERVER_PORT, REGISTRY_SERVER_PORT, UI_PORT
from ..render.names import Names
from . import conditions as cond
from .applier import ApplyFailure
from .desired import Desired
from .observe import NotebookFacts, RepoRevision, RepoState
from .outcomes import BackendResults
from .token_reviewers import manual_grant_note

Child = Callable[[str, str], "dict[str, Any] | None"]  # (kind, name) -> observed object


@dataclass(frozen=True)
class Seen:
    """Everything one pass learned, for the status builders."""

    fs: FeatureStore
    previous: FeatureStoreStatus
    backends: BackendResults
    repo: RepoState
    desired: Desired
    failures: list[ApplyFailure]
    versions: ApiVersions
    istio: bool
    child: Child
    #: Jobs started by the materialization CronJob
    runs: list[dict[str, Any]]
    feast_version: str = ""
    compute_enabled: bool = False
    #: the operator manages the token reviewers binding (FSO_TOKEN_REVIEWERS_BINDING)
    token_reviewers: bool = False
    #: the namespace's default store and whether it is a Kubeflow profile namespace
    notebooks: NotebookFacts = NotebookFacts(None)


def _backend_parts(seen: Seen) -> dict[T, cond.Part]:
    parts = {t: cond.from_outcome(t, o) for t, o in seen.backends.outcomes.items()}
    names, spec = Names(seen.fs), seen.fs.spec
    if spec.online_store and spec.online_store.in_cluster and parts[T.ONLINE_STORE].status == "True":
        parts[T.ONLINE_STORE] = cond.statefulset_part(T.ONLINE_STORE, seen.child("StatefulSet", names.redis))
    return parts


def _registry_part(seen: Seen) -> cond.Part:
    offline = seen.backends.endpoints.offline
    path = offline.registry_path if offline else seen.previous.endpoints.registry
    server = seen.fs.spec.registry.server
    if not server.enabled:
        return cond.Part(T.REGISTRY, "True", "Ready", f"registry at {path}")
    reg = cond.deployment_part(T.REGISTRY, seen.child("Deployment", Names(seen.fs).registry_server), server.replicas)
    return cond.Part(T.REGISTRY, reg.status, reg.reason, f"{path} via registry server: {reg.message}", event=reg.event)


def _workload_parts(seen: Seen) -> tuple[dict[T, cond.Part], dict[str, Any]]:
    """Feature server, registry, materialization, feature repo: once the backends serve."""
    if not (seen.backends.ready or seen.desired.hold):
        waiting = "waiting for the online and offline stores"
        parts = {
            t: cond.Part(t, "False", "WaitingForBackends", waiting)
            for t in (T.FEATURE_SERVER, T.REGISTRY, T.MATERIALIZATION, T.FEATURE_REPO)
        }
        return parts, {}
    names, spec = Names(seen.fs), seen.fs.spec
    fsrv = spec.feature_server
    want = fsrv.autoscaling.min_replicas if fsrv.autoscaling else fsrv.replicas
    mat, mat_info = cond.materialization_part(
        seen.child("CronJob", names.materialize), seen.runs, spec.materialization.enabled
    )
    engine_problem = compute.problem(
        seen.fs, seen.backends.endpoints, seen.versions, seen.feast_version, seen.compute_enabled
    )
    if engine_problem and spec.materialization.enabled:
        mat = cond.Part(T.MATERIALIZATION, "False", "ComputeEngineUnavailable", engine_problem, event="Warning")
    job_name = seen.desired.apply_job or seen.previous.feature_repo.job
    job = seen.child("Job", job_name) if job_name else None
    server = cond.deployment_part(T.FEATURE_SERVER, seen.child("Deployment", names.feature_server), want)
    if seen.desired.tls_problem:
        reason, message = seen.desired.tls_problem
        server = cond.Part(T.FEATURE_SERVER, "False", reason, message, event="Warning")
    elif seen.desired.awaiting_first_apply:
        message = f"starts once the feast apply Job {job_name} has succeeded (it serves the applied registry)"
        server = cond.Part(T.FEATURE_SERVER, "False", "WaitingForFeatureRepo", message)
    note = manual_grant_note(seen.fs, seen.token_reviewers)
    if note and server.status == "True":
        server = replace(server, message=f"{server.message}; {note}")
    parts = {
        T.FEATURE_SERVER: server,
        T.REGISTRY: _registry_part(seen),
        T.MATERIALIZATION: mat,
        T.FEATURE_REPO: cond.feature_repo_part(seen.repo, job, job_name, seen.previous.feature_repo.applied_revision),
    }
    return parts, mat_info


def build_parts(seen: Seen) -> tuple[list[cond.Part], dict[str, Any]]:
    """Every part's condition (in a fixed order) and the materialization status fields."""
    parts = _backend_parts(seen)
    workload, mat_info = _workload_parts(seen)
    parts.update(workload)
    parts[T.KUBEFLOW] = cond.kubeflow_part(
        seen.fs.spec.kubeflow.pod_default,
        seen.istio,
        seen.versions.optional_kinds,
        seen.notebooks,
        seen.fs.metadata.name,
    )
    declined = [p for p in parts.values() if p.status == "True" and p.event == "Warning"]
    parts[T.SYNCED] = cond.synced_part(seen.failures, declined, seen.backends.waiting() if seen.desired.hold else [])
    order = [
        T.ONLINE_STORE,
        T.OFFLINE_STORE,
        T.REGISTRY,
        T.FEATURE_SERVER,
        T.MATERIALIZATION,
        T.FEATURE_REPO,
        T.KUBEFLOW,
        T.WORKLOAD_IDENTITY,
        T.SYNCED,
    ]
    return [parts[t] for t in order if t in parts], mat_info


def endpoint_status(fs: FeatureStore, endpoints: Endpoints, serving: bool) -> dict[str, Any]:
    names, spec = Names(fs), fs.spec

    def url(service: str, port: int, scheme: str = "") -> str:
        return f"{scheme}{names.svc_host(service)}:{port}"

    return {
        "online_store": endpoints.online.address if endpoints.online else None,
        "bucket": (endpoints.offline.bucket or endpoints.offline.claim) if endpoints.offline else None,
        "registry": endpoints.offline.registry_path if endpoints.offline else None,
        "feature_server": url(names.feature_server, FEATURE_SERVER_PORT, "http://") if serving else None,
        "registry_server": url(names.registry_server, REGISTRY_SERVER_PORT) if spec.registry.server.enabled else None,
        "offline_server": url(names.offline_server, OFFLINE_SERVER_PORT) if spec.offline_server.enabled else None,
        "ui": url(names.ui, UI_PORT, "http://") if spec.ui.enabled else None,
    }


def next_status(
    seen: Seen, parts: list[cond.Part], mat_info: dict[str, Any], generation: int | None, now: str
) -> FeatureStoreStatus:
    status = seen.backends.status
    previous = seen.previous
    repo = seen.repo
    job_name = seen.desired.apply_job
    job = seen.child("Job", job_name) if job_name else None
    applied = (
        repo.revision
        if isinstance(repo, RepoRevision) and job is not None and cond.job_state(job) == "Succeeded"
        else status.feature_repo.applied_revision
    )
    repo_status = status.feature_repo.model_copy(
        update={
            "revision": repo.revision if isinstance(repo, RepoRevision) else None,
            "job": job_name if job_name or not seen.desired.hold else status.feature_repo.job,
            "applied_revision": applied,
        }
    )
    serving = any(p.type == T.FEATURE_SERVER and p.status == "True" for p in parts)
    endpoints = (
        status.endpoints
        if seen.desired.hold
        else status.endpoints.model_copy(update=endpoint_status(seen.fs, seen.backends.endpoints, serving))
    )
    return status.model_copy(
        update={
            "observed_generation": generation,
            "phase": cond.phase(parts, previous),
            "conditions": cond.merge_conditions(previous.conditions, parts, generation, now),
            "endpoints": endpoints,
            "feature_repo": repo_status,
            "materialization": status.materialization.model_copy(update=mat_info),
            "config_hash": seen.desired.config_hash,
        }
    )
