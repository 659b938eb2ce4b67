"""The observed-state cache: the last seen state of the objects the operator owns, as slim copies
(fed by the watches, by apply answers and by reads by name), with the drift key of each, so the
applier (``reconcile.applier``) re-applies only what changed or drifted."""

from __future__ import annotations

import hashlib
import json
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from ..api.labels import OWNER_LABEL
from .kinds import Key, key
from .kube import FIELD_MANAGER

#: metadata fields reconcile reads from cached objects (conditions, prune, run order)
_META = ("name", "namespace", "uid", "generation", "resourceVersion", "creationTimestamp", "deletionTimestamp")
#: of those, the ones many objects share (interned: one copy each); the others are unique per
#: object, and interning them would only grow the interpreter's table of interned strings (~5 MiB
#: at 1000 stores: bench/memory.py)
_SHARED_META = frozenset({"namespace"})
#: status fields reconcile reads, by kind (conditions.py); other kinds keep no status
_STATUS = {
    "Deployment": ("observedGeneration", "replicas", "availableReplicas", "conditions"),
    "StatefulSet": ("readyReplicas",),
    "Job": ("succeeded", "failed", "conditions", "completionTime"),  # completionTime: freshness lag
    "CronJob": ("lastScheduleTime", "lastSuccessfulTime"),
}


#: The operator's objects carry a handful of labels and owners. Any object the watches send is kept,
#: and a namespace editor can label their own objects as ours: one with more labels than this keeps
#: only the labels of the operator's domains, at most this many (5000 labels cost ~1.5 MB each).
MAX_LABELS = 32
#: ownerReferences kept of an object with more (the controller's first)
MAX_OWNERS = 8
_OUR_LABEL_DOMAINS = ("app.kubernetes.io/", "featurestore.kubeflow.org/")


def _labels(labels: dict[str, Any]) -> dict[str, Any]:
    items = list(labels.items())
    if len(items) > MAX_LABELS:
        items = [(k, v) for k, v in items if k.startswith(_OUR_LABEL_DOMAINS)][:MAX_LABELS]
    return {sys.intern(k): _str(v) for k, v in items}


