"""An in-memory stand-in for ``runtime.kube.Kube`` for unit tests of reconcile steps.

It keeps what the API server would: objects by (kind, namespace, name), resourceVersion and
generation (bumped only when the object changes), our field manager's managedFields entry, and it
refuses what the real API server refuses in the cases the tests need: changes of immutable fields
(Job templates, PVC storage class, StatefulSet claim templates: 422 like the API server) and objects
a test marks as denied (an admission webhook). Like the real facade, it refuses (``UnsafeRequest``,
unsent) a kind, version, namespace, name or label selector no Kubernetes object can have
(``runtime.kube.check_*``; tests/unit/test_kube_names.py). The control-plane tier proves the same against the
real API server; this fake only makes the pipeline's steps unit-testable.
"""

from __future__ import annotations

import builtins
import copy
import itertools
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from featurestore_operator.runtime.kube import (
    FIELD_MANAGER,
    ApiError,
    Kube,
    check_listing,
    check_object,
    check_target,
)
from featurestore_operator.runtime.kube_api import KubeApi

Key = tuple[str, str, str]

#: (kind, dotted path) the API server never lets change after creation
IMMUTABLE = {
    ("Job", "spec.template"),
    ("PersistentVolumeClaim", "spec.storageClassName"),
    ("StatefulSet", "spec.volumeClaimTemplates"),
    ("StatefulSet", "spec.selector"),
    ("Deployment", "spec.selector"),
}


def _get(obj: Mapping[str, Any], path: str) -> Any:
    cur: Any = obj
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, Mapping) else None
    return cur


