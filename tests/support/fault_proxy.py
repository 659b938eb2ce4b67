"""An HTTP proxy between a client and the test API server that can make custom resources vanish the
way a restarted API server does: while ``hide(group)`` is on, every request under
/apis/<group>/ answers 404 (as the real API server does until it has loaded its CRDs again),
discovery leaves the group out, and every open request (watch streams) is cut. ``restore()`` lifts
it. ``refused_lists(resource)`` counts the list requests (not discovery's one-item probes) answered
404 meanwhile: a test keeps the group hidden until the client has retried into the 404.
The client talks plain HTTP on loopback; the proxy talks TLS to the API server."""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
from typing import Any

import aiohttp
from aiohttp import web

HOP = {"host", "content-length", "transfer-encoding", "connection"}


class FaultProxy:
    def __init__(self, upstream: str, ca_file: str):
        self.upstream = upstream.rstrip("/")
        self.ssl = ssl.create_default_context(cafile=ca_file)
        self.hidden: str | None = None
        #: (path, query) of every request answered 404 because its group was hidden
        self.refused: list[tuple[str, str]] = []
        self.port = 0
        self._open: set[asyncio.Task[Any]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def hide(self, group: str) -> None:
        """Answer 404 for ``group`` and cut every open request."""
        self.hidden = group

        def cut() -> None:
            for task in list(self._open):
                task.cancel()

        self._loop.call_soon_threadsafe(cut)

    def restore(self) -> None:
        self.hidden = None

    def refused_lists(self, resource: str) -> int:
        """List requests of ``resource`` (plural) answered 404 while hidden, discovery's one-item
        probes (``limit=1``) left out."""
        return sum(
            1
            for path, query in self.refused
            if path.endswith(f"/{resource}") and "watch=" not in query and "limit=1&" not in f"{query}&"
        )

    def stop(self) -> None:
        async def _stop() -> None:
            for task in list(self._open):
                task.cancel()
            if self._runner:
                await self._runner.cleanup()
            if self._session:
                await self._session.close()

        asyncio.run_coroutine_threadsafe(_stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.hidden and request.path.startswith(f"/apis/{self.hidden}"):
            self.refused.append((request.path, request.query_string))
            status = {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "reason": "NotFound",
                "code": 404,
                "message": "the server could not find the requested resource",
            }
            return web.json_response(status, status=404)
        task = asyncio.current_task()
        assert task is not None
        self._open.add(task)
        try:
            return await self._forward(request)
        finally:
            self._open.discard(task)

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        body = await request.read()
        async with self._session.request(
            request.method, self.upstream + request.path_qs, headers=headers, data=body or None, ssl=self.ssl
        ) as upstream:
            if request.path == "/apis" and self.hidden and upstream.status == 200:
                data = await upstream.json()
                data["groups"] = [g for g in data.get("groups", []) if g.get("name") != self.hidden]
                return web.Response(status=200, text=json.dumps(data), content_type="application/json")
            response = web.StreamResponse(
                status=upstream.status,
                headers={k: v for k, v in upstream.headers.items() if k.lower() not in HOP | {"content-encoding"}},
            )
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response
