"""Posting Kubernetes Events about FeatureStores, as the operator (`kubectl describe` shows
"From: featurestore-operator"). Fire-and-forget through a small bounded queue: an Event that cannot
be posted is logged, never retried, and never holds up a reconcile pass."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
from dataclasses import dataclass
from typing import Any

from .kube import FIELD_MANAGER, Kube

log = logging.getLogger(__name__)
#: Events waiting to be posted at most; more are dropped (they describe transitions, not state)
QUEUE_SIZE = 1000
POSTERS = 4


@dataclass(frozen=True)
class Event:
    """One Event to post (which ones a FeatureStore pass posts: ``reconcile.events.transitions``)."""

    type: str  # Normal | Warning
    reason: str
    message: str


def event_object(involved: dict[str, Any], event: Event, now: dt.datetime, instance: str) -> dict[str, Any]:
    meta = involved["metadata"]
    stamp = now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": involved.get("apiVersion"),
            "kind": involved.get("kind"),
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        "type": event.type,
        "reason": event.reason[:128],
        "message": event.message[:1024],
        "source": {"component": FIELD_MANAGER},
        "reportingComponent": FIELD_MANAGER,
        "reportingInstance": instance,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


class EventPoster:
    def __init__(self, kube: Kube):
        self.kube = kube
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self.instance = os.environ.get("POD_NAME") or socket.gethostname()

    def post(self, involved: dict[str, Any], event: Event) -> None:
        try:
            self.queue.put_nowait(event_object(involved, event, dt.datetime.now(dt.UTC), self.instance))
        except asyncio.QueueFull:
            log.warning(
                "dropped Event %s %s: %d Events are waiting to be posted",
                event.reason,
                involved["metadata"]["name"],
                QUEUE_SIZE,
            )

    async def run(self) -> None:
        await asyncio.gather(*(self._poster() for _ in range(POSTERS)))

    async def _poster(self) -> None:
        while True:
            obj = await self.queue.get()
            try:
                await self.kube.create(obj)
            except Exception as err:  # noqa: BLE001 - an Event is best effort
                log.info("could not post Event %s for %s: %s", obj["reason"], obj["involvedObject"]["name"], err)
            finally:
                self.queue.task_done()
