"""Server-side apply of owned objects with an observed-state cache, so a resync of an unchanged
FeatureStore costs no write at all (and no read but its few Secrets, read by name: :meth:`Applier.refresh`).

The cache is fed by apply responses, by watch events on owned kinds (handlers wire those) and, for
the one owned kind the operator may not watch (Secrets), by reads by name each pass. An
object is re-applied when what we want changed (hash of the desired body), when it is missing, or
when someone else changed it since our last apply (``runtime.cache.drift_key``: its generation or the fields
our field manager owns moved). Server-side apply then restores exactly our fields; if the change
did not touch them the apply writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from ..render.names import OWNER_LABEL
from ..runtime.cache import ObservedCache, drift_key
from ..runtime.kinds import Key, in_apply_order, key
from ..runtime.kube import ApiError, Kube
from .fences import POLICY_KINDS, fences


def desired_hash(obj: dict[str, Any]) -> bytes:
    """16 raw bytes: one is kept per applied object (a hex str of a sha256 was ~2 MiB at 1000 stores)."""
    return hashlib.blake2b(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode(), digest_size=16).digest()


#: seconds before an unchanged refused object is sent again
RETRY_REFUSED = 300.0


@dataclass(frozen=True)
class ApplyFailure:
    """An object the API server refused (admission webhook, quota, validation, an immutable field),
    or a workload held back because a policy that fences its pods was refused (``held_by``)."""

    key: Key
    error: ApiError | None = None
    #: the refused NetworkPolicy/AuthorizationPolicy that fences this workload's pods
    held_by: Key | None = None

    @property
    def immutable(self) -> bool:
        """A change of a field the API server never lets change (PVC size/class, StatefulSet claims)."""
        if self.error is None:
            return False
        text = self.error.describe().lower()
        return self.error.status == 422 and ("immutable" in text or "forbidden" in text)

    def describe(self) -> str:
        kind, _, name = self.key
        if self.held_by is not None:
            held = f"{self.held_by[0]} {self.held_by[2]}"
            why = "which fences its pods" if self.held_by[0] in POLICY_KINDS else "which it binds"
            return f"{kind} {name}: held back (not applied) while {held}, {why}, is refused"
        assert self.error is not None
        return f"{kind} {name}: {self.error.describe()}"


class Applier:
    """Server-side apply of desired children, skipping what is as we left it; remembers refusals so
    an unchanged refused object is not sent again on every pass (nor reported again)."""

    def __init__(self, kube: Kube, cache: ObservedCache, retry_refused: float = RETRY_REFUSED):
        self.kube = kube
        self.cache = cache
        #: seconds before an unchanged refused object is sent again (a webhook or quota may change its mind)
        self.retry_refused = retry_refused
        #: key -> (desired hash, drift key when refused, the failure, owner, when)
        self.refused: dict[Key, tuple[bytes, str | None, ApplyFailure, str | None, float]] = {}

    def up_to_date(self, obj: dict[str, Any]) -> bool:
        k = key(obj)
        mine = self.cache.applied.get(k)
        return k in self.cache.objects and mine is not None and mine == (desired_hash(obj), self.cache.drift.get(k))

    async def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Apply one object (raises ApiError when refused)."""
        k = key(obj)
        if self.up_to_date(obj):
            return self.cache.objects[k]
        if k not in self.cache.applied:
            await self._refuse_foreign(obj)
        full = await self.kube.apply(obj)
        self.cache.drift[k] = drift_key(full)
        self.cache.applied[k] = (desired_hash(obj), self.cache.drift[k])
        return self.cache.record(full, keep_data=True)

    async def _refuse_foreign(self, obj: dict[str, Any]) -> None:
        """Raise a 409 when an object of this name exists that the desired controller (the
        FeatureStore) does not control: the forced apply would take it over - its fields overwritten,
        our ownerReference added, so it goes with the store. A namespace editor could otherwise name a
        store after an object they may not write (an admin's Role/RoleBinding) and use the operator
        as a deputy against it. Asked once per object and process (then the cache knows it as ours):
        objects our watch holds with our ownerReference cost no request."""
        ref = _controller(obj)
        if ref is None:
            return
        k = key(obj)
        seen = self.cache.objects.get(k)
        if seen is not None and _controlled_by_ref(seen, ref):
            return
        live = await self.kube.find(k[0], obj["apiVersion"], k[1] or None, k[2])
        if live is None or _controlled_by_ref(live, ref):
            return
        raise ApiError(
            409,
            "AlreadyExists",
            f"already exists and was not created by {ref.get('kind')} {ref.get('name')} (it has no controller "
            "ownerReference to it); the operator never takes over an object it did not create: delete or rename "
            "that object, or give the FeatureStore another name",
        )

    async def apply_all(self, objects: list[dict[str, Any]]) -> list[ApplyFailure]:
        """Apply every object in the table's order; a refused object never stops the others, but a
        refused policy holds back every workload whose pods it fences (fail closed: policies come
        first in the order, so no pod is created or changed while its fence is missing)."""
        failures: list[ApplyFailure] = []
        refused: list[dict[str, Any]] = []
        for obj in in_apply_order(objects):
            holder = next((r for r in refused if fences(r, obj) or _binds(obj, r)), None)
            if holder is not None:
                failures.append(ApplyFailure(key(obj), held_by=key(holder)))
                continue
            failure = await self._apply_one(obj)
            if failure is not None:
                failures.append(failure)
                refused.append(obj)
        return failures

    async def _apply_one(self, obj: dict[str, Any]) -> ApplyFailure | None:
        k = key(obj)
        wanted = desired_hash(obj)
        seen = self.refused.get(k)
        if (
            seen is not None
            and seen[:2] == (wanted, self.cache.drift.get(k))
            and time.monotonic() - seen[4] < self.retry_refused
        ):
            return seen[2]  # the same object against the same live state, recently: the same answer
        try:
            await self.apply(obj)
        except ApiError as err:
            if err.status in (401, 403) or err.status >= 500:
                raise  # not about this object: the pass fails and is retried with backoff
            failure = ApplyFailure(k, err)
            owner = (obj["metadata"].get("labels") or {}).get(OWNER_LABEL)
            self.refused[k] = (wanted, self.cache.drift.get(k), failure, owner, time.monotonic())
            return failure
        self.refused.pop(k, None)
        return None

    async def refresh(self, kind: str, api_version: str, namespace: str, names: set[str]) -> None:
        """Read objects of a kind the operator does not watch (Secrets) by name, and record what it finds
        as a watch event would: a drifted or deleted one is re-applied, a leftover one is pruned."""
        for name in sorted(names):
            obj = await self.kube.get(kind, api_version, namespace, name)
            if obj is None:
                self.cache.forget((kind, namespace, name))
            else:
                self.cache.observe({**obj, "kind": kind, "apiVersion": api_version})

    def forget_owner(self, namespace: str, owner: str) -> None:
        """The FeatureStore is gone: drop what was remembered of its children."""
        for k in [k for k, v in self.refused.items() if k[1] == namespace and v[3] == owner]:
            self.refused.pop(k, None)
        self.cache.drop_owner(namespace, owner)

    async def prune(self, namespace: str, owner: str, owner_uid: str, keep: set[Key]) -> list[Key]:
        """Delete objects this FeatureStore controls that the spec no longer asks for (from the
        cache). Objects merely carrying our labels - PVCs of the Redis StatefulSet, Jobs of the
        materialization CronJob - belong to their own controllers and are left alone."""
        removed = []
        for obj in self.cache.children(namespace, owner):
            k = key(obj)
            if k in keep or not _controlled_by(obj, owner_uid):
                continue
            if await self.kube.delete(k[0], obj["apiVersion"], namespace, k[2]):
                removed.append(k)
            self.cache.forget(k)
        return removed


