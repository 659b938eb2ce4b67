"""kopf wiring of FeatureStores: every event hands the latest body to the store's worker
(``handlers.workers``), which runs the pass. No kopf daemon, timer or change handler: kopf adds no
finalizer of its own, and ours is held only while cloud resources need cleanup (reconcile.core)."""

from __future__ import annotations

from typing import Any

import kopf

from ..api import GROUP, PLURAL, VERSION
from .runtime import Runtime


@kopf.on.event(GROUP, VERSION, PLURAL, id="featurestores")
async def featurestore_event(event: dict[str, Any], memo: Runtime, **_: Any) -> None:
    memo.workers.observe(event.get("type"), event["object"])
