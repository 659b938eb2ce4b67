"""Resolving a git feature repo's ref to a commit, without the operator ever connecting to the
repository (its URL is tenant input: it could name the metadata server or an internal service).

A small resolver pod in the store's own namespace, under the store's ServiceAccount and fence, runs
``git ls-remote`` with the store's git credentials and reports the commit as its termination
message (as the materialization run reports freshness, ``render.freshness``):

    {"v": 1, "ref": "refs/heads/main", "commit": "<40 hex>"}      or      {"v": 1, "error": "auth"}

Two objects do it: a one-shot Job per source (url, ref, path, credentials), so a new store or a
changed ref is resolved at once, and a CronJob every ``pollMinutes`` (minute offset from the
store's uid: stores do not all poll at once). Neither is rendered for a pinned 40-hex commit, nor,
once a ref resolved to a tag, unless ``followTags``.

The pod runs in the tenant's namespace: its report is hostile input. :func:`parse_report` is
strict (bounded, one JSON line, a 40-hex commit, a ref name that is the spec's ref), and reconcile
reads only reports of Jobs labelled with the current source (``SOURCE_LABEL``) and newer than the
one read last. A forged report can at most name another commit of the store's own repository URL
(the apply Job fetches that commit from the spec's URL, by hash), which the same namespace editor
can do by setting ``ref`` to it: it can never reach another store, another URL, an object name or
a shell.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ..api import FeatureStore
from . import programs
from .hardening import container_security, empty_dir, needs_api_token, pod_security
from .inputs import ApiVersions, RepoSource
from .names import Names, labels, meta, short_hash

COMPONENT = "repo-resolver"
CONTAINER = "resolve"
#: Label on resolver Jobs (and the CronJob's job template): the source they resolve.
SOURCE_LABEL = "featurestore.kubeflow.org/repo-source"
MAX_REPORT = 1024
COMMIT = re.compile(r"[0-9a-f]{40}")  # fullmatch: "$" would accept a trailing newline
ERRORS = frozenset({"auth", "hostkey", "notfound", "unreachable"})

#: Credentials for git (both scripts): a token for https (as a credential helper reading the env,
#: so it is never in argv or a URL), or an ssh key checked against the Secret's known_hosts
#: (StrictHostKeyChecking=yes: an unknown or changed host key fails, never "accept").
GIT_AUTH = programs.source("git_auth.sh")

#: $1 url, $2 ref. Picks the ref the way `git fetch URL REF` does (the ref itself, refs/REF,
#: refs/tags/REF (peeled), refs/heads/REF) and writes one JSON line to the termination log.
RESOLVE_SCRIPT = "set -u\n" + GIT_AUTH + programs.source("git_resolve.sh")


@dataclass(frozen=True)
class Resolved:
    ref: str
    commit: str


@dataclass(frozen=True)
class Unresolved:
    error: str  # one of ERRORS


Report = Resolved | Unresolved


def is_commit(ref: str) -> bool:
    """A full commit hash: pinned, never resolved."""
    return bool(COMMIT.fullmatch(ref))


def is_tag(full_ref: str | None) -> bool:
    return bool(full_ref and full_ref.startswith("refs/tags/"))


def source_hash(fs: FeatureStore) -> str:
    """What one resolution belongs to: url, ref, path and credentials (not the poll settings)."""
    git = fs.spec.feature_repo.git if fs.spec.feature_repo else None
    if git is None:
        return ""
    ref = git.secret_ref.name if git.secret_ref else ""
    return short_hash(git.url, git.ref, git.path, ref, length=16)


def _ref_names(ref: str) -> set[str]:
    return {ref, f"refs/{ref}", f"refs/tags/{ref}", f"refs/heads/{ref}"}


def parse_report(message: str | None, ref: str) -> Report | None:
    """The report in a resolver pod's termination message for spec ref ``ref``; None when there is
    none or it is not one (bounded, strict: anything unexpected is dropped, never shown)."""
    if not message or len(message) > MAX_REPORT:
        return None
    try:
        doc = json.loads(message.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None
    if not isinstance(doc, dict) or doc.get("v") != 1:
        return None
    if set(doc) == {"v", "error"}:
        return Unresolved(doc["error"]) if doc["error"] in ERRORS else None
    commit, full = doc.get("commit"), doc.get("ref")
    if set(doc) != {"v", "ref", "commit"} or not isinstance(commit, str) or not isinstance(full, str):
        return None
    if not COMMIT.fullmatch(commit) or full not in _ref_names(ref):
        return None
    return Resolved(full, commit)


def jitter_schedule(fs: FeatureStore, minutes: int) -> str:
    """Every ``minutes`` at a per-store minute offset (from the uid). Up to 59 minutes: every N
    minutes within the hour; beyond: once every N//60 hours (rounded), at the offset minute."""
    seed = int(short_hash(fs.metadata.uid or fs.metadata.name, length=8), 16)
    if minutes < 60:
        return f"{seed % minutes}-59/{minutes} * * * *"
    hours = max(1, min(23, round(minutes / 60)))
    return f"{seed % 60} {seed % hours}-23/{hours} * * *" if hours > 1 else f"{seed % 60} * * * *"


