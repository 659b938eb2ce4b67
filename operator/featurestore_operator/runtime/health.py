"""The operator's health endpoint (liveness and readiness), served by the process itself so that a
stand-by replica answers too.

/healthz  200 while the process works: a stand-by waiting for the Lease, or the acting replica
          while every required watch (FeatureStores) is watching; 503 otherwise, so the kubelet
          restarts a replica that stopped watching. The body names every watch that is not
          watching, required or not, with the reason (``runtime.watches``; also the metric
          ``featurestore_watch_up``).
/readyz   the same answer (a stand-by is ready: it must not stall rolling updates), and with the
          admission webhook on, 503 until this replica serves it (the webhook Service sends the API
          server's reviews to ready pods only).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

from aiohttp import web

log = logging.getLogger(__name__)


class Health:
    def __init__(self) -> None:
        #: None: no leader election; False: standing by; True: acting
        self.leading: bool | None = None
        #: the watches not watching: (required ones, all ones), name -> reason (``Watches.failing``)
        self.failing: Callable[[bool], dict[str, str]] = lambda required_only: {"watches": "starting"}
        #: set by handlers.admission once this replica serves the webhook; awaited only when needed
        self.webhook = asyncio.Event()
        self.needs_webhook = False
        self._runner: web.AppRunner | None = None

    def report(self) -> tuple[int, dict[str, object]]:
        required = self.failing(True)
        watching = not required
        ok = self.leading is False or watching
        reason = "; ".join(required.values()) if required else "watching"
        body: dict[str, object] = {"ok": ok, "leading": self.leading, "watching": watching, "reason": reason}
        if self.leading is not False:
            body["watches"] = self.failing(False)
        return (200 if ok else 503), body

    async def _handle(self, request: web.Request) -> web.Response:
        code, body = self.report()
        return web.Response(status=code, text=json.dumps(body), content_type="application/json")

    async def _ready(self, request: web.Request) -> web.Response:
        code, body = self.report()
        if self.needs_webhook:
            body["webhook"] = self.webhook.is_set()
            code = code if self.webhook.is_set() else 503
        return web.Response(status=code, text=json.dumps(body), content_type="application/json")

    async def start(self, port: int, host: str = "0.0.0.0") -> None:
        app = web.Application()
        app.add_routes([web.get("/healthz", self._handle), web.get("/readyz", self._ready)])
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
