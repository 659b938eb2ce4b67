"""Cluster DNS for the test node: dnsmasq answering NAME.NS.svc.cluster.local from Services/Endpoints.

CoreDNS is not packaged in Debian. dnsmasq (Debian ``dnsmasq-base``) serves a hosts file that a
thread rewrites from the API server every second (SIGHUP makes dnsmasq re-read it): ClusterIP
Services by their cluster IP, headless Services by their ready endpoint addresses (and
``HOSTNAME.NAME.NS.svc.cluster.local`` for StatefulSet pods). Names under cluster.local that are
not there get NXDOMAIN; nothing is forwarded upstream. Lives in tests/ only.

dnsmasq reads the first hosts file at start and gets its first SIGHUP only once it answers: a SIGHUP
in the few milliseconds before it installs its handler kills it without a word (under load this left
a whole node without DNS: every pod failed with EAI_AGAIN). If it dies later it is restarted and the
death is recorded in ``errors``.
"""

from __future__ import annotations

import signal
import socket
import struct
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.waiting import wait_for

DOMAIN = "cluster.local"
PROBE_NAME = f"kubernetes.default.svc.{DOMAIN}"


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


def query_a(server: str, name: str, port: int = 53, timeout: float = 2.0) -> list[str] | None:
    """The IPv4 addresses ``server`` answers for ``name`` ([] for NXDOMAIN/no data), None without an answer."""
    qid = 0x4653
    question = (
        b"".join(bytes([len(part)]) + part.encode() for part in name.split(".")) + b"\0" + struct.pack(">HH", 1, 1)
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + question, (server, port))
        try:
            reply = sock.recv(4096)
        except OSError:
            return None
    rid, _, _, answers, _, _ = struct.unpack(">HHHHHH", reply[:12])
    if rid != qid:
        return None
    pos, found = 12 + len(question), []
    for _ in range(answers):  # dnsmasq compresses each answer's name to a 2-byte pointer
        rtype, _, _, length = struct.unpack(">HHIH", reply[pos + 2 : pos + 12])
        if rtype == 1 and length == 4:
            found.append(socket.inet_ntoa(reply[pos + 12 : pos + 16]))
        pos += 12 + length
    return found


class DnsResponder:
    """dnsmasq on ``address``:53 fed from the API server through ``request(method, path)``."""

    def __init__(
        self,
        address: str,
        workdir: Path,
        request: Callable[[str, str], dict[str, Any]],
        port: int = 53,
        static: list[str] | None = None,
    ) -> None:
        """``static``: hosts-file lines served besides the cluster's, e.g. "IP metadata.google.internal"."""
        self.address = address
        self.port = port
        self.workdir = workdir
        self.hosts = workdir / "cluster-hosts"
        self.log = workdir / "dnsmasq.log"
        self.static = list(static or [])
        self._request = request
        self._proc: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="dns-responder", daemon=True)
        self.errors: list[str] = []

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._write_hosts()  # before dnsmasq starts: it reads the file itself, no reload needed
        self._run_dnsmasq()
        self._thread.start()

    def answers(self, name: str) -> list[str] | None:
        return query_a(self.address, name, self.port)

    def _run_dnsmasq(self) -> None:
        """Start dnsmasq and wait until it answers. Only then may it get a SIGHUP: one that arrives
        before dnsmasq has installed its handler kills it silently (the default action), which is
        what left a node without DNS under load."""
        with open(self.log, "ab") as log:
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
                    f"--port={self.port}",
                    f"--local=/{DOMAIN}/",
                    f"--pid-file={self.workdir / 'dnsmasq.pid'}",
                    "--user=root",
                    "--log-facility=-",
                    "--cache-size=0",
                    "--log-queries=extra",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # no signal meant for the test process's group reaches it
            )
        wait_for(self._answering, timeout=60, what=f"dnsmasq answering {PROBE_NAME} on {self.address}:{self.port}")

    def _answering(self) -> bool:
        assert self._proc
        if self._proc.poll() is not None:
            raise AssertionError(f"dnsmasq exited ({self._proc.returncode}): {self.log.read_text(errors='replace')}")
        return self.answers(PROBE_NAME) is not None

    def _write_hosts(self) -> bool:
        """Rewrite the hosts file from the API server; True when it changed."""
        services = self._request("GET", "/api/v1/services")["items"]
        endpoints = self._request("GET", "/api/v1/endpoints")["items"]
        text = "\n".join([*self.static, *hosts_lines(services, endpoints)]) + "\n"
        if self.hosts.exists() and text == self.hosts.read_text():
            return False
        staged = self.hosts.with_suffix(".new")
        staged.write_text(text)
        staged.replace(self.hosts)  # atomic: a reload never reads a half-written file
        return True

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            try:
                if self._proc and self._proc.poll() is not None:  # died: say so, serve again
                    self.errors.append(f"dnsmasq exited ({self._proc.returncode}); restarted")
                    self._write_hosts()
                    self._run_dnsmasq()
                elif self._write_hosts() and self._proc:
                    self._proc.send_signal(signal.SIGHUP)
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
