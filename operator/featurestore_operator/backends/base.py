"""The backend contract: ``ensure(fs, ctx) -> Ready | Pending | Failed`` and ``delete(fs, ctx)``.

Backends talk to their cloud (or compute in-cluster settings); they do not write Kubernetes
objects. What must land in the cluster comes back in the outcome (``secret``: the data of the
FeatureStore's online-store Secret) and reconcile applies it, so all Kubernetes writes go through
one server-side-apply path. Blocking cloud clients run in their own thread pool (``gcp.blocking``);
long-running operations are recorded in status and polled on later reconciles, never awaited.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from ..api import FeatureStore, OperatorConfig

E = TypeVar("E")


@dataclass(frozen=True)
class BackendContext:
    """What a backend may read besides the FeatureStore."""

    config: OperatorConfig
    #: Reads a Secret's decoded data in the FeatureStore's namespace; None when it does not exist.
    get_secret: Callable[[str], Awaitable[dict[str, str] | None]]
    #: Reads a ServiceAccount (the whole object) in the FeatureStore's namespace; None when absent.
    get_service_account: Callable[[str], Awaitable[dict[str, Any] | None]] | None = None


@dataclass(frozen=True)
class Ready(Generic[E]):
    endpoint: E
    message: str = ""
    #: Data the FeatureStore's online-store Secret must hold (password, ca.crt), if any.
    secret: dict[str, str] | None = None
    #: Status fields to merge (e.g. {"operations": {"memorystore": None}}).
    status: dict[str, Any] = field(default_factory=dict)
    #: Condition reason: "Ready", or a warning that leaves the store serving (e.g.
    #: "ImmutableFieldChanged": the spec asks for something the operator declines to do).
    reason: str = "Ready"


@dataclass(frozen=True)
class Pending:
    reason: str
    message: str
    status: dict[str, Any] = field(default_factory=dict)
    #: Seconds until the state is worth looking at again.
    retry_after: float = 10.0


@dataclass(frozen=True)
class Failed:
    reason: str
    message: str
    #: False for errors only a spec/permission change can fix (retried slowly).
    retryable: bool = False
    status: dict[str, Any] = field(default_factory=dict)
    retry_after: float = 60.0


Outcome = Ready[E] | Pending | Failed


@dataclass(frozen=True)
class Deleted:
    """Result of delete(): done, or still in progress (the finalizer stays)."""

    done: bool
    message: str = ""
    status: dict[str, Any] = field(default_factory=dict)
    retry_after: float = 10.0


class Backend(Protocol[E]):
    """One store kind (Memorystore, GCS, in-cluster, external)."""

    async def ensure(self, fs: FeatureStore, ctx: BackendContext) -> Outcome[E]: ...

    async def delete(self, fs: FeatureStore, ctx: BackendContext) -> Deleted: ...

    def needs_cleanup(self, fs: FeatureStore) -> bool:
        """Whether deleting the FeatureStore must wait for this backend (keeps the finalizer)."""
        ...