def _controller(obj: dict[str, Any]) -> dict[str, Any] | None:
    return next((r for r in obj["metadata"].get("ownerReferences") or [] if r.get("controller")), None)


def _controlled_by_ref(obj: dict[str, Any], ref: dict[str, Any]) -> bool:
    """Controlled by ``ref``'s object: its uid, or (a predecessor of the same name, whose children the
    garbage collector has yet to delete) its kind and name. Only who may write ``obj`` can set either."""
    return any(
        r.get("controller")
        and (r.get("uid") == ref.get("uid") or (r.get("kind"), r.get("name")) == (ref.get("kind"), ref.get("name")))
        for r in (obj.get("metadata") or {}).get("ownerReferences") or []
    )


def _controlled_by(obj: dict[str, Any], uid: str) -> bool:
    return any(ref.get("controller") and ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or [])


def _binds(obj: dict[str, Any], role: dict[str, Any]) -> bool:
    """``obj`` is a RoleBinding to ``role``, a Role of its namespace: a refused Role (e.g. someone
    else's of that name) is never bound, so the operator grants nothing through a Role it does not own."""
    ref = obj.get("roleRef") or {}
    return (
        obj["kind"] == "RoleBinding"
        and role["kind"] == "Role"
        and ref.get("kind") == "Role"
        and ref.get("name") == role["metadata"]["name"]
        and obj["metadata"].get("namespace") == role["metadata"].get("namespace")
    )
