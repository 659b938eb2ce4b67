"""Cluster DNS for the test node: dnsmasq answering NAME.NS.svc.cluster.local from Services/Endpoints.

CoreDNS is not packaged in Debian. dnsmasq (Debian ``dnsmasq-base``) serves a hosts file that a
thread rewrites from the API server every second (SIGHUP makes dnsmasq re-read it): ClusterIP
Services by their cluster IP, headless Services by their ready endpoint addresses (and
``HOSTNAME.NAME.NS.svc.cluster.local`` for StatefulSet pods). Names under cluster.local that are
not there get NXDOMAIN; nothing is forwarded upstream. Lives in tests/ only.
"""

from __future__ import annotations

import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

DOMAIN = "cluster.local"


def hosts_lines(services: list[dict[str, Any]], endpoints: list[dict[str, Any]]) -> list[str]:
    """The hosts-file lines for these Services and Endpoints (sorted: stable file, no spurious reloads)."""
    lines: set[str] = set()
    headless: set[tuple[str, str]] = set()
    for svc in services:
        meta, spec = svc["metadata"], svc.get("spec") or {}
        fqdn = f"{meta['name']}.{meta['namespace']}.svc.{DOMAIN}"
        ip = spec.get("clusterIP")
        if ip and ip != "None":
            lines.add(f"{ip} {fqdn}")
        elif spec.get("type", "ClusterIP") == "ClusterIP":
            headless.add((meta["namespace"], meta["name"]))
    for ep in endpoints:
        meta = ep["metadata"]
        if (meta["namespace"], meta["name"]) not in headless:
            continue
        fqdn = f"{meta['name']}.{meta['namespace']}.svc.{DOMAIN}"
        for subset in ep.get("subsets") or []:
            for addr in subset.get("addresses") or []:
                lines.add(f"{addr['ip']} {fqdn}")
                if addr.get("hostname"):
                    lines.add(f"{addr['ip']} {addr['hostname']}.{fqdn}")
    return sorted(lines)


class DnsResponder:
    """dnsmasq on ``address``:53 fed from the API server through ``request(method, path)``."""

    def __init__(self, address: str, workdir: Path, request: Callable[[str, str], dict[str, Any]]):
        self.address = address
        self.workdir = workdir
        self.hosts = workdir / "cluster-hosts"
        self._request = request
        self._proc: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="dns-responder", daemon=True)
        self.errors: list[str] = []

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.hosts.write_text("")
        log = open(self.workdir / "dnsmasq.log", "ab")
        self._proc = subprocess.Popen(
            [
                "dnsmasq",
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                f"--addn-hosts={self.hosts}",
                f"--listen-address={self.address}",
                "--bind-interfaces",
                "--port=53",
                f"--local=/{DOMAIN}/",
                f"--pid-file={self.workdir / 'dnsmasq.pid'}",
                "--user=root",
                "--log-facility=-",
                "--cache-size=0",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        self._sync()
        self._thread.start()

    def _sync(self) -> None:
        services = self._request("GET", "/api/v1/services")["items"]
        endpoints = self._request("GET", "/api/v1/endpoints")["items"]
        text = "\n".join(hosts_lines(services, endpoints)) + "\n"
        if text != self.hosts.read_text():
            self.hosts.write_text(text)
            if self._proc and self._proc.poll() is None:
                self._proc.send_signal(signal.SIGHUP)

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self._sync()
            except Exception as exc:  # noqa: BLE001 - the API server may restart; keep serving
                self.errors.append(repr(exc))

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
