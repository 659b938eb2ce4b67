"""The operator's Kubernetes client: a small async facade over lightkube.

Objects are plain dicts (lightkube generic resources, one class per kind and version, made on first
use), so the same code serves built-in kinds and CRDs, and nothing imports a generated model per
kind. Every request is counted (``metrics``). Errors are :class:`ApiError`, carrying the API
server's own message and field causes.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx2
from lightkube import AsyncClient, KubeConfig
from lightkube.core.exceptions import ApiError as LightkubeApiError
from lightkube.generic_resource import create_global_resource, create_namespaced_resource
from lightkube.types import CascadeType, OnErrorAction, OnErrorResult, PatchType

from ..api import names
from ..metrics import API_CALLS, API_WRITES
from .kinds import KINDS, Kind

FIELD_MANAGER = "featurestore-operator"
log = logging.getLogger(__name__)

#: objects per list request, where objects can be large: bounds one answer held in memory at once
#: (a user may label big Secrets as ours; their data is dropped right after parsing, see applier.slim)
LIST_CHUNKS = {"Secret": 10, "ConfigMap": 50, "FeatureStore": 5, "CustomResourceDefinition": 20}
#: a server-side timeout for watches: the API server ends the request after it, we resume from the last version
WATCH_TIMEOUT = 300


@dataclass
class ApiError(Exception):
    """A failed request, as the API server explained it."""

    status: int
    reason: str = ""
    message: str = ""
    #: field causes (``details.causes``): [{"field": ..., "message": ..., "reason": ...}]
    causes: list[dict[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        return self.describe()

    @property
    def gone(self) -> bool:
        return self.status == 404

    @property
    def namespace_terminating(self) -> bool:
        """Refused because the namespace is being deleted (nothing can be created there any more)."""
        return self.status == 403 and (
            any(c.get("reason") == "NamespaceTerminating" for c in self.causes) or "being terminated" in self.message
        )

    def describe(self) -> str:
        """The API server's message with its field causes (``spec.x: must be ...``) when they add to it."""
        extra = [
            f"{c.get('field', '')}: {c.get('message', '')}".strip(": ")
            for c in self.causes
            if c.get("message") and c["message"] not in self.message
        ]
        return (self.message or self.reason or f"HTTP {self.status}") + (f" [{'; '.join(extra)}]" if extra else "")

    @classmethod
    def from_http(cls, err: httpx2.HTTPStatusError) -> ApiError:
        """Any HTTP error: lightkube's (a decoded Status) or a bare one (e.g. "404 page not found"
        for a resource the API server does not serve: plain text, no Status)."""
        if isinstance(err, LightkubeApiError):
            return cls.from_lightkube(err)
        return cls(
            status=err.response.status_code,
            reason=err.response.reason_phrase or "",
            message=err.response.text[:500].strip(),
        )

    @classmethod
    def from_lightkube(cls, err: LightkubeApiError) -> ApiError:
        st = err.status
        details = st.details
        causes = (
            [
                {"field": c.field or "", "message": c.message or "", "reason": c.reason or ""}
                for c in (details.causes or [])
            ]
            if details
            else []
        )
        return cls(status=st.code or 0, reason=st.reason or "", message=st.message or "", causes=causes)


class UnsafeRequest(ApiError):
    """A request the facade refused to send: its kind, version, namespace, name or label selector is
    not one a Kubernetes object can have (status 400, as the API server would answer a bad name)."""


def _refuse(kind: str, err: Exception) -> UnsafeRequest:
    return UnsafeRequest(400, "UnsafeName", f"refused to send a {kind} request: {err}")


def _scope(kind: str, api_version: str, namespace: str | None, *, listing: bool = False) -> None:
    """``kind`` in ``api_version`` is one of the table's, and ``namespace`` a namespace name where the
    kind is namespaced (None: all namespaces, for list/watch only) and absent where it is not."""
    k = KINDS.get(kind)
    if k is None or api_version not in k.api_versions():
        raise _refuse(kind, ValueError(f"{kind} {api_version!r} is not a kind/version the operator uses"))
    try:
        if not k.namespaced:
            if namespace:
                raise names.UnsafeName(f"{kind} is cluster-scoped: no namespace ({namespace!r})")
        elif namespace is not None or not listing:
            names.namespace(namespace)
    except names.UnsafeName as err:
        raise _refuse(kind, err) from None


def check_target(kind: str, api_version: str, namespace: str | None, name: object) -> None:
    """Refuse (:class:`UnsafeRequest`) a request for one object whose URL would not be
    ``/api(s)/GROUP/VERSION[/namespaces/NAMESPACE]/PLURAL/NAME`` of that object."""
    _scope(kind, api_version, namespace)
    try:
        names.object_name(name, f"{kind} name")
    except names.UnsafeName as err:
        raise _refuse(kind, err) from None


