"""Shared GCP plumbing: one retry policy for transient errors and one mapping of permanent errors to
conditions. Used by every GCP backend so faults look the same everywhere."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar

import requests
from google.api_core import exceptions as gexc
from google.api_core import retry as gretry

from ..api import OperatorConfig
from .base import Deleted, Failed

T = TypeVar("T")
P = TypeVar("P")
W = TypeVar("W")
log = logging.getLogger(__name__)

#: Errors worth retrying in place: rate limits, server errors, timeouts, dropped connections.
#: The REST transport raises requests' own Timeout/ConnectionError, which google-api-core's
#: if_transient_error does not cover, so they are listed here.
TRANSIENT = (
    gexc.TooManyRequests,
    gexc.InternalServerError,
    gexc.BadGateway,
    gexc.ServiceUnavailable,
    gexc.GatewayTimeout,
    gexc.DeadlineExceeded,
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
)


#: Default total time of a call's retries (OperatorConfig.cloud_retry_seconds, set by :func:`configure`).
_retry_seconds = 60.0


def configure(config: OperatorConfig) -> None:
    """Apply the operator's retry budget (FSO_CLOUD_RETRY_SECONDS) to every later call of this process."""
    global _retry_seconds
    _retry_seconds = config.cloud_retry_seconds


def retry_policy(timeout: float | None = None) -> gretry.Retry:
    """Exponential backoff with jitter, bounded in total time (google-api-core); ``timeout`` defaults
    to the configured budget."""
    return gretry.Retry(
        predicate=gretry.if_exception_type(*TRANSIENT),
        initial=0.25,
        maximum=8.0,
        multiplier=2.0,
        timeout=_retry_seconds if timeout is None else timeout,
    )


#: The threads blocking cloud clients run in: their own bounded pool, so a cloud outage with retries
#: sleeping in threads never holds up anything else (the Kubernetes client is async: no threads).
CLOUD_THREADS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="cloud")


async def blocking(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking cloud client function in the cloud pool (never blocks the event loop)."""
    return await asyncio.get_running_loop().run_in_executor(CLOUD_THREADS, functools.partial(fn, *args, **kwargs))


async def call(fn: Callable[..., T], *args: Any, retry: gretry.Retry | None = None, **kwargs: Any) -> T:
    """Run a blocking client call with retries in the cloud pool."""
    policy = retry or retry_policy()
    return await blocking(policy(functools.partial(fn, *args, **kwargs)))


class LazyClients(Generic[T]):
    """Cloud clients built on first use, one per key (a project, or no key for a single client), in
    the cloud thread pool (resolving default credentials may reach the metadata server), and kept.
    A thread lock, not an asyncio one: the same backend serves several event loops in tests."""

    def __init__(self, factory: Callable[..., T]):
        self._factory = factory
        self._built: dict[tuple[Any, ...], T] = {}
        self._lock = threading.Lock()

    def peek(self, *key: Any) -> T | None:
        """The client of ``key`` if built already (never builds)."""
        return self._built.get(key)

    async def get(self, *key: Any) -> T:
        client = self._built.get(key)
        return client if client is not None else await blocking(self._build, key)

    def _build(self, key: tuple[Any, ...]) -> T:
        with self._lock:
            if key not in self._built:
                self._built[key] = self._factory(*key)
            return self._built[key]

    def clear(self) -> list[T]:
        """Forget every client; returns them (for the caller to close)."""
        with self._lock:
            built, self._built = list(self._built.values()), {}
        return built


#: Errors of a conditional IAM policy write whose etag went stale (someone wrote in between).
STALE_ETAG = (gexc.Conflict, gexc.PreconditionFailed, gexc.Aborted)


async def read_modify_write(
    what: str,
    read: Callable[[], Awaitable[P]],
    change: Callable[[P], W | None],
    write: Callable[[W], Awaitable[object]],
    attempts: int,
) -> bool:
    """An IAM policy's read-modify-write guarded by its etag: ``read`` it, ``change`` it (what to
    write; None: nothing to do), ``write`` that; on a stale etag read and re-apply, with a short
    backoff, up to ``attempts`` times. Returns whether it wrote."""
    for attempt in range(attempts):
        new = change(await read())
        if new is None:
            return False
        try:
            await write(new)
            return True
        except STALE_ETAG as err:
            log.info("IAM policy of %s changed concurrently (%s); retrying (%d)", what, err.code, attempt + 1)
            await asyncio.sleep(min(0.2 * 2**attempt, 2.0))
    raise gexc.Aborted(f"the IAM policy of {what} kept changing during {attempts} read-modify-write attempts")


def failure(err: BaseException, what: str, permission: str | None = None) -> Failed:
    """Map an exception from a GCP call to a Failed outcome whose message names the call and fix."""
    if isinstance(err, gexc.RetryError) or isinstance(err, TRANSIENT):
        cause = err.cause if isinstance(err, gexc.RetryError) and err.cause else err
        return Failed(
            "CloudUnavailable", f"{what}: transient error persisted: {_msg(cause)}", retryable=True, retry_after=15
        )
    if isinstance(err, (gexc.Forbidden, gexc.PermissionDenied)):
        need = f" Grant the operator's identity {permission}." if permission else ""
        return Failed(
            "PermissionDenied", f"{what}: permission denied: {_msg(err)}.{need}", retryable=False, retry_after=300
        )
    if isinstance(err, (gexc.BadRequest, gexc.InvalidArgument, gexc.FailedPrecondition)):
        return Failed("InvalidRequest", f"{what}: rejected by GCP: {_msg(err)}", retryable=False, retry_after=300)
    if isinstance(err, gexc.Unauthorized):
        return Failed(
            "Unauthenticated", f"{what}: no valid GCP credentials: {_msg(err)}", retryable=False, retry_after=300
        )
    if isinstance(err, gexc.GoogleAPICallError):
        return Failed("CloudError", f"{what}: {_msg(err)}", retryable=True, retry_after=60)
    return Failed("CloudError", f"{what}: {type(err).__name__}: {err}", retryable=True, retry_after=60)


async def revoke(write: Awaitable[object], what: str, by_hand: str, gone: str = "", done: str = "") -> Deleted:
    """Await an IAM write that removes a grant. A revocation never blocks a deletion for good: done
    when written (``done`` if it changed anything), when the resource is gone (``gone``), or when GCP
    refuses for good: then the message names the command ``by_hand`` that removes the grant.
    Transient failures are retried (the finalizer stays)."""
    try:
        wrote = await write
    except gexc.NotFound:
        return Deleted(True, gone)
    except (gexc.Forbidden, gexc.PermissionDenied):
        return Deleted(True, f"could not {what} (permission denied); run: {by_hand}")
    except Exception as err:  # noqa: BLE001 - mapped to an outcome, like every GCP call
        f = failure(err, what)
        if f.retryable:
            return Deleted(False, f.message, retry_after=f.retry_after)
        return Deleted(True, f"{f.message}; run: {by_hand}")
    return Deleted(True, done if wrote else "")


def _msg(err: BaseException) -> str:
    if isinstance(err, gexc.GoogleAPICallError):
        return f"{err.code} {err.message}" if err.code else str(err.message)
    return f"{type(err).__name__}: {err}"
