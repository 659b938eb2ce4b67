"""Leader election on a coordination.k8s.io Lease, for several replicas with one acting (HA).

The usual Kubernetes protocol (client-go's leaderelection): the holder renews ``renewTime`` every
``renew`` seconds; another replica takes the Lease over once it has not been renewed for
``duration`` seconds. Every write is guarded by the Lease's resourceVersion, so two replicas can never
both win. A leader that cannot renew in time stops acting (the process exits and restarts as a
stand-by) rather than risk two operators at once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

from .kube import ApiError, Kube

log = logging.getLogger(__name__)
API_VERSION = "coordination.k8s.io/v1"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _stamp(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


class LeaderElector:
    def __init__(self, kube: Kube, namespace: str, name: str, identity: str, duration: float = 15.0):
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.duration = duration
        self.renew = max(duration / 3, 1.0)
        self.leading = False

    def _lease(self, base: dict[str, Any] | None, transitions: int) -> dict[str, Any]:
        now = _stamp(_now())
        spec = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.duration),
            "renewTime": now,
            "leaseTransitions": transitions,
        }
        held = base is not None and (base.get("spec") or {}).get("holderIdentity") == self.identity
        spec["acquireTime"] = (base or {}).get("spec", {}).get("acquireTime") if held else now
        meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if base is not None:
            meta["resourceVersion"] = base["metadata"]["resourceVersion"]
        return {"apiVersion": API_VERSION, "kind": "Lease", "metadata": meta, "spec": spec}

    async def try_acquire(self) -> bool:
        """One attempt to take or renew the Lease."""
        lease = await self.kube.get("Lease", API_VERSION, self.namespace, self.name)
        if lease is None:
            return await self.kube.create(self._lease(None, 0)) is not None
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity")
        renewed = _parse(spec.get("renewTime"))
        expired = renewed is None or (_now() - renewed).total_seconds() > spec.get("leaseDurationSeconds", 15)
        if holder not in (None, "", self.identity) and not expired:
            return False
        transitions = spec.get("leaseTransitions") or 0
        try:
            await self.kube.replace(self._lease(lease, transitions + (holder != self.identity)))
        except ApiError as err:
            if err.status == 409:  # someone else wrote it first
                return False
            raise
        return True

    async def acquire(self) -> None:
        """Wait until this replica leads."""
        log.info("waiting to lead (Lease %s/%s, identity %s)", self.namespace, self.name, self.identity)
        while not await self._attempt():
            await asyncio.sleep(self.renew)
        self.leading = True
        log.info("leading (Lease %s/%s)", self.namespace, self.name)

    async def _attempt(self) -> bool:
        try:
            return await self.try_acquire()
        except Exception as err:  # noqa: BLE001 - the API may be briefly unreachable: try again
            log.warning("leader election: %s: %s", type(err).__name__, err)
            return False

    async def keep(self) -> None:
        """Renew until a renewal is overdue; returns when leadership is lost."""
        last = asyncio.get_running_loop().time()
        while True:
            await asyncio.sleep(self.renew)
            if await self._attempt():
                last = asyncio.get_running_loop().time()
            elif asyncio.get_running_loop().time() - last > self.duration - self.renew:
                self.leading = False
                log.error("lost the Lease %s/%s (not renewed in time): stopping", self.namespace, self.name)
                return

    async def release(self) -> None:
        """Hand the Lease over at once on a clean shutdown (the next replica need not wait it out)."""
        if not self.leading:
            return
        try:
            lease = await self.kube.get("Lease", API_VERSION, self.namespace, self.name)
            if lease and (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                released = self._lease(lease, (lease.get("spec") or {}).get("leaseTransitions") or 0)
                released["spec"].update(holderIdentity="", renewTime=None, acquireTime=None)
                await self.kube.replace(released)
        except Exception as err:  # noqa: BLE001 - best effort; the Lease expires anyway
            log.info("could not release the Lease: %s", err)
        self.leading = False
