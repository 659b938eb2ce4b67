"""Desired: the objects one FeatureStore should own now (pure; wraps ``render``)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..api import FeatureStore, FeatureStoreStatus, OperatorConfig
from ..render import ApiVersions, NotebookAccess, RepoSource, render, tls
from ..render.names import COMPONENT_LABEL, Names, meta
from .conditions import job_state
from .kinds import Key, key
from .observe import RepoRevision, RepoState
from .outcomes import BackendResults
from .secrets import SecretInputs


@dataclass(frozen=True)
class Desired:
    #: objects to apply (none while holding)
    objects: list[dict[str, Any]] = field(default_factory=list)
    #: hash of the feature_store.yaml the workloads run with (kept while holding)
    config_hash: str | None = None
    #: a serving store whose backend is in transition: its workloads and config stay as they are
    hold: bool = False
    #: name of the `feast apply` Job of this spec and repo revision (None: no feature repo to apply)
    apply_job: str | None = None
    #: (reason, message): why the servers have no TLS certificate yet (cert-manager missing or not issued yet)
    tls_problem: tuple[str, str] | None = None
    #: the servers wait for the store's first `feast apply` (see ``REGISTRY_READERS``)
    awaiting_first_apply: bool = False

    @property
    def keep(self) -> set[Key]:
        return {key(o) for o in self.objects}


#: Components whose servers read the registry: created only once the store's first `feast apply`
#: succeeded. A server started before caches the empty registry for registry.cacheTtlSeconds, so
#: right after `kubectl wait --for=condition=Ready` every feature view was "not found" (seen on real
#: pods: tests/e2e/scenario-gcp.sh). A server that exists already is never held back.
REGISTRY_READERS = frozenset({"feature-server", "registry-server", "offline-server", "ui"})
SERVER_KINDS = frozenset({"Deployment", "HorizontalPodAutoscaler"})


def _reads_registry(obj: dict[str, Any]) -> bool:
    return obj["kind"] in SERVER_KINDS and obj["metadata"]["labels"].get(COMPONENT_LABEL) in REGISTRY_READERS


def _first_apply_pending(
    job: str, previous: FeatureStoreStatus, observed: Callable[[str, str], dict[str, Any] | None]
) -> bool:
    """No revision of the feature repo was applied yet, and the apply Job ``job`` has not succeeded."""
    if previous.feature_repo.applied_revision is not None:
        return False
    found = observed("Job", job)
    return found is None or job_state(found) != "Succeeded"


def secret(fs: FeatureStore, name: str, component: str, data: dict[str, str]) -> dict[str, Any]:
    """A Secret the store owns (online store: Redis password and CA; tls: serving CA and key pair)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta(fs, name, component),
        "type": "Opaque",
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in sorted(data.items())},
    }


def secret_names(fs: FeatureStore, owned: list[dict[str, Any]]) -> set[str]:
    """Every Secret ``fs`` may own: the ones it can want (derived names) and any other seen labelled
    for it (``owned``: its cached children). Read by name at the start of each pass: the operator does
    not watch Secrets (``kinds.KINDS``), and backends read them right after."""
    seen = {o["metadata"]["name"] for o in owned if o["kind"] == "Secret"}
    return seen | {Names(fs).online_secret, tls.ca_secret_name(fs)}


def desired(
    fs: FeatureStore,
    backends: BackendResults,
    repo: RepoState,
    config: OperatorConfig,
    versions: ApiVersions,
    previous: FeatureStoreStatus,
    inputs: SecretInputs | None = None,
    observed: Callable[[str, str], dict[str, Any] | None] | None = None,
    access: NotebookAccess | None = None,
) -> Desired:
    """What to apply. A store that served before keeps its workloads and config untouched while a
    backend is in transition (Memorystore maintenance, resize, repair): rewriting the config to
    "pending" would take a working store down for a routine cloud event. ``observed(kind, name)``:
    the store's objects as last seen; with it, servers not created yet wait for the first apply."""
    if not backends.ready and previous.config_hash is not None and previous.endpoints.online_store is not None:
        return Desired(config_hash=previous.config_hash, hold=True)
    source = RepoSource(repo.revision) if isinstance(repo, RepoRevision) else None
    endpoints = inputs.endpoints if inputs else backends.endpoints
    rendered = render(fs, endpoints, config, versions, source, inputs.hashes if inputs else None, access)
    objects = list(rendered.objects)
    if backends.online_secret:
        objects.insert(0, secret(fs, Names(fs).online_secret, "online-store", backends.online_secret))
    for name, data in (inputs.secrets(fs) if inputs else {}).items():
        objects.insert(0, secret(fs, name, "tls", data))
    job = next(
        (
            o["metadata"]["name"]
            for o in objects
            if o["kind"] == "Job" and o["metadata"]["labels"].get(COMPONENT_LABEL) == "feature-repo"
        ),
        None,
    )
    problem = tls.problem(fs, config, versions, endpoints)
    kept = objects
    if observed is not None and job is not None and _first_apply_pending(job, previous, observed):
        # only creation waits: a server that runs already (a store given a feature repo later) stays
        kept = [o for o in objects if not _reads_registry(o) or observed(o["kind"], o["metadata"]["name"])]
    return Desired(
        objects=kept,
        config_hash=rendered.config_hash,
        apply_job=job,
        tls_problem=problem,
        awaiting_first_apply=len(kept) < len(objects),
    )
