"""Hostile load on the admission webhook (issue 25 item 8, the class of the spec flood): its port is
open to every pod (the API server reaches it from outside the pod network), so any namespace
editor's pod can connect. Each connection that sends an almost complete 1 MiB body used to hold that
body in the operator's memory: 200 of them took a webhook-only process from ~80 MiB to ~435 MiB
(measured 2026-12-07), past half the chart's 512Mi limit with no store at all; every replica serves
the webhook, so all of them fall together and, with ``failurePolicy: Fail``, every tenant's writes
are refused. The real server (``handlers.admission.serve``) runs in its own process here; the flood
is plain TLS sockets, as a pod would send.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.support.process import free_port
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
SERVER = """
import asyncio, sys
from featurestore_operator.api import OperatorConfig
from featurestore_operator.handlers import admission
async def main():
    ready = asyncio.Event()
    task = asyncio.create_task(admission.serve(None, OperatorConfig(webhook_port=int(sys.argv[1])), ready))
    await ready.wait()
    print("READY", flush=True)
    await task
asyncio.run(main())
"""
CONNECTIONS = 200
#: what the flood may add to the process (measured: +42 MiB; the chart's limit is 512Mi; the operator with 40 maximal
#: stores measured 115 MiB, docs/benchmarks)
MAX_GROWTH_MIB = 64


def rss_mib(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 2**20


def tls() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    return ctx


def flood(port: int, count: int) -> list[socket.socket]:
    """``count`` connections, each sending a 1 MiB JSON body one byte short of its Content-Length."""
    body = b"[" + b"[]," * (2**20 // 3 - 2) + b"[]"
    head = b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    held = []
    for _ in range(count):
        s = tls().wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10))
        try:
            s.sendall(head % (len(body) + 1))
            s.sendall(body)
        except OSError:  # refused or closed by the server: it holds nothing for it
            s.close()
            continue
        held.append(s)
    return held


def review(port: int) -> dict:
    body = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {"uid": "u-1", "operation": "DELETE", "object": None, "oldObject": {}},
    }
    req = urllib.request.Request(
        f"https://127.0.0.1:{port}/validate", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, context=tls(), timeout=30) as answer:
        return json.load(answer)


def test_a_flood_of_held_request_bodies_does_not_grow_the_operator(tmp_path):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "operator")}
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: "READY" in (tmp_path / "server.log").read_text(), timeout=60, what="the webhook serving")
        assert review(port)["response"]["allowed"] is True
        before = rss_mib(proc.pid)
        held = flood(port, CONNECTIONS)
        time.sleep(2)  # what the server reads arrives
        peak = max(rss_mib(proc.pid) for _ in range(5) if time.sleep(0.3) is None)
        for s in held:
            s.close()
        assert peak - before <= MAX_GROWTH_MIB, (
            f"{CONNECTIONS} held 1 MiB bodies grew the webhook process from {before} to {peak} MiB"
        )
        # and it still answers the API server afterwards
        assert wait_for(lambda: review(port)["response"]["allowed"], timeout=30, what="a review after the flood")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def served_certificate(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with tls().wrap_socket(raw) as s:
            der = s.getpeercert(binary_form=True)
            assert der is not None
            return der


def test_a_renewed_certificate_is_served_without_a_restart(tmp_path, monkeypatch):
    """cert-manager rewrites the mounted files, or a replica the kept Secret: new connections get the
    new certificate on the same listening socket."""
    from featurestore_operator.handlers import admission, webhook_server

    monkeypatch.setattr(webhook_server, "RELOAD_SECONDS", 0.2)
    live, renewed = tmp_path / "live", tmp_path / "renewed"
    live.mkdir(), renewed.mkdir()
    certfile, keyfile = admission.self_signed(["localhost"], live)
    admission.self_signed(["localhost"], renewed)
    port = free_port()

    async def scenario() -> tuple[bytes, bytes, bytes]:
        served = webhook_server.run(port, certfile, keyfile, lambda body: body)
        await anext(served)
        task = asyncio.create_task(anext(served))
        first = await asyncio.to_thread(served_certificate, port)
        for name in ("tls.crt", "tls.key"):
            (live / name).write_bytes((renewed / name).read_bytes())
        await asyncio.sleep(1.0)
        second = await asyncio.to_thread(served_certificate, port)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await served.aclose()
        return first, second, ssl.PEM_cert_to_DER_cert((renewed / "tls.crt").read_text())

    first, second, expected = asyncio.run(scenario())
    assert first != expected and second == expected
