"""Observe which commit a git feature repo's ref points to, from the reports of the store's resolver
Jobs (``render.gitref``: they run in the store's namespace; the operator never connects to the
repository), and the reapply token; as the next ``status.featureRepo`` (typed).

Trust: a report is hostile input. Only finished Jobs labelled for the store's current source, the
newest one and only when newer than the one read last (no replay of an older answer), controlled
pods of that Job, and a strictly parsed report (``gitref.parse_report``) count. A pinned commit
is never resolved; a tag is not moved unless ``followTags``. Error messages are the operator's own
text (naming the Secret and key to fix), never the pod's.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from ..api import FeatureStore
from ..api.status import FeatureRepoStatus
from ..render import gitref
from ..render.freshness import termination_message
from ..render.names import COMPONENT_LABEL
from ..runtime.kube import ApiError, Kube
from .conditions import job_state

log = logging.getLogger(__name__)

REAPPLY_ANNOTATION = "featurestore.kubeflow.org/reapply"
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,62}")  # fullmatch: "$" accepts a trailing newline
_CLEARED = {
    "ref": None,
    "resolved_ref": None,
    "resolved_commit": None,
    "resolved_at": None,
    "resolver_job": None,
    "resolver_job_time": None,
    "source": None,
    "last_resolution_error": None,
}


def reapply_token(fs: FeatureStore, previous: FeatureRepoStatus) -> str | None:
    """The reapply token in effect: the annotation's when it is a valid token, else the last one
    handled (removing the annotation re-applies nothing)."""
    value = fs.metadata.annotations.get(REAPPLY_ANNOTATION)
    if value is not None and _TOKEN.fullmatch(value):
        return value
    return previous.reapply_token


def error_message(fs: FeatureStore, code: str) -> str:
    git = fs.spec.feature_repo.git  # type: ignore[union-attr]
    assert git is not None
    secret = git.secret_ref.name if git.secret_ref else None
    ssh = not git.url.startswith("https://")
    key = "ssh-privatekey" if ssh else "token"
    if code == "auth" and secret:
        return (
            f"the git server refused the credentials in key {key!r} of Secret {secret!r} "
            "(spec.featureRepo.git.secretRef): put a valid one there"
        )
    if code == "auth":
        return (
            "the repository needs credentials: set spec.featureRepo.git.secretRef to a Secret with key "
            "token (https) or ssh-privatekey and known_hosts (ssh)"
        )
    if code == "hostkey":
        where = f"key 'known_hosts' of Secret {secret!r}" if secret else "a Secret's key known_hosts (secretRef)"
        return f"the git server's ssh host key is not listed in {where}: add the server's public host key there"
    if code == "notfound":
        return f"ref {git.ref!r} or the repository (spec.featureRepo.git.url) was not found"
    if code == "unreachable":
        return "the repository (spec.featureRepo.git.url) cannot be reached from the namespace (DNS, network or fence)"
    return "the resolver's report was not a commit of the ref: ignored"


def _newest_finished(children: list[dict[str, Any]], source: str) -> dict[str, Any] | None:
    jobs = [
        o
        for o in children
        if o["kind"] == "Job"
        and o["metadata"].get("labels", {}).get(COMPONENT_LABEL) == gitref.COMPONENT
        and o["metadata"].get("labels", {}).get(gitref.SOURCE_LABEL) == source
        and job_state(o) in ("Succeeded", "Failed")
    ]
    return max(jobs, key=lambda j: (j["metadata"].get("creationTimestamp") or "", j["metadata"]["name"]), default=None)


def _report(pods: list[dict[str, Any]], job_uid: str) -> str | None:
    for pod in pods:
        owners = pod["metadata"].get("ownerReferences") or []
        if any(o.get("uid") == job_uid and o.get("controller") for o in owners):
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                return termination_message(pod, gitref.CONTAINER)
    return None


async def _pods(kube: Kube, fs: FeatureStore, job: str) -> list[dict[str, Any]] | None:
    try:
        return await kube.list("Pod", "v1", fs.metadata.namespace, {"job-name": job})
    except ApiError as err:  # read again next pass
        log.warning("%s/%s: cannot read the pods of Job %s: %s", fs.metadata.namespace, fs.metadata.name, job, err)
        return None


def _accept(fs: FeatureStore, current: FeatureRepoStatus, report: gitref.Report | None, now: str) -> dict[str, Any]:
    if not isinstance(report, gitref.Resolved):
        code = report.error if report else "invalid"
        return {"last_resolution_error": error_message(fs, code)}
    git = fs.spec.feature_repo.git  # type: ignore[union-attr]
    assert git is not None
    if current.resolved_commit and gitref.is_tag(current.resolved_ref) and not git.follow_tags:
        return {"last_resolution_error": None}  # a tag stays where it was first resolved
    moved = report.commit != current.resolved_commit
    return {
        "resolved_ref": report.ref,
        "resolved_commit": report.commit,
        "resolved_at": now if moved else current.resolved_at,
        "last_resolution_error": None,
    }


async def observe_resolution(
    kube: Kube, fs: FeatureStore, children: list[dict[str, Any]], previous: FeatureRepoStatus, now: str
) -> FeatureRepoStatus:
    """``previous`` with the resolution fields and reapply token of this pass."""
    token = reapply_token(fs, previous)
    git = fs.spec.feature_repo.git if fs.spec.feature_repo else None
    if git is None:
        return previous.model_copy(update={**_CLEARED, "reapply_token": token})
    source = gitref.source_hash(fs)
    current = previous if previous.source == source else previous.model_copy(update=_CLEARED)
    update: dict[str, Any] = {"ref": git.ref, "source": source, "reapply_token": token}
    if gitref.is_commit(git.ref):  # pinned: never resolved
        at = current.resolved_at if current.resolved_commit == git.ref else now
        return current.model_copy(
            update={**update, "resolved_ref": git.ref, "resolved_commit": git.ref, "resolved_at": at}
        )
    job = _newest_finished(children, source)
    if job is None or job["metadata"]["name"] == current.resolver_job:
        return current.model_copy(update=update)
    created = job["metadata"].get("creationTimestamp") or ""
    if current.resolver_job_time and created < current.resolver_job_time:
        return current.model_copy(update=update)  # older than the report already read: a replay
    pods = await _pods(kube, fs, job["metadata"]["name"])
    if pods is None:
        return current.model_copy(update=update)
    report = gitref.parse_report(_report(pods, job["metadata"].get("uid", "")), git.ref)
    update.update({"resolver_job": job["metadata"]["name"], "resolver_job_time": created})
    update.update(_accept(fs, current, report, now))
    return current.model_copy(update=update)
