"""The HTTPS server of the admission webhook, bounded against hostile load.

The webhook port is open to every pod (the API server calls it from outside the pod network, so no
NetworkPolicy can admit the API server alone), and every replica serves it. kopf's
``WebhookServer`` reads each request body whole as it arrives, unbounded in number: 200 pods'
connections each sending an almost complete 1 MiB body held ~340 MiB in the operator
(tests/unit/test_webhook_load.py), and with ``failurePolicy: Fail`` replicas killed for memory
refuse every tenant's writes. Here:

* at most :data:`CONNECTIONS` connections are open (TLS handshakes included, which must finish
  within :data:`HANDSHAKE_SECONDS`); more are closed at once. Each costs up to ~1 MiB whatever it
  sends (asyncio's TLS buffers, aiohttp's), so this bounds the server's memory;
* at most :data:`READING` requests are read and reviewed at a time; the others wait unread (aiohttp
  stops reading a connection's socket once ~128 KiB are buffered for it), and at most
  :data:`WAITING` wait: more are answered 503 at once;
* a body is at most :data:`MAX_BODY` (the API server sends the object and the old object; specs are
  bounded by ``maxSpecBytes``) and must arrive within :data:`READ_SECONDS`, else 413/408;
* the certificate files are re-read when they change (cert-manager rotation, the kept Secret), into
  the same SSL context (new handshakes use them; no restart, no port gap).

A pod can still occupy the reading slots with slow bodies and so delay reviews (the API server then
applies the webhook's failurePolicy): that costs availability of admission, never memory, and the
operator re-checks every store in reconcile (docs/security/admission-webhook.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

#: requests read and reviewed at the same time
READING = 4
#: requests waiting for a reading slot; more are refused with 503
WAITING = 64
#: largest body read (the API server's AdmissionReview: object + oldObject)
MAX_BODY = 2**20
#: a body must arrive within this many seconds (the API server's webhook timeout is at most 30 s)
READ_SECONDS = 5.0
#: open connections (TLS handshakes included); more are closed at once. Each costs up to ~0.8 MiB
#: (asyncio's TLS buffers 256 KiB + 256 KiB, aiohttp's ~128 KiB), so this bounds the server's memory
CONNECTIONS = 32
#: a TLS handshake must finish within this many seconds (asyncio's default is 60)
HANDSHAKE_SECONDS = 5.0
#: how often the certificate files are checked for a change
RELOAD_SECONDS = 10.0

Review = Callable[[dict[str, Any]], dict[str, Any]]


class Gate:
    """At most ``reading`` holders at a time, at most ``waiting`` queued behind them."""

    def __init__(self, reading: int = READING, waiting: int = WAITING):
        self.slots = asyncio.Semaphore(reading)
        self.queued = 0
        self.waiting = waiting

    def full(self) -> bool:
        return self.queued >= self.waiting

    async def __aenter__(self) -> None:
        self.queued += 1
        try:
            await self.slots.acquire()
        finally:
            self.queued -= 1

    async def __aexit__(self, *_: object) -> None:
        self.slots.release()


def handler(review: Review, gate: Gate) -> Callable[[web.Request], Any]:
    async def serve(request: web.Request) -> web.StreamResponse:
        if gate.full():
            return web.Response(status=503, text="too many admission requests at once")
        async with gate:
            try:
                async with asyncio.timeout(READ_SECONDS):
                    body = await request.read()
            except TimeoutError:
                return web.Response(status=408, text="request body not received in time")
            except web.HTTPRequestEntityTooLarge:
                return web.Response(status=413, text=f"admission requests are at most {MAX_BODY} bytes")
            try:
                data = json.loads(body)
            except (ValueError, RecursionError):
                return web.Response(status=400, text="not a JSON AdmissionReview")
            del body
            if not isinstance(data, dict):
                return web.Response(status=400, text="not a JSON AdmissionReview")
            return web.json_response(review(data))

    return serve


def _stamp(*files: Path) -> tuple[tuple[int, int], ...]:
    return tuple((f.stat().st_mtime_ns, f.stat().st_size) if f.exists() else (0, 0) for f in files)


async def _reload(context: ssl.SSLContext, certfile: Path, keyfile: Path) -> None:
    seen = _stamp(certfile, keyfile)
    while True:
        await asyncio.sleep(RELOAD_SECONDS)
        now = _stamp(certfile, keyfile)
        if now == seen:
            continue
        try:
            context.load_cert_chain(certfile, keyfile)
            seen = now
            log.info("admission webhook: serving the renewed certificate")
        except (OSError, ssl.SSLError) as err:  # half-written files: next round
            log.warning("admission webhook: cannot load the renewed certificate yet: %s", err)


class _Counted(asyncio.Protocol):
    """aiohttp's connection protocol, counted from accept (before the TLS handshake) to close."""

    def __init__(self, inner: asyncio.Protocol, live: list[int]):
        self.inner, self.live = inner, live
        live[0] += 1

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self.live[0] -= 1
        self.inner.connection_lost(exc)


class _Refused(asyncio.Protocol):
    """Over :data:`CONNECTIONS`: closed as soon as it is made."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.abort()  # type: ignore[attr-defined]


def _factory(server: web.Server, live: list[int]) -> Callable[[], asyncio.Protocol]:
    def make() -> asyncio.Protocol:
        if live[0] >= CONNECTIONS:
            return _Refused()
        return _Counted(server(), live)

    return make


async def run(port: int, certfile: Path, keyfile: Path, review: Review) -> AsyncIterator[None]:
    """Serve ``review`` on ``port`` over HTTPS; yields once listening, then serves until cancelled."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certfile, keyfile)
    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post("/{path:.*}", handler(review, Gate()))
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    assert runner.server is not None
    reloader = asyncio.create_task(_reload(context, certfile, keyfile), name="webhook certificate reload")
    listener = await asyncio.get_running_loop().create_server(
        _factory(runner.server, [0]),
        "0.0.0.0",
        port,
        ssl=context,
        reuse_address=True,
        ssl_handshake_timeout=HANDSHAKE_SECONDS,
    )
    try:
        yield
        await asyncio.Event().wait()
    finally:
        listener.close()
        reloader.cancel()
        await asyncio.gather(reloader, return_exceptions=True)
        await runner.cleanup()