def _merge(target: dict[str, Any], patch: Mapping[str, Any]) -> None:
    """RFC 7386 JSON merge patch, as the API server applies it (null deletes, lists replace)."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


class FakeKube:
    def __init__(self) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self.versions = itertools.count(1)
        self.calls: list[tuple[str, str]] = []  # (method, kind)
        #: kind/name -> (status, message): refuse applies of these objects like an admission webhook
        self.denied: dict[tuple[str, str], tuple[int, str]] = {}
        self.not_served: set[str] = set()
        #: apiVersions not served (e.g. security.istio.io/v1 on an Istio older than 1.22)
        self.not_served_versions: set[str] = set()

    # -- helpers for tests --------------------------------------------------------------------
    @property
    def writes(self) -> list[tuple[str, str]]:
        return [c for c in self.calls if c[0] in ("PATCH", "POST", "PUT", "DELETE")]

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create/replace an object as a user or another controller would (not counted)."""
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        meta.setdefault("namespace", "")
        meta["resourceVersion"] = str(next(self.versions))
        meta.setdefault("uid", f"uid-{meta['name']}")
        meta.setdefault("generation", 1)
        self.objects[(obj["kind"], meta["namespace"], meta["name"])] = obj
        return copy.deepcopy(obj)

    def set_status(self, kind: str, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        obj = self.objects[(kind, namespace, name)]
        obj["status"] = copy.deepcopy(status)
        obj["metadata"]["resourceVersion"] = str(next(self.versions))
        return copy.deepcopy(obj)

    # -- the Kube interface ---------------------------------------------------------------------
    async def apply(self, obj: Mapping[str, Any], *, force: bool = True) -> dict[str, Any]:
        check_object(obj)
        self.calls.append(("PATCH", obj["kind"]))
        meta = obj["metadata"]
        if (obj["kind"], meta["name"]) in self.denied:
            status, message = self.denied[(obj["kind"], meta["name"])]
            raise ApiError(status, "Forbidden" if status == 403 else "BadRequest", message)
        k = (obj["kind"], meta.get("namespace", ""), meta["name"])
        live = self.objects.get(k)
        desired = copy.deepcopy(dict(obj))
        if live is None:
            desired["metadata"].update(
                resourceVersion=str(next(self.versions)),
                uid=f"uid-{meta['name']}",
                generation=1,
                managedFields=[self._entry(desired)],
            )
            self.objects[k] = desired
            return copy.deepcopy(desired)
        for kind, path in IMMUTABLE:
            if kind == obj["kind"] and _get(desired, path) is not None and _get(desired, path) != _get(live, path):
                raise ApiError(
                    422,
                    "Invalid",
                    f'{kind} "{meta["name"]}" is invalid: {path}: Invalid value: field is immutable',
                    [{"field": path, "message": "field is immutable", "reason": "FieldValueInvalid"}],
                )
        merged = {**copy.deepcopy(live), **{k2: v for k2, v in desired.items() if k2 not in ("metadata", "status")}}
        merged["metadata"] = {**live["metadata"], **desired["metadata"], "managedFields": [self._entry(desired)]}
        for fld in ("resourceVersion", "uid", "generation"):
            merged["metadata"][fld] = live["metadata"][fld]
        if _content(merged) != _content(live):
            merged["metadata"]["resourceVersion"] = str(next(self.versions))
            if merged.get("spec") != live.get("spec"):
                merged["metadata"]["generation"] = live["metadata"]["generation"] + 1
        self.objects[k] = merged
        return copy.deepcopy(merged)

    @staticmethod
    def _entry(obj: Mapping[str, Any]) -> dict[str, Any]:
        fields = sorted(k for k in obj if k not in ("apiVersion", "kind"))
        return {
            "manager": FIELD_MANAGER,
            "operation": "Apply",
            "apiVersion": obj["apiVersion"],
            "fieldsV1": {f"f:{f}": {} for f in fields},
        }

    async def create(self, obj: Mapping[str, Any]) -> dict[str, Any] | None:
        check_object(obj, generated=True)
        self.calls.append(("POST", obj["kind"]))
        meta = obj["metadata"]
        name = meta.get("name") or f"{meta.get('generateName', 'x')}{next(self.versions)}"
        k = (obj["kind"], meta.get("namespace", ""), name)
        if k in self.objects:
            return None
        return self.put({**obj, "metadata": {**meta, "name": name}})

    async def replace(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        check_object(obj)
        self.calls.append(("PUT", obj["kind"]))
        meta = obj["metadata"]
        k = (obj["kind"], meta.get("namespace", ""), meta["name"])
        live = self.objects.get(k)
        if live is None or live["metadata"]["resourceVersion"] != meta.get("resourceVersion"):
            raise ApiError(409, "Conflict", "the object has been modified")
        return self.put(dict(obj))

    async def get(self, kind: str, api_version: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        check_target(kind, api_version, namespace, name)
        self.calls.append(("GET", kind))
        obj = self.objects.get((kind, namespace or "", name))
        return copy.deepcopy(obj) if obj else None

    async def find(self, kind: str, api_version: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        check_target(kind, api_version, namespace, name)
        self.calls.append(("GET", kind))
        obj = self.objects.get((kind, namespace or "", name))
        return copy.deepcopy(obj) if obj else None

    async def list(
        self, kind: str, api_version: str, namespace: str | None, labels: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        check_listing(kind, api_version, namespace, labels)
        self.calls.append(("GET", kind))
        return [
            copy.deepcopy(o)
            for (k, ns, _), o in self.objects.items()
            if k == kind
            and (namespace is None or ns == namespace)
            and all((o["metadata"].get("labels") or {}).get(a) == b for a, b in (labels or {}).items())
        ]

    async def list_with_version(
        self,
        kind: str,
        api_version: str,
        namespace: str | None,
        labels: Mapping[str, str] | None = None,
        each: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> tuple[builtins.list[dict[str, Any]], str | None]:
        items = await self.list(kind, api_version, namespace, labels)
        return [each(o) for o in items] if each else items, str(next(self.versions))

    async def watch(
        self,
        kind: str,
        api_version: str,
        namespace: str | None,
        labels: Mapping[str, str] | None,
        resource_version: str,
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        check_listing(kind, api_version, namespace, labels)
        if False:  # pragma: no cover - an empty async generator
            yield "", {}

    async def delete(self, kind: str, api_version: str, namespace: str | None, name: str) -> bool:
        check_target(kind, api_version, namespace, name)
        self.calls.append(("DELETE", kind))
        return self.objects.pop((kind, namespace or "", name), None) is not None

    async def patch_status(
        self, kind: str, api_version: str, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        check_target(kind, api_version, namespace, name)
        self.calls.append(("PATCH", f"{kind}/status"))
        obj = self.objects.get((kind, namespace, name))
        if obj is None:
            raise ApiError(404, "NotFound", f'{kind} "{name}" not found')
        return self.set_status(kind, namespace, name, patch["status"])

    async def patch_guarded(self, obj: Mapping[str, Any], patch: dict[str, Any]) -> dict[str, Any] | None:
        check_object(obj)
        self.calls.append(("PATCH", obj["kind"]))
        meta = obj["metadata"]
        live = self.objects.get((obj["kind"], meta.get("namespace", ""), meta["name"]))
        if live is None or live["metadata"]["resourceVersion"] != meta.get("resourceVersion"):
            return None
        _merge(live, {k: v for k, v in patch.items() if k != "metadata"})
        live["metadata"].update(patch.get("metadata", {}))
        live["metadata"]["resourceVersion"] = str(next(self.versions))
        return copy.deepcopy(live)

    async def served(self, kind: str, api_version: str, namespace: str | None = None) -> bool:
        old = {"batch/v1beta1", "policy/v1beta1", "autoscaling/v2beta2"}  # a current cluster serves none of these
        return kind not in self.not_served and api_version not in old | self.not_served_versions

    async def close(self) -> None:
        return None


def _content(obj: Mapping[str, Any]) -> Any:
    meta = {k: v for k, v in obj["metadata"].items() if k not in ("resourceVersion", "managedFields")}
    return {**obj, "metadata": meta}


def _satisfy_kube_api(real: Kube, fake: FakeKube) -> tuple[KubeApi, KubeApi]:
    """Never called: mypy (the quality gate) checks here that the facade and this fake both are a KubeApi."""
    return real, fake
