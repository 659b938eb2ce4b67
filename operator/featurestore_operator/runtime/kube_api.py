"""What the operator asks of the Kubernetes API: the protocol the client facade
(:class:`featurestore_operator.runtime.kube.Kube`, over lightkube) and the unit tests' in-memory
stand-in (tests/support/fake_kube.py ``FakeKube``) both satisfy. mypy checks both against it
(tests/support/fake_kube.py ``_satisfy_kube_api``), so a method added to one and not the other, or a
signature that drifts, fails the quality gate instead of a test run.

Objects are plain dicts. Errors are ``runtime.kube.ApiError``; a request no Kubernetes object
could match (a kind, namespace, name or selector that is not well-formed) is refused unsent.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Protocol


class KubeApi(Protocol):
    async def apply(self, obj: Mapping[str, Any], *, force: bool = True) -> dict[str, Any]:
        """Server-side apply with the operator's field manager; an identical apply writes nothing."""
        ...

    async def create(self, obj: Mapping[str, Any]) -> dict[str, Any] | None:
        """Plain create; None when the object exists already."""
        ...

    async def replace(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """PUT guarded by the object's resourceVersion (409 when stale)."""
        ...

    async def get(self, kind: str, api_version: str, namespace: str | None, name: str) -> dict[str, Any] | None: ...

    async def find(self, kind: str, api_version: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The object by GET or by a field-selected list, whichever the kinds table grants."""
        ...

    async def list(
        self, kind: str, api_version: str, namespace: str | None, labels: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]: ...

    async def list_with_version(
        self,
        kind: str,
        api_version: str,
        namespace: str | None,
        labels: Mapping[str, str] | None = None,
        each: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> tuple[builtins.list[dict[str, Any]], str | None]:
        """Objects (each passed through ``each``) and the list's resourceVersion; ([], None) when not served."""
        ...

    def watch(
        self,
        kind: str,
        api_version: str,
        namespace: str | None,
        labels: Mapping[str, str] | None,
        resource_version: str,
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """Events after ``resource_version`` until the server ends the request."""
        ...

    async def delete(self, kind: str, api_version: str, namespace: str | None, name: str) -> bool:
        """Delete (background propagation); False when it was already gone."""
        ...

    async def patch_status(
        self, kind: str, api_version: str, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any]: ...

    async def patch_guarded(self, obj: Mapping[str, Any], patch: dict[str, Any]) -> dict[str, Any] | None:
        """Merge patch guarded by the resourceVersion read; None when it changed or went."""
        ...

    async def served(self, kind: str, api_version: str, namespace: str | None = None) -> bool: ...

    async def close(self) -> None: ...