def _owners(owners: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if len(owners) > MAX_OWNERS:
        owners = sorted(owners, key=lambda r: not r.get("controller"))[:MAX_OWNERS]
    return [{"kind": _str(r.get("kind")), "uid": _str(r.get("uid")), "controller": r.get("controller")} for r in owners]


def _str(v: Any) -> Any:
    # the same label keys and values, kinds, API versions, owner uids and condition reasons repeat
    # in many objects: one copy each
    return sys.intern(v) if isinstance(v, str) else v


def slim(obj: dict[str, Any], keep_data: bool = False) -> dict[str, Any]:
    """What the cache keeps of an object: what reconcile reads from cached objects (conditions,
    prune, run order, the online-store Secret) and nothing else: identifying metadata, labels,
    ownerReferences (kind, uid, controller), the scalar fields of spec (CronJob schedule,
    replicas), the status fields conditions.py reads for the kinds it reads them of (Deployment
    conditions reduced to type, status, reason, message), and a Secret's data only with
    ``keep_data`` (Secrets the operator itself applied: a user's Secret carrying our labels is never
    held in memory).

    Memory: full objects were ~270 KB of Python objects per FeatureStore (14 children,
    managedFields alone ~45% of their JSON); metadata without managedFields plus whole status
    still ~65 KB (bench/memory.py with tracemalloc). Strings that repeat across objects are
    interned (strings unique to one object are not: see ``_SHARED_META``), and no container refers
    back into ``obj``, so the parsed answer's dicts and lists can be freed. Labels and owners are
    bounded (:data:`MAX_LABELS`, :data:`MAX_OWNERS`): a tenant's object labelled as ours is held too."""
    meta = obj.get("metadata") or {}
    kind = obj.get("kind")
    small: dict[str, Any] = {k: _str(meta[k]) if k in _SHARED_META else meta[k] for k in _META if k in meta}
    if meta.get("labels"):
        small["labels"] = _labels(meta["labels"])
    if meta.get("ownerReferences"):
        small["ownerReferences"] = _owners(meta["ownerReferences"])
    out: dict[str, Any] = {"apiVersion": _str(obj.get("apiVersion")), "kind": _str(kind), "metadata": small}
    spec = obj.get("spec")
    if isinstance(spec, dict):
        out["spec"] = {sys.intern(k): _str(v) for k, v in spec.items() if not isinstance(v, (dict, list))}
    status = obj.get("status")
    if isinstance(status, dict) and kind in _STATUS:
        st = {k: status[k] for k in _STATUS[kind] if k in status}
        if "conditions" in st:
            st["conditions"] = [
                {k: _str(c[k]) for k in ("type", "status", "reason", "message") if k in c}
                for c in st["conditions"] or []
            ]
        out["status"] = st
    if kind == "Secret" and keep_data:
        out["type"] = _str(obj.get("type"))
        out["data"] = dict(obj.get("data") or {})
    return out


def drift_key(obj: dict[str, Any]) -> str:
    """What moves when someone else changes what we set, and only then.

    The digest of our field manager's managedFields entries: an edit of a field we set, by anyone
    else, moves that field's ownership away from us (or, for an equal value, shares it), so our
    entry changes; writes to fields we do not set - the token controller adding ``secrets`` to a
    ServiceAccount, a label of another tool, status updates - leave it as it is. The generation is
    part of the key where the kind has one (any spec change: restore our fields over it). Objects
    without an entry of ours fall back to the resourceVersion (any change counts)."""
    meta = obj.get("metadata") or {}
    ours = [
        (e.get("apiVersion"), e.get("operation"), e.get("subresource"), e.get("fieldsV1"))
        for e in meta.get("managedFields") or []
        if e.get("manager") == FIELD_MANAGER
    ]
    gen = meta.get("generation")
    prefix = f"g{gen}:" if gen is not None else ""
    if not ours:
        return prefix + f"r{meta.get('resourceVersion')}"
    # the API server serializes fieldsV1 as stored: the same key order in apply answers and watch events
    digest = hashlib.blake2b(json.dumps(ours, separators=(",", ":")).encode(), digest_size=12).hexdigest()
    return prefix + "m" + digest


def _revision(obj: dict[str, Any]) -> int:
    """The object's resourceVersion as a number (the API server's etcd revision), -1 when it is not
    one: such objects always replace what the cache holds."""
    rv = (obj.get("metadata") or {}).get("resourceVersion") or ""
    return int(rv) if rv.isdigit() else -1


@dataclass
class ObservedCache:
    """Last seen state of owned objects, keyed by (kind, namespace, name), as :func:`slim` copies."""

    objects: dict[Key, dict[str, Any]] = field(default_factory=dict)
    #: drift key of each object as last seen (computed from the full object: slim drops managedFields)
    drift: dict[Key, str] = field(default_factory=dict)
    #: what we applied: key -> (desired hash, drift key of the object right after our apply)
    applied: dict[Key, tuple[bytes, str]] = field(default_factory=dict)
    #: owners whose children were seen: (namespace, owner name) -> keys
    by_owner: dict[tuple[str, str], set[Key]] = field(default_factory=lambda: defaultdict(set))
    #: objects held, by kind
    counts: Counter[str] = field(default_factory=Counter)

    def record(self, obj: dict[str, Any], keep_data: bool = False) -> dict[str, Any]:
        """Keep the :func:`slim` copy of ``obj`` (as watched or as answered), indexed by owner. An
        apply's answer can reach us after the watch event of a later change (a controller's status
        update while the answer waited for the event loop): the later one is kept, else the cache
        would hold the old status until the object changes again (a store stuck "0 of 1 available"
        with its Deployment available: bench/memory.py under load)."""
        k = key(obj)
        old = self.objects.get(k)
        if old is not None and _revision(obj) < _revision(old):
            return old
        if old is None:
            self.counts[k[0]] += 1
        self.objects[k] = small = slim(obj, keep_data)
        owner = (small["metadata"].get("labels") or {}).get(OWNER_LABEL)
        if owner:
            self.by_owner[(k[1], owner)].add(k)
        return small

    def observe(self, obj: dict[str, Any]) -> bool:
        """Record a watched object. Returns True when it drifted from what we applied."""
        k = key(obj)
        mine = self.applied.get(k)
        self.record(obj, keep_data=mine is not None)
        if mine is None:  # not applied by us (yet): its drift key is taken from our apply's answer
            self.drift.pop(k, None)
            return False
        self.drift[k] = drift_key(obj)
        return mine[1] != self.drift[k]

    def forget(self, k: Key) -> bool:
        """Record a deletion. Returns True when it was one of ours (to be restored)."""
        if self.objects.pop(k, None) is not None:
            self.counts[k[0]] -= 1
        self.drift.pop(k, None)
        for keys in self.by_owner.values():
            keys.discard(k)
        return self.applied.pop(k, None) is not None

    def children(self, namespace: str, owner: str) -> list[dict[str, Any]]:
        return [self.objects[k] for k in self.by_owner.get((namespace, owner), set()) if k in self.objects]

    def drop_owner(self, namespace: str, owner: str) -> None:
        for k in self.by_owner.pop((namespace, owner), set()):
            if self.objects.pop(k, None) is not None:
                self.counts[k[0]] -= 1
            self.drift.pop(k, None)
            self.applied.pop(k, None)
