"""The FeatureStore controller as the runtime's workers run it (``runtime.workers.Reconciler``): each
call builds the pass's dependencies for that store (``deps``, from ``handlers.runtime``) and runs the
pass (``core.run_pass``), its finalize or the clean-up of a vanished store (``finalize``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .. import store_metrics
from ..api import API_VERSION, FINALIZER, FeatureStoreStatus
from ..api.bounds import CostBounds, shed
from ..runtime.kube import Kube
from .core import Deps, Result, run_pass
from .finalize import Finalized, clean_up_vanished, finalize

DEFAULT_MAX_SPEC_BYTES: int = CostBounds.model_fields["max_spec_bytes"].default
#: written by kubectl/server-side apply, never read by a pass: not kept for 1000s of stores
_UNREAD_METADATA = ("managedFields",)
_UNREAD_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)


def slim_body(body: dict[str, Any], max_spec_bytes: int = DEFAULT_MAX_SPEC_BYTES) -> dict[str, Any]:
    """The FeatureStore as a pass reads it, without the bookkeeping the API server and kubectl add
    (managedFields grow with every status write; kubectl keeps a copy of the whole object), and
    without a spec over the admin policy's maxSpecBytes (one that got past admission: webhook off or
    failing open): the operator never holds big specs, the pass reports the refusal from the size
    it recorded (api/bounds.py, ``shed``)."""
    body = shed(body, max_spec_bytes)
    meta = {k: v for k, v in body["metadata"].items() if k not in _UNREAD_METADATA}
    if meta.get("annotations"):
        meta["annotations"] = {k: v for k, v in meta["annotations"].items() if k not in _UNREAD_ANNOTATIONS}
    return {**body, "metadata": meta}


def default_marks(bodies: Mapping[tuple[str, str], dict[str, Any]], namespace: str) -> dict[str, bool | None]:
    """name -> spec.kubeflow.defaultStore of the namespace's stores among ``bodies`` (the workers'
    kept bodies, not validated: anything but a bool is unset; render.kubeflow.default_store decides)."""
    marks: dict[str, bool | None] = {}
    for (ns, name), body in bodies.items():
        if ns == namespace:
            mark = ((body.get("spec") or {}).get("kubeflow") or {}).get("defaultStore")
            marks[name] = mark if isinstance(mark, bool) else None
    return marks


@dataclass
class FeatureStoreController:
    kube: Kube
    #: what one pass over a FeatureStore body needs (its Events name that store)
    deps: Callable[[dict[str, Any]], Deps]
    max_spec_bytes: int = DEFAULT_MAX_SPEC_BYTES
    finalizer: str = FINALIZER

    def keep(self, body: dict[str, Any]) -> dict[str, Any]:
        return slim_body(body, self.max_spec_bytes)

    async def reconcile(self, body: dict[str, Any]) -> Result:
        result = await run_pass(self.deps(body), body)
        meta = body["metadata"]
        store_metrics.observe(
            meta["namespace"], meta["name"], FeatureStoreStatus.model_validate(body.get("status") or {})
        )
        return result

    async def finalize(self, body: dict[str, Any]) -> Finalized:
        return await finalize(self.deps(body), body)

    async def clean_up(self, body: dict[str, Any]) -> Finalized:
        return await clean_up_vanished(self.deps(body), body)

    async def exists(self, namespace: str, name: str) -> bool:
        return await self.kube.get("FeatureStore", API_VERSION, namespace, name) is not None

    def forget(self, namespace: str, name: str) -> None:
        store_metrics.forget(namespace, name)
