"""Conditions and phase from backend outcomes and observed children. Pure (the clock is passed in)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ..api import Condition, ConditionType, FeatureStoreStatus, Phase
from ..backends.base import Failed, Pending, Ready
from ..render.kubeflow import store_config_env
from .applier import ApplyFailure
from .observe import PROFILE_LABEL, NotebookFacts, RepoMissing, RepoNotConfigured, RepoState

T = ConditionType
Status = Literal["True", "False", "Unknown"]
#: Parts whose readiness makes the store Ready. Kubeflow is an optional integration: it is
#: reported, but a cluster without Kubeflow (kind, plain GKE) still gets a Ready store.
READY_PARTS = [T.SPEC, T.ONLINE_STORE, T.OFFLINE_STORE, T.REGISTRY, T.FEATURE_SERVER, T.MATERIALIZATION, T.FEATURE_REPO]


@dataclass(frozen=True)
class Part:
    type: ConditionType
    status: Status
    reason: str
    message: str
    #: Failed for a reason only a spec/permission change fixes.
    failed: bool = False
    #: The Event type posted when the condition enters this state: "Warning" for a problem,
    #: "Normal" for an action worth a line in `kubectl describe` (a cloud operation started, a
    #: feature repo revision being applied); None for the progress every creation and rollout
    #: goes through (the condition shows it; see core._emit_transitions).
    event: str | None = None


def from_outcome(type_: ConditionType, outcome: Any) -> Part:
    if isinstance(outcome, Ready):
        # a reason other than Ready is a warning that leaves the store serving
        return Part(
            type_,
            "True",
            outcome.reason,
            outcome.message or "ready",
            event=None if outcome.reason == "Ready" else "Warning",
        )
    if isinstance(outcome, Pending):
        return Part(type_, "False", outcome.reason, outcome.message, event="Normal")
    assert isinstance(outcome, Failed)
    return Part(type_, "False", outcome.reason, outcome.message, failed=not outcome.retryable, event="Warning")


def deployment_part(type_: ConditionType, dep: dict[str, Any] | None, want: int) -> Part:
    if dep is None:
        return Part(type_, "False", "NotCreated", "the Deployment does not exist yet")
    st = dep.get("status") or {}
    gen_ok = st.get("observedGeneration", 0) >= dep["metadata"].get("generation", 0)
    available = st.get("availableReplicas", 0) or 0
    need = 1 if want > 0 else 0
    if gen_ok and available >= need:
        return Part(type_, "True", "Available", f"{available} replica(s) available")
    for c in st.get("conditions") or []:
        if c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded":
            return Part(type_, "False", "ProgressDeadlineExceeded", c.get("message", ""), event="Warning")
    return Part(
        type_, "False", "Unavailable", f"{available} of {want} replica(s) available; waiting for pods to become ready"
    )


def statefulset_part(type_: ConditionType, sts: dict[str, Any] | None) -> Part:
    if sts is None:
        return Part(type_, "False", "NotCreated", "the Redis StatefulSet does not exist yet")
    ready = (sts.get("status") or {}).get("readyReplicas", 0) or 0
    if ready >= 1:
        return Part(type_, "True", "Ready", "in-cluster Redis is ready")
    return Part(type_, "False", "Unavailable", "waiting for the in-cluster Redis pod to become ready")


def job_state(job: dict[str, Any]) -> str:
    st = job.get("status") or {}
    for c in st.get("conditions") or []:
        if c.get("status") == "True" and c.get("type") in ("Complete", "Failed"):
            return "Succeeded" if c["type"] == "Complete" else "Failed"
    if st.get("succeeded"):
        return "Succeeded"
    return "Running"


def materialization_part(
    cron: dict[str, Any] | None, runs: list[dict[str, Any]], enabled: bool
) -> tuple[Part, dict[str, Any]]:
    """The Materialization part and the ``status.materialization`` fields (snake_case) it observed."""
    if not enabled:
        return Part(T.MATERIALIZATION, "True", "Disabled", "scheduled materialization is disabled"), {}
    if cron is None:
        return Part(T.MATERIALIZATION, "False", "NotCreated", "the materialization CronJob does not exist yet"), {}
    st = cron.get("status") or {}
    info: dict[str, Any] = {
        "last_schedule_time": st.get("lastScheduleTime"),
        "last_successful_time": st.get("lastSuccessfulTime"),
    }
    if not runs:
        return Part(T.MATERIALIZATION, "True", "Scheduled", f"schedule {cron['spec']['schedule']!r}, no run yet"), info
    last = max(runs, key=lambda j: (j["metadata"].get("creationTimestamp") or "", j["metadata"]["name"]))
    state = job_state(last)
    info.update(last_job=last["metadata"]["name"], last_result=state)
    if state == "Failed":
        return Part(
            T.MATERIALIZATION,
            "False",
            "LastRunFailed",
            f"Job {last['metadata']['name']} failed; see `kubectl logs job/{last['metadata']['name']}`",
            event="Warning",
        ), info
    return Part(
        T.MATERIALIZATION,
        "True",
        "Scheduled" if state == "Succeeded" else "Running",
        f"last run {last['metadata']['name']}: {state}",
    ), info


def feature_repo_part(repo: RepoState, job: dict[str, Any] | None, job_name: str | None, applied: str | None) -> Part:
    if isinstance(repo, RepoNotConfigured):
        return Part(T.FEATURE_REPO, "True", "NotConfigured", "no featureRepo: the registry is managed by its users")
    if isinstance(repo, RepoMissing):
        return Part(
            T.FEATURE_REPO,
            "False",
            f"{repo.kind}NotFound",
            f"{repo.field}: {repo.kind} {repo.name!r} not found in the FeatureStore's namespace; {repo.fix}",
            event="Warning",
        )
    if job is None or job_name is None:
        return Part(T.FEATURE_REPO, "False", "Pending", f"creating the feast apply Job for revision {repo.revision}")
    state = job_state(job)
    if state == "Succeeded":
        return Part(T.FEATURE_REPO, "True", "Applied", f"revision {repo.revision} applied by Job {job_name}")
    if state == "Failed":
        keep = f"; revision {applied} keeps serving" if applied and applied != repo.revision else ""
        return Part(
            T.FEATURE_REPO,
            "False",
            "ApplyFailed",
            f"feast apply of revision {repo.revision} failed (Job {job_name}){keep}; see `kubectl logs job/{job_name}`",
            event="Warning",
        )
    return Part(
        T.FEATURE_REPO, "False", "Applying", f"Job {job_name} is applying revision {repo.revision}", event="Normal"
    )


def kubeflow_part(
    pod_default: bool, istio: bool, optional_kinds: frozenset[str], notebooks: NotebookFacts, name: str
) -> Part:
    missing = []
    if pod_default and "PodDefault" not in optional_kinds:
        missing.append("PodDefault (kubeflow.org/v1alpha1): notebooks get no Feast config")
    if istio and "AuthorizationPolicy" not in optional_kinds:
        missing.append("AuthorizationPolicy (security.istio.io): feature server access is not restricted")
    if missing:
        return Part(
            T.KUBEFLOW,
            "False",
            "CRDNotInstalled",
            "not installed: " + "; ".join(missing) + ". Installing them later is picked up automatically.",
            event="Warning",
        )
    if pod_default and notebooks.profile is False:
        key, value = PROFILE_LABEL
        return Part(
            T.KUBEFLOW,
            "False",
            "NotAProfileNamespace",
            f"the namespace has no label {key}={value}: Kubeflow's PodDefault webhook does not act here, so "
            "notebooks get no Feast config; use a Kubeflow profile namespace (or label this one, as the "
            "profile controller does)",
            event="Warning",
        )
    return Part(
        T.KUBEFLOW, "True", "Configured", "PodDefault and access policy in place" + _default_note(notebooks, name)
    )


def _default_note(notebooks: NotebookFacts, name: str) -> str:
    env = store_config_env(name)
    if notebooks.default_store == name:
        return f"; the namespace's default store (FEAST_FS_YAML_FILE_PATH; also {env})"
    if notebooks.default_store:
        return f"; notebooks find it at ${env} ({notebooks.default_store} is the namespace's default store)"
    return f"; notebooks find it at ${env} (the namespace has no default store: set spec.kubeflow.defaultStore)"


def synced_part(failures: list[ApplyFailure], declined: list[Part], waiting: list[str]) -> Part:
    """Whether the latest spec is fully in effect (Ready says whether the store serves)."""
    if failures:
        immutable = [f for f in failures if f.immutable]
        reason = "ImmutableFieldChanged" if immutable and len(immutable) == len(failures) else "ApplyFailed"
        fix = (
            "; the API server does not allow this change: revert it, or delete the object to have it re-created"
            if reason == "ImmutableFieldChanged"
            else ""
        )
        return Part(
            T.SYNCED,
            "False",
            reason,
            "the API server refused " + "; ".join(f.describe() for f in failures) + fix,
            event="Warning",
        )
    if declined:
        return Part(T.SYNCED, "False", declined[0].reason, f"{declined[0].type.value}: {declined[0].message}")
    if waiting:
        return Part(T.SYNCED, "False", "Waiting", "waiting for " + ", ".join(waiting))
    return Part(T.SYNCED, "True", "Synced", "the latest spec is applied")


def merge_conditions(previous: list[Condition], parts: list[Part], generation: int | None, now: str) -> list[Condition]:
    """Ready + parts, keeping lastTransitionTime when a condition's status did not change."""
    ready_parts = [p for p in parts if p.type in READY_PARTS]
    not_ready = [p for p in ready_parts if p.status != "True"]
    unsynced = next((p for p in parts if p.type == T.SYNCED and p.status != "True"), None)
    if not not_ready and unsynced is not None:
        ready = Part(T.READY, "True", "Ready", f"serving; the latest spec is not in effect: {unsynced.message}")
    elif not not_ready:
        ready = Part(T.READY, "True", "Ready", "all parts are ready")
    else:
        first = not_ready[0]
        more = f" (+{len(not_ready) - 1} more)" if len(not_ready) > 1 else ""
        ready = Part(T.READY, "False", first.reason, f"{first.type.value}: {first.message}{more}")
    prev = {c.type: c for c in previous}
    out = []
    for p in [ready, *parts]:
        old = prev.get(p.type.value)
        since = old.last_transition_time if old and old.status == p.status and old.last_transition_time else now
        out.append(
            Condition(
                type=p.type.value,
                status=p.status,
                reason=p.reason,
                message=p.message[:32768],
                last_transition_time=since,
                observed_generation=generation,
            )
        )
    return out


def phase(parts: list[Part], previous: FeatureStoreStatus) -> Phase:
    if any(p.failed for p in parts):
        return Phase.FAILED
    ready_parts = [p for p in parts if p.type in READY_PARTS]
    if all(p.status == "True" for p in ready_parts):
        return Phase.READY
    if previous.phase in (Phase.READY, Phase.DEGRADED):
        return Phase.DEGRADED
    return Phase.PROVISIONING
