"""Keeps the chart's token reviewers ClusterRoleBinding (FSO_TOKEN_REVIEWERS_BINDING) equal to the
ServiceAccounts of the stores with ``spec.authz.type: kubernetes`` (``reconcile.token_reviewers``).

Woken by the FeatureStore watch (``handlers.featurestore``) on every event, it waits a short
debounce (a burst of events costs one write), computes the subjects from the bodies the workers
hold and merge-patches the binding (guarded by its resourceVersion) when they differ. It also looks
again every resync period, so a hand edit of the binding is undone. Runs on the acting replica only.
The chart grants ``get``/``patch`` on that one binding and ``bind`` on its one ClusterRole.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from ..reconcile.kube import ApiError
from ..reconcile.token_reviewers import subjects

if TYPE_CHECKING:
    from .runtime import Runtime

log = logging.getLogger(__name__)
DEBOUNCE = 0.5
RBAC = "rbac.authorization.k8s.io/v1"


class TokenReviewers:
    def __init__(self, scopes: int) -> None:
        self.changed = asyncio.Event()
        #: FeatureStore watches (namespaces, or one cluster-wide) that must have listed once before a
        #: sync: else a restarted operator would drop the accounts of a namespace not listed yet
        self.scopes = scopes
        self.listed: set[str | None] = set()

    def wake(self) -> None:
        self.changed.set()

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
                while not await sync(rt, name):  # changed since read: read again
                    pass
                backoff = 1.0
            except Exception as err:  # noqa: BLE001 - API or connection errors: try again
                log.error("token reviewers binding %s not synced: %s; retrying in %.0fs", name, err, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60.0)
                self.wake()


async def sync(rt: Runtime, name: str) -> bool:
    """One attempt; False when the binding changed between read and write."""
    want = subjects(rt.workers.bodies.values(), rt.config)
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