def check_object(obj: Mapping[str, Any], *, generated: bool = False) -> None:
    """:func:`check_target` for an object's kind, apiVersion, namespace and name (``generated``:
    or its generateName, as a name prefix, for a create)."""
    meta = obj.get("metadata") or {}
    kind = str(obj.get("kind"))
    name = meta.get("name")
    if generated and name is None and isinstance(meta.get("generateName"), str):
        name = meta["generateName"] + "x"
    check_target(kind, str(obj.get("apiVersion")), meta.get("namespace"), name)


def check_listing(kind: str, api_version: str, namespace: str | None, labels: Mapping[str, str] | None) -> None:
    """Refuse a list/watch outside ``namespace`` (None: all) or with a selector that is not plain labels."""
    _scope(kind, api_version, namespace, listing=True)
    try:
        for k, v in (labels or {}).items():
            names.label(k, v)
    except names.UnsafeName as err:
        raise _refuse(kind, err) from None


def _resource_label(kind: Kind, sub: str | None = None) -> str:
    return kind.plural + (f"/{sub}" if sub else "")


#: lightkube's generic resource classes, one per (kind, apiVersion) in the process (lightkube
#: refuses a second class for the same resource)
_CLASSES: dict[tuple[str, str], Any] = {}


class Kube:
    """Every Kubernetes request of the operator goes through here (and is counted)."""

    def __init__(self, client: AsyncClient):
        self.client = client

    @classmethod
    def from_environment(cls) -> Kube:
        """In-cluster credentials in a pod, else the kubeconfig (KUBECONFIG). Never through a proxy."""
        config = KubeConfig.from_env()
        return cls(
            AsyncClient(
                config, field_manager=FIELD_MANAGER, trust_env=False, timeout=httpx2.Timeout(30.0, connect=10.0)
            )
        )

    def resource(self, kind: str, api_version: str) -> Any:
        """The lightkube generic resource class of ``kind`` in ``api_version`` (made once)."""
        cached = _CLASSES.get((kind, api_version))
        if cached is None:
            k = KINDS[kind]
            group, _, version = api_version.rpartition("/")
            make = create_namespaced_resource if k.namespaced else create_global_resource
            cached = _CLASSES[(kind, api_version)] = make(group, version, kind, k.plural)
        return cached

    async def _call(self, method: str, kind: str, coro: Any, sub: str | None = None) -> Any:
        label = _resource_label(KINDS[kind], sub)
        API_CALLS.labels(label, method).inc()
        if method in ("PATCH", "POST", "PUT", "DELETE"):
            API_WRITES.labels(label).inc()
        try:
            return await coro
        except httpx2.HTTPStatusError as err:
            raise ApiError.from_http(err) from None

    async def apply(self, obj: Mapping[str, Any], *, force: bool = True) -> dict[str, Any]:
        """Server-side apply with our field manager. An identical apply writes nothing."""
        check_object(obj)
        meta = obj["metadata"]
        res = self.resource(obj["kind"], obj["apiVersion"])
        return dict(
            await self._call(
                "PATCH",
                obj["kind"],
                self.client.patch(
                    res,
                    meta["name"],
                    dict(obj),
                    namespace=meta.get("namespace"),
                    patch_type=PatchType.APPLY,
                    field_manager=FIELD_MANAGER,
                    force=force,
                ),
            )
        )

    async def create(self, obj: Mapping[str, Any]) -> dict[str, Any] | None:
        """Plain create: never touches an existing object. None when it already exists."""
        check_object(obj, generated=True)
        res = self.resource(obj["kind"], obj["apiVersion"])
        try:
            return dict(await self._call("POST", obj["kind"], self.client.create(res(dict(obj)))))
        except ApiError as err:
            if err.status == 409:
                return None
            raise

    async def replace(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """PUT: replace the object as given (guarded by its metadata.resourceVersion; 409 if stale)."""
        check_object(obj)
        res = self.resource(obj["kind"], obj["apiVersion"])
        return dict(await self._call("PUT", obj["kind"], self.client.replace(res(dict(obj)))))

    async def get(self, kind: str, api_version: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        check_target(kind, api_version, namespace, name)
        res = self.resource(kind, api_version)
        try:
            return dict(await self._call("GET", kind, self.client.get(res, name, namespace=namespace)))
        except ApiError as err:
            if err.gone:
                return None
            raise

    async def find(self, kind: str, api_version: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The object ``name`` or None, whichever way the kinds table lets the operator read it: a GET
        where it holds ``get`` (Secrets and ConfigMaps: it may not list Secrets), else a list with a
        field selector (an object it did not create, unlabelled, is in no watch). Used by the applier
        before it first applies an object (no adoption). ``name`` must be a DNS subdomain: a ``,`` or
        ``=`` would add selectors of its own."""
        check_target(kind, api_version, namespace, name)  # a DNS subdomain: no "," or "=" in the selector
        if "get" in KINDS[kind].verbs:
            return await self.get(kind, api_version, namespace, name)
        res = self.resource(kind, api_version)
        API_CALLS.labels(_resource_label(KINDS[kind]), "GET").inc()
        listing = self.client.list(
            res, namespace=namespace if KINDS[kind].namespaced else None, fields={"metadata.name": name}
        )
        try:
            items = [dict(o) async for o in listing]
        except httpx2.HTTPStatusError as err:
            raise ApiError.from_http(err) from None
        return items[0] if items else None

    async def list(
        self, kind: str, api_version: str, namespace: str | None, labels: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        """Objects of a kind (server-side label selection). Empty when the kind is not served."""
        items, _ = await self.list_with_version(kind, api_version, namespace, labels)
        return items

    async def list_with_version(
        self,
        kind: str,
        api_version: str,
        namespace: str | None,
        labels: Mapping[str, str] | None = None,
        each: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> tuple[builtins.list[dict[str, Any]], str | None]:
        """Objects and the list's resourceVersion (to watch from); ([], None) when the kind is not served.
        ``each``: applied to every object as it arrives (e.g. to drop what is not kept), so the list
        holds only its results, never every whole object at once."""
        check_listing(kind, api_version, namespace, labels)
        res = self.resource(kind, api_version)
        API_CALLS.labels(_resource_label(KINDS[kind]), "GET").inc()
        listing = self.client.list(
            res,
            namespace=namespace or "*" if KINDS[kind].namespaced else None,
            labels=dict(labels) if labels else None,
            chunk_size=LIST_CHUNKS.get(kind, 500),
        )
        try:
            items = [each(dict(o)) if each else dict(o) async for o in listing]
        except httpx2.HTTPStatusError as err:
            if err.response.status_code == 404:
                return [], None
            raise ApiError.from_http(err) from None
        return items, listing.resourceVersion

    async def watch(
        self,
        kind: str,
        api_version: str,
        namespace: str | None,
        labels: Mapping[str, str] | None,
        resource_version: str,
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """Events after ``resource_version`` until the server ends the request (or an error: ApiError)."""
        check_listing(kind, api_version, namespace, labels)
        res = self.resource(kind, api_version)
        API_CALLS.labels(_resource_label(KINDS[kind]), "WATCH").inc()
        stream = self.client.watch(
            res,
            namespace=namespace or "*" if KINDS[kind].namespaced else None,
            labels=dict(labels) if labels else None,
            resource_version=resource_version,
            server_timeout=WATCH_TIMEOUT,
            on_error=_stop_on_close,
        )
        try:
            async for event_type, obj in stream:
                yield event_type, dict(obj)
        except httpx2.HTTPStatusError as err:
            raise ApiError.from_http(err) from None

    async def delete(self, kind: str, api_version: str, namespace: str | None, name: str) -> bool:
        """Delete (background propagation). False when it was already gone."""
        check_target(kind, api_version, namespace, name)
        res = self.resource(kind, api_version)
        try:
            await self._call("DELETE", kind, self.client.delete(res, name, namespace=namespace, cascade=_BACKGROUND))
            return True
        except ApiError as err:
            if err.gone:
                return False
            raise

    async def patch_status(
        self, kind: str, api_version: str, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        check_target(kind, api_version, namespace, name)
        res = self.resource(kind, api_version)
        return dict(
            await self._call(
                "PATCH",
                kind,
                self.client.patch(res.Status, name, patch, namespace=namespace, patch_type=PatchType.MERGE),
                sub="status",
            )
        )

    async def patch_guarded(self, obj: Mapping[str, Any], patch: dict[str, Any]) -> dict[str, Any] | None:
        """Merge-patch ``obj`` as read (guarded by its resourceVersion). None when it changed or went
        since it was read: read it again before retrying."""
        check_object(obj)
        meta = obj["metadata"]
        body = {**patch, "metadata": {**patch.get("metadata", {}), "resourceVersion": meta["resourceVersion"]}}
        res = self.resource(obj["kind"], obj["apiVersion"])
        try:
            return dict(
                await self._call(
                    "PATCH",
                    obj["kind"],
                    self.client.patch(
                        res, meta["name"], body, namespace=meta.get("namespace"), patch_type=PatchType.MERGE
                    ),
                )
            )
        except ApiError as err:
            if err.status in (404, 409):
                return None
            raise

    async def served(self, kind: str, api_version: str, namespace: str | None = None) -> bool:
        """Whether the cluster serves ``kind`` in ``api_version``: a one-item list (in ``namespace``, or
        cluster-wide) answered 404 means no. RBAC is checked before the path is resolved, so a
        namespace-restricted operator must name a namespace it may list in."""
        check_listing(kind, api_version, namespace, None)
        res = self.resource(kind, api_version)
        API_CALLS.labels("discovery", "GET").inc()
        scope = (namespace or "*") if KINDS[kind].namespaced else None
        try:
            async for _ in self.client.list(res, namespace=scope, chunk_size=1):
                break
        except httpx2.HTTPStatusError as err:
            if err.response.status_code == 404:
                return False
            raise ApiError.from_http(err) from None
        return True

    async def close(self) -> None:
        await self.client.close()


def _stop_on_close(err: Exception, count: int) -> OnErrorResult:
    """Hand every watch failure to our watch loop (``runtime.watches``): it relists on 410 Gone
    and backs off on anything else, and knows which kind it is watching."""
    return OnErrorResult(OnErrorAction.RAISE)


_BACKGROUND = CascadeType.BACKGROUND
