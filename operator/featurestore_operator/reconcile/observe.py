"""Observe: the inputs a FeatureStore references besides its own spec (its feature repo's source,
Secrets backends read), as typed results."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..api import FeatureStore
from ..api.status import FeatureRepoStatus
from ..render.gitref import is_tag
from ..render.kubeflow import StoreKey, default_store
from ..runtime.cache import ObservedCache
from ..runtime.kube import ApiError, Kube


@dataclass(frozen=True)
class RepoNotConfigured:
    """No ``spec.featureRepo``: the registry is managed by its users."""


@dataclass(frozen=True)
class RepoRevision:
    """The repo's source, identified by a hash of it (git: with the resolved commit)."""

    revision: str
    commit: str | None = None
    resolved_tag: bool = False


@dataclass(frozen=True)
class RepoResolving:
    """A git ref not resolved to a commit yet (or never: ``error``): no apply Job yet."""

    ref: str
    error: str | None = None


@dataclass(frozen=True)
class RepoMissing:
    """The repo source (or its credentials) does not exist: no apply Job can run."""

    kind: str  # ConfigMap | Secret
    name: str
    field: str
    fix: str


RepoState = RepoNotConfigured | RepoRevision | RepoMissing | RepoResolving


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


async def observe_repo(kube: Kube, fs: FeatureStore, seen: FeatureRepoStatus | None = None) -> RepoState:
    """The repo's state; ``seen``: this pass's ``status.featureRepo`` (resolved commit, reapply
    token: ``gitref.observe_resolution``), both part of the revision."""
    seen = seen or FeatureRepoStatus()
    token = {"reapply": seen.reapply_token} if seen.reapply_token else {}
    repo = fs.spec.feature_repo
    ns = fs.metadata.namespace
    if repo is None:
        return RepoNotConfigured()
    if repo.git:
        ref = repo.git.secret_ref
        if ref and await kube.get("Secret", "v1", ns, ref.name) is None:
            return RepoMissing(
                "Secret",
                ref.name,
                "spec.featureRepo.git.secretRef.name",
                "create it in the FeatureStore's own namespace with key token (https) or ssh-privatekey (ssh)",
            )
        if seen.resolved_commit is None:
            return RepoResolving(repo.git.ref, seen.last_resolution_error)
        source = repo.git.model_dump(
            mode="json", by_alias=True, exclude={"poll_minutes", "follow_tags"}, exclude_none=True
        )
        return RepoRevision(
            _digest({**source, "commit": seen.resolved_commit, **token}),
            seen.resolved_commit,
            is_tag(seen.resolved_ref),
        )
    assert repo.config_map is not None
    cm = await kube.get("ConfigMap", "v1", ns, repo.config_map.name)
    if cm is None:
        return RepoMissing(
            "ConfigMap",
            repo.config_map.name,
            "spec.featureRepo.configMap.name",
            "create it with the feature repo's files",
        )
    return RepoRevision(_digest({"data": cm.get("data") or {}, "binaryData": cm.get("binaryData") or {}, **token}))


SecretReader = Callable[[str], Awaitable[dict[str, str] | None]]


def secret_reader(kube: Kube, cache: ObservedCache, namespace: str) -> SecretReader:
    """Reads a Secret's decoded data in ``namespace``: from the cache for Secrets the operator
    applied (no request), else from the API server."""

    async def get_secret(name: str) -> dict[str, str] | None:
        ref = ("Secret", namespace, name)
        cached = cache.objects.get(ref)
        if cached is not None and ref in cache.applied and "data" in cached:
            return {k: base64.b64decode(v).decode() for k, v in cached["data"].items()}
        obj = await kube.get("Secret", "v1", namespace, name)
        if obj is None:
            return None
        return {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}

    return get_secret


def service_account_reader(kube: Kube, namespace: str) -> Callable[[str], Awaitable[dict[str, Any] | None]]:
    """Reads a ServiceAccount of ``namespace`` from the API server (e.g. Kubeflow's default-editor,
    whose Workload Identity annotation says which GSA the namespace's notebooks run as)."""

    async def get_service_account(name: str) -> dict[str, Any] | None:
        return await kube.get("ServiceAccount", "v1", namespace, name)

    return get_service_account


#: Kubeflow's PodDefault webhook acts only in namespaces with this label (its
#: MutatingWebhookConfiguration's namespaceSelector, kubeflow/dashboard
#: components/poddefaults-webhooks/manifests/kustomize/base/mutating-webhook-configuration.yaml).
PROFILE_LABEL = ("app.kubernetes.io/part-of", "kubeflow-profile")


@dataclass(frozen=True)
class NotebookFacts:
    """What the store's namespace says about notebook access."""

    #: the namespace's default store (render.kubeflow.default_store), None: no store is
    default_store: str | None
    #: the PodDefault webhook acts in the namespace; None: not looked (no PodDefault rendered) or unreadable
    profile: bool | None = None


async def observe_notebooks(
    kube: Kube, fs: FeatureStore, created: str, stores: list[StoreKey], marks: dict[str, bool | None], look: bool
) -> NotebookFacts:
    """The namespace's default store and, when ``look`` (a PodDefault is rendered), whether the
    namespace is a Kubeflow profile namespace. ``stores``/``marks``: the namespace's stores as the
    runtime knows them (this one always counts, created at ``created``, with its own mark)."""
    name = fs.metadata.name
    keys = [s for s in stores if s[1] != name] + [(created, name)]
    default = default_store(keys, {**marks, name: fs.spec.kubeflow.default_store})
    if not look:
        return NotebookFacts(default)
    try:
        ns = await kube.get("Namespace", "v1", None, fs.metadata.namespace)
    except ApiError as err:
        if err.status != 403:  # an admin's narrower RBAC: unknown, never claimed either way
            raise
        ns = None
    if ns is None:
        return NotebookFacts(default)
    key, value = PROFILE_LABEL
    return NotebookFacts(default, ((ns.get("metadata") or {}).get("labels") or {}).get(key) == value)
