"""Keeps the chart's token reviewers ClusterRoleBinding (FSO_TOKEN_REVIEWERS_BINDING) equal to the
ServiceAccounts of the stores with ``spec.authz.type: kubernetes`` (``reconcile.token_reviewers``).

Woken by the FeatureStore watch (``handlers.featurestore``) when a store appears or goes, or its
spec or deletion changes (not on the status writes of every pass), it waits a short debounce (a
burst of events costs one write), computes the subjects from the bodies the workers hold (each
store's account parsed again only when its uid, generation or deletion changed) and merge-patches
the binding (guarded by its resourceVersion) when they differ. It also looks
again every resync period, so a hand edit of the binding is undone. Runs on the acting replica only.
The chart grants ``get``/``patch`` on that one binding and ``bind`` on its one ClusterRole.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any, Protocol

from ..api import OperatorConfig
from ..reconcile.token_reviewers import account, as_subjects
from ..runtime.kube import ApiError, Kube

log = logging.getLogger(__name__)
DEBOUNCE = 0.5
RBAC = "rbac.authorization.k8s.io/v1"
Key = tuple[str, str]
#: what of a FeatureStore can change its account: (uid, generation, being deleted)
Mark = tuple[Any, Any, bool]


class _Bodies(Protocol):
    @property
    def bodies(self) -> dict[Key, dict[str, Any]]: ...


class Runtime(Protocol):
    """What of the process's runtime (``handlers.runtime.Runtime``) the binding's sync reads."""

    @property
    def kube(self) -> Kube: ...
    @property
    def config(self) -> OperatorConfig: ...
    @property
    def workers(self) -> _Bodies: ...


def _mark(body: dict[str, Any]) -> Mark:
    meta = body["metadata"]
    return meta.get("uid"), meta.get("generation"), bool(meta.get("deletionTimestamp"))


class TokenReviewers:
    def __init__(self, scopes: int) -> None:
        self.changed = asyncio.Event()
        #: FeatureStore watches (namespaces, or one cluster-wide) that must have listed once before a
        #: sync: else a restarted operator would drop the accounts of a namespace not listed yet
        self.scopes = scopes
        self.listed: set[str | None] = set()
        #: per store: its account as last computed, and the mark it was computed for
        self.accounts: dict[Key, tuple[Mark, tuple[str, str] | None]] = {}

    def wake(self) -> None:
        self.changed.set()

    def observe(self, event_type: str | None, body: dict[str, Any]) -> None:
        """A FeatureStore event: wake only when it can change the subjects."""
        meta = body["metadata"]
        known = self.accounts.get((meta["namespace"], meta["name"]))
        if event_type == "DELETED" or known is None or known[0] != _mark(body):
            self.wake()

    def subjects(self, bodies: Mapping[Key, dict[str, Any]], config: OperatorConfig) -> list[dict[str, str]]:
        """``reconcile.token_reviewers.subjects`` of ``bodies``, parsing only stores that changed."""
        fresh: dict[Key, tuple[Mark, tuple[str, str] | None]] = {}
        for key, body in bodies.items():
            known, mark = self.accounts.get(key), _mark(body)
            fresh[key] = known if known is not None and known[0] == mark else (mark, account(body, config))
        self.accounts = fresh
        return as_subjects(found for _, found in fresh.values())

    def scope_listed(self, namespace: str | None) -> None:
        """The FeatureStore watch of ``namespace`` (None: cluster-wide) has listed every store."""
        self.listed.add(namespace)
        self.wake()

    async def run(self, rt: Runtime, name: str) -> None:
        """Sync the binding ``name`` whenever woken (or each resync period), forever."""
        backoff = 1.0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), rt.config.resync_seconds)
            await asyncio.sleep(DEBOUNCE)
            self.changed.clear()
            if len(self.listed) < self.scopes:
                continue
            try:
                while not await sync(rt, name, self.subjects(rt.workers.bodies, rt.config)):  # changed: again
                    pass
                backoff = 1.0
            except Exception as err:  # noqa: BLE001 - API or connection errors: try again
                log.error("token reviewers binding %s not synced: %s; retrying in %.0fs", name, err, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60.0)
                self.wake()


async def sync(rt: Runtime, name: str, want: list[dict[str, str]]) -> bool:
    """One attempt to make the binding's subjects ``want``; False when it changed between read and write."""
    binding = await rt.kube.get("ClusterRoleBinding", RBAC, None, name)
    if binding is None:
        raise ApiError(404, "NotFound", f"ClusterRoleBinding {name} (installed by the chart) does not exist")
    if (binding.get("subjects") or []) == want:
        return True
    binding.setdefault("apiVersion", RBAC)
    binding.setdefault("kind", "ClusterRoleBinding")
    if await rt.kube.patch_guarded(binding, {"subjects": want}) is None:
        return False
    log.info("token reviewers binding %s: %d ServiceAccount(s)", name, len(want))
    return True