def git_credentials(fs: FeatureStore) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(env, volumeMounts, volumes) giving a git container the store's credentials, if any."""
    git = fs.spec.feature_repo.git  # type: ignore[union-attr]
    assert git is not None
    env: list[dict[str, Any]] = [{"name": "HOME", "value": "/tmp"}]
    if not git.secret_ref:
        return env, [], []
    env.append(
        {
            "name": "GIT_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": git.secret_ref.name, "key": "token", "optional": True}},
        }
    )
    items = [{"key": k, "path": k} for k in ("ssh-privatekey", "known_hosts")]
    volume = {
        "name": "git-secret",
        "secret": {"secretName": git.secret_ref.name, "defaultMode": 0o400, "items": items, "optional": True},
    }
    mount = {"name": "git-secret", "mountPath": "/etc/git-secret", "readOnly": True}
    return env, [mount], [volume]


def _pod(fs: FeatureStore, source: str) -> dict[str, Any]:
    git = fs.spec.feature_repo.git  # type: ignore[union-attr]
    assert git is not None
    env, mounts, volumes = git_credentials(fs)
    container = {
        "name": CONTAINER,
        "image": fs.spec.images.git,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", RESOLVE_SCRIPT, "--"],
        "args": [git.url.replace("$", "$$"), git.ref],
        "env": env,
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, *mounts],
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
        "securityContext": container_security(),
    }
    pod_labels = {**labels(fs, COMPONENT), SOURCE_LABEL: source}
    return {
        "metadata": {"labels": pod_labels, "annotations": {"sidecar.istio.io/inject": "false"}},
        "spec": {
            "serviceAccountName": Names(fs).service_account,
            "automountServiceAccountToken": needs_api_token(bool(fs.spec.gcp.service_account)),
            "securityContext": pod_security(),
            "restartPolicy": "Never",
            "containers": [container],
            "volumes": [empty_dir("tmp"), *volumes],
        },
    }


def _job_spec(fs: FeatureStore, source: str) -> dict[str, Any]:
    return {"backoffLimit": 0, "activeDeadlineSeconds": 120, "template": _pod(fs, source)}


def resolver_objects(fs: FeatureStore, repo: RepoSource | None, versions: ApiVersions) -> list[dict[str, Any]]:
    """The resolver Job of the current source and, while the ref is followed, the polling CronJob."""
    git = fs.spec.feature_repo.git if fs.spec.feature_repo else None
    if git is None or is_commit(git.ref):
        return []
    source = source_hash(fs)
    job_labels = {**labels(fs, COMPONENT), SOURCE_LABEL: source}
    name = f"{fs.metadata.name}-resolve-{source[:8]}"
    out: list[dict[str, Any]] = [
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {**meta(fs, name, COMPONENT), "labels": job_labels},
            "spec": _job_spec(fs, source),
        }
    ]
    if repo is not None and repo.resolved_tag and not git.follow_tags:
        return out  # a tag is resolved once unless the user asked to follow it
    out.append(
        {
            "apiVersion": versions.cronjob,
            "kind": "CronJob",
            "metadata": meta(fs, f"{fs.metadata.name}-resolve", COMPONENT),
            "spec": {
                "schedule": jitter_schedule(fs, git.poll_minutes),
                "concurrencyPolicy": "Forbid",
                "startingDeadlineSeconds": 60 * min(git.poll_minutes, 10),
                "successfulJobsHistoryLimit": 1,
                "failedJobsHistoryLimit": 1,
                "jobTemplate": {"metadata": {"labels": job_labels}, "spec": _job_spec(fs, source)},
            },
        }
    )
    return out
