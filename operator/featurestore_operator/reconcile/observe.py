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
from .applier import ObservedCache
from .kube import Kube


@dataclass(frozen=True)
class RepoNotConfigured:
    """No ``spec.featureRepo``: the registry is managed by its users."""


@dataclass(frozen=True)
class RepoRevision:
    """The repo's source, identified by a hash of it."""

    revision: str


@dataclass(frozen=True)
class RepoMissing:
    """The repo source (or its credentials) does not exist: no apply Job can run."""

    kind: str  # ConfigMap | Secret
    name: str
    field: str
    fix: str


RepoState = RepoNotConfigured | RepoRevision | RepoMissing


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


async def observe_repo(kube: Kube, fs: FeatureStore) -> RepoState:
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
        return RepoRevision(_digest(repo.git.wire()))
    assert repo.config_map is not None
    cm = await kube.get("ConfigMap", "v1", ns, repo.config_map.name)
    if cm is None:
        return RepoMissing(
            "ConfigMap",
            repo.config_map.name,
            "spec.featureRepo.configMap.name",
            "create it with the feature repo's files",
        )
    return RepoRevision(_digest({"data": cm.get("data") or {}, "binaryData": cm.get("binaryData") or {}}))


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
