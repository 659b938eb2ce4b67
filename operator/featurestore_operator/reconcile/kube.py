"""A thin async facade over the official kubernetes client: server-side apply, get, delete, list,
status patch and discovery. Blocking calls run in worker threads."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from ..metrics import API_CALLS, API_WRITES
from .kinds import KINDS, Kind, kind_of

FIELD_MANAGER = "featurestore-operator"
log = logging.getLogger(__name__)


def _resource(path: str) -> str:
    """The metric label of a request path: the resource plural (plus "/status"), or "discovery"."""
    parts = path.strip("/").split("/")
    if "namespaces" in parts:
        rest = parts[parts.index("namespaces") + 2 :] or ["namespaces"]
    else:  # /api/v1/<plural>..., /apis/<group>/<version>/<plural>...
        rest = parts[2:] if parts[0] == "api" else parts[3:]
    if not rest:
        return "discovery"
    return rest[0] + ("/" + rest[2] if len(rest) > 2 else "")


class Kube:
    """Every Kubernetes call of the reconciler goes through here (and is counted)."""

    def __init__(self, api: k8s.ApiClient):
        self.api = api
        self.calls = 0
        self.writes = 0

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        self.calls += 1
        resource = _resource(path)
        API_CALLS.labels(resource, method).inc()
        if method in ("PATCH", "POST", "PUT", "DELETE"):
            self.writes += 1
            API_WRITES.labels(resource).inc()

        def run() -> Any:
            m, url, headers, payload, post = self.api.param_serialize(
                method,
                path,
                query_params=query or [],
                body=body,
                header_params={"Content-Type": content_type, "Accept": "application/json"},
                auth_settings=["BearerToken"],
            )
            resp = self.api.call_api(m, url, headers, payload, post, _request_timeout=(10, 60))
            resp.read()
            if resp.status >= 400:
                raise ApiException(http_resp=resp)
            return json.loads(resp.data) if resp.data else None

        return await asyncio.to_thread(run)

    async def apply(self, obj: dict[str, Any], *, force: bool = True) -> dict[str, Any]:
        """Server-side apply with our field manager. An identical apply writes nothing."""
        kind = kind_of(obj)
        meta = obj["metadata"]
        path = kind.path(obj["apiVersion"], meta.get("namespace"), meta["name"])
        query = [("fieldManager", FIELD_MANAGER)] + ([("force", "true")] if force else [])
        return await self._call("PATCH", path, body=obj, query=query, content_type="application/apply-patch+yaml")

    async def create(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        """Plain create (POST): never touches an existing object. None when it already exists."""
        kind = kind_of(obj)
        meta = obj["metadata"]
        try:
            return await self._call(
                "POST",
                kind.path(obj["apiVersion"], meta.get("namespace")),
                body=obj,
                query=[("fieldManager", FIELD_MANAGER)],
            )
        except ApiException as err:
            if err.status == 409:
                return None
            raise

    async def get(self, kind: str, api_version: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            return await self._call("GET", KINDS[kind].path(api_version, namespace, name))
        except ApiException as err:
            if err.status == 404:
                return None
            raise

    async def list(
        self, kind: str, api_version: str, namespace: str | None, label_selector: str
    ) -> list[dict[str, Any]]:
        try:
            out = await self._call(
                "GET", KINDS[kind].path(api_version, namespace), query=[("labelSelector", label_selector)]
            )
        except ApiException as err:
            if err.status == 404:  # kind not served (optional CRD absent)
                return []
            raise
        return out.get("items", [])

    async def delete(self, kind: str, api_version: str, namespace: str | None, name: str) -> bool:
        try:
            await self._call(
                "DELETE", KINDS[kind].path(api_version, namespace, name), body={"propagationPolicy": "Background"}
            )
            return True
        except ApiException as err:
            if err.status == 404:
                return False
            raise

    async def patch_status(
        self, kind: Kind, api_version: str, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        return await self._call(
            "PATCH",
            kind.path(api_version, namespace, name, "status"),
            body=patch,
            content_type="application/merge-patch+json",
        )

    async def add_finalizer(
        self, kind: Kind, api_version: str, body: dict[str, Any], finalizer: str
    ) -> dict[str, Any] | None:
        """Add ``finalizer`` to the object ``body`` as read (merge patch guarded by its resourceVersion).
        None when the object changed (or went) since it was read: read it again before retrying."""
        meta = body["metadata"]
        patch = {
            "metadata": {
                "finalizers": [*(meta.get("finalizers") or []), finalizer],
                "resourceVersion": meta["resourceVersion"],
            }
        }
        try:
            return await self._call(
                "PATCH",
                kind.path(api_version, meta["namespace"], meta["name"]),
                body=patch,
                content_type="application/merge-patch+json",
            )
        except ApiException as err:
            if err.status in (404, 409):
                return None
            raise

    async def get_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        obj = await self.get("Secret", "v1", namespace, name)
        if obj is None:
            return None
        return {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}

    async def served(self, group_version: str) -> set[str]:
        """Kinds served under one group/version (empty when the group/version is not served)."""
        path = f"/api/{group_version}" if "/" not in group_version else f"/apis/{group_version}"
        try:
            out = await self._call("GET", path)
        except ApiException as err:
            if err.status == 404:
                return set()
            raise
        return {r["kind"] for r in out.get("resources", []) if "/" not in r["name"]}
