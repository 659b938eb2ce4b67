"""A private git server for tests: git's own smart-HTTP CGI (``git http-backend``, the program real
servers such as cgit/gitweb setups run) behind a small HTTPS server with basic auth, on loopback.

What it refuses, like a real private host: any request without the right basic-auth password (401
with ``WWW-Authenticate``, so git reports "Authentication failed"), TLS clients that do not trust
its test CA. Every connection is logged with the pid of the process that opened it (looked up
from the socket table while the connection is open), so a test can prove which processes talked
to the repository (:meth:`GitServer.client_pids`).
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import shutil
import ssl
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
from featurestore_operator.backends.certificates import Issuer, issue, new_key, pem_cert, pem_key

USER = "x-access-token"
AUTHOR = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}


def _owner_pids(peer: tuple[str, int], server_port: int) -> tuple[int, ...]:
    """The pid owning the client end (``peer``: its address and port) of a loopback TCP connection to
    the server's port, and its ancestors (git runs git-remote-https as a child: the chain shows who
    started it). Both ends are matched: Linux gives the same ephemeral port to connections to
    different servers, so another process's connection (the operator's to the API server) can hold
    the same local port."""
    for conn in psutil.net_connections(kind="tcp"):
        if (
            conn.pid
            and conn.laddr
            and conn.raddr
            and (conn.laddr.ip, conn.laddr.port) == peer
            and conn.raddr.port == server_port
        ):
            try:
                return (conn.pid, *(p.pid for p in psutil.Process(conn.pid).parents()))
            except psutil.NoSuchProcess:
                return (conn.pid,)
    return ()


class GitServer:
    """``https://127.0.0.1:PORT/<name>.git`` repos under a temp root; password ``token``."""

    def __init__(self, token: str) -> None:
        self.token = token
        # not under /tmp: pods mount an emptyDir there, which would hide the CA file from them
        self.root = Path(tempfile.mkdtemp(prefix="gitsrv-", dir="/var/tmp"))
        self.connections: list[tuple[str, int, tuple[int, ...]]] = []  # (path, peer port, pid + ancestors)
        ca_key = new_key()
        now = dt.datetime.now(dt.UTC)
        ca = issue(ca_key, "test git CA", now=now, validity=dt.timedelta(days=1), ca=True)
        key = new_key()
        cert = issue(
            key,
            "127.0.0.1",
            now=now,
            validity=dt.timedelta(days=1),
            names=["127.0.0.1"],
            issuer=Issuer(ca_key, ca.subject),
        )
        self.ca_file = self.root / "ca.crt"
        self.ca_file.write_text(pem_cert(ca))
        (self.root / "tls.crt").write_text(pem_cert(cert))
        (self.root / "tls.key").write_text(pem_key(key))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.root / "tls.crt", self.root / "tls.key")
        self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    # ---- repositories
    def url(self, name: str) -> str:
        return f"https://127.0.0.1:{self.port}/{name}.git"

    def create(self, name: str, files: dict[str, str]) -> str:
        """A bare repo ``name`` with one commit of ``files`` on main; returns the commit."""
        bare = self.root / f"{name}.git"
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
        subprocess.run(["git", "-C", str(bare), "config", "http.receivepack", "false"], check=True)
        work = self.root / f"{name}.work"
        subprocess.run(["git", "clone", "-q", str(bare), str(work)], check=True, capture_output=True)
        return self.push(name, files, "initial")

    def push(self, name: str, files: dict[str, str], message: str = "change") -> str:
        """Commit ``files`` on main (as a developer would push) and return the new commit."""
        work = self.root / f"{name}.work"
        for path, text in files.items():
            (work / path).parent.mkdir(parents=True, exist_ok=True)
            (work / path).write_text(text)
        env = {**os.environ, **AUTHOR}
        git = ["git", "-C", str(work)]
        subprocess.run([*git, "add", "-A"], check=True, env=env)
        subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", message], check=True, env=env)
        subprocess.run([*git, "push", "-q", "origin", "HEAD:main", "--follow-tags"], check=True, env=env)
        return self.head(name)

    def tag(self, name: str, tag: str, commit: str) -> None:
        """Create or move lightweight tag ``tag`` to ``commit``."""
        subprocess.run(
            ["git", "-C", str(self.root / f"{name}.git"), "tag", "-f", tag, commit], check=True, capture_output=True
        )

    def head(self, name: str, ref: str = "main") -> str:
        out = subprocess.run(
            ["git", "-C", str(self.root / f"{name}.git"), "rev-parse", ref], check=True, capture_output=True, text=True
        )
        return out.stdout.strip()

    # ---- who connected
    def client_pids(self) -> set[int]:
        """Every process that opened a connection, or was an ancestor of one that did."""
        return {pid for _, _, chain in self.connections for pid in chain}

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        shutil.rmtree(self.root, ignore_errors=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: object) -> None:
                pass

            def _authorized(self) -> bool:
                want = "Basic " + base64.b64encode(f"{USER}:{server.token}".encode()).decode()
                return self.headers.get("Authorization") == want

            def _serve(self) -> None:
                peer = (str(self.client_address[0]), int(self.client_address[1]))
                server.connections.append((self.path, peer[1], _owner_pids(peer, server.port)))
                if not self._authorized():
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="git"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                path, _, query = self.path.partition("?")
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                env = {
                    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                    "GIT_PROJECT_ROOT": str(server.root),
                    "GIT_HTTP_EXPORT_ALL": "1",
                    "REQUEST_METHOD": self.command,
                    "PATH_INFO": path,
                    "QUERY_STRING": query,
                    "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                    "CONTENT_LENGTH": str(len(body)),
                    "REMOTE_USER": USER,
                    "REMOTE_ADDR": self.client_address[0],
                    "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                    "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                }
                out = subprocess.run(
                    ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
                ).stdout
                head, _, payload = out.partition(b"\r\n\r\n")
                status = 200
                headers = []
                for line in head.decode().split("\r\n"):
                    if not line:
                        continue
                    k, _, v = line.partition(":")
                    if k.lower() == "status":
                        status = int(v.split()[0])
                    else:
                        headers.append((k, v.strip()))
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = _serve
            do_POST = _serve

        return Handler
