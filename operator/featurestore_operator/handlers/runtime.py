"""Process-wide state handed to every handler through kopf's memo."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from ..api import OperatorConfig
from ..reconcile.applier import ObservedCache
from ..reconcile.core import Deps


@dataclass
class Runtime:
    config: OperatorConfig
    deps: Deps | None = None
    cache: ObservedCache = field(default_factory=ObservedCache)
    wakeups: dict[tuple[str, str], asyncio.Event] = field(default_factory=dict)
    generations: dict[tuple[str, str], Any] = field(default_factory=dict)
    phases: dict[tuple[str, str], str] = field(default_factory=dict)
    #: uids of FeatureStores seen deleted: their workers stop
    deleted: set[str] = field(default_factory=set)

    def wakeup(self, namespace: str, name: str) -> asyncio.Event:
        return self.wakeups.setdefault((namespace, name), asyncio.Event())

    def poke(self, namespace: str, name: str) -> None:
        event = self.wakeups.get((namespace, name))
        if event is not None:
            event.set()
