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
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from ..api import FeatureStore, FeatureStoreStatus, OperatorConfig
from ..api.status import CloudStatus, Operations

if TYPE_CHECKING:
    from .policy import Verdict

E = TypeVar("E")
M = TypeVar("M", Operations, CloudStatus)


def _fields(model: Operations | CloudStatus) -> dict[str, Any]:
    return {k: getattr(model, k) for k in model.model_fields_set}


def _combine(a: M | None, b: M | None) -> M | None:
    if a is None or b is None:
        return b if a is None else a
    return type(a).model_construct(a.model_fields_set | b.model_fields_set, **{**_fields(a), **_fields(b)})


@dataclass(frozen=True)
class StatusUpdate:
    """What a backend records in status (typed: api/status.py). Only the fields a model was given
    are merged (pydantic's ``model_fields_set``; ``None`` clears a field), the others stay as they are:
    ``StatusUpdate(operations=Operations(memorystore=None))`` forgets the operation, nothing else."""

    operations: Operations | None = None
    cloud: CloudStatus | None = None

    def __bool__(self) -> bool:
        return any(m is not None and m.model_fields_set for m in (self.operations, self.cloud))

    def __or__(self, other: StatusUpdate) -> StatusUpdate:
        """Both updates; ``other``'s fields win."""
        return StatusUpdate(_combine(self.operations, other.operations), _combine(self.cloud, other.cloud))

    def applied_to(self, status: FeatureStoreStatus) -> FeatureStoreStatus:
        update: dict[str, Any] = {}
        if self.operations is not None:
            update["operations"] = status.operations.model_copy(update=_fields(self.operations))
        if self.cloud is not None:
            update["cloud"] = status.cloud.model_copy(update=_fields(self.cloud))
        return status.model_copy(update=update) if update else status


@dataclass(frozen=True)
class BackendContext:
    """What a backend may read besides the FeatureStore."""

    config: OperatorConfig
    #: Reads a Secret's decoded data in the FeatureStore's namespace; None when it does not exist.
    get_secret: Callable[[str], Awaitable[dict[str, str] | None]]
    #: The admin policy's verdict on this store, computed once per pass by reconcile (None: the
    #: backend computes it, e.g. called outside a pass).
    verdict: Verdict | None = None
    #: Reads a ServiceAccount (the whole object) in the FeatureStore's namespace; None when absent.
    get_service_account: Callable[[str], Awaitable[dict[str, Any] | None]] | None = None


@dataclass(frozen=True)
class Ready(Generic[E]):
    endpoint: E
    message: str = ""
    #: Data the FeatureStore's online-store Secret must hold (password, ca.crt), if any.
    secret: dict[str, str] | None = None
    #: What to record in status (e.g. a finished operation forgotten).
    status: StatusUpdate = field(default_factory=StatusUpdate)
    #: Condition reason: "Ready", or a warning that leaves the store serving (e.g.
    #: "ImmutableFieldChanged": the spec asks for something the operator declines to do).
    reason: str = "Ready"


@dataclass(frozen=True)
class Pending:
    reason: str
    message: str
    status: StatusUpdate = field(default_factory=StatusUpdate)
    #: Seconds until the state is worth looking at again.
    retry_after: float = 10.0


@dataclass(frozen=True)
class Failed:
    reason: str
    message: str
    #: False for errors only a spec/permission change can fix (retried slowly).
    retryable: bool = False
    status: StatusUpdate = field(default_factory=StatusUpdate)
    retry_after: float = 60.0


Outcome = Ready[E] | Pending | Failed


@dataclass(frozen=True)
class Deleted:
    """Result of delete(): done, or still in progress (the finalizer stays)."""

    done: bool
    message: str = ""
    status: StatusUpdate = field(default_factory=StatusUpdate)
    retry_after: float = 10.0


class Backend(Protocol[E]):
    """One store kind (Memorystore, GCS, in-cluster, external)."""

    async def ensure(self, fs: FeatureStore, ctx: BackendContext) -> Outcome[E]: ...

    async def delete(self, fs: FeatureStore, ctx: BackendContext) -> Deleted: ...

    def needs_cleanup(self, fs: FeatureStore) -> bool:
        """Whether deleting the FeatureStore must wait for this backend (keeps the finalizer)."""
        ...
