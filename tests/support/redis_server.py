"""A real ``redis-server`` process for tests, optionally shaped like GCP Memorystore.

Memorystore for Redis with in-transit encryption speaks TLS with *server authentication only*
(clients verify the server against the instance's ``serverCaCerts``; no client certificate)
and, with AUTH enabled, requires a password (the instance's "AUTH string"). This module starts
Debian's ``redis-server`` binary directly (never the system service) on a free loopback port
in exactly that shape::

    with RedisServer(tls=True, password="s3cret") as srv:
        r = srv.client()            # redis-py client with ssl + CA + password
        r.set("k", "v")
        srv.ca_pem, srv.ca_path     # CA certificate the server's cert is signed by

The binary is looked up in ``$REDIS_SERVER_BIN``, then ``PATH``, then ``/usr/bin`` and
``/usr/sbin``. On Debian: ``apt-get install -y redis-server`` (then
``systemctl disable redis-server`` / ``update-rc.d redis-server disable``: the tests never use
the system service).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.support.process import ManagedProcess, ProcessError, free_port

__all__ = [
    "RedisServer",
    "RedisServerError",
    "TlsMaterial",
    "find_redis_server",
    "free_port",
    "generate_tls_material",
    "no_retry",
]


class RedisServerError(RuntimeError):
    """redis-server could not be found, started or reached."""


def no_retry():
    """A redis-py ``Retry`` that never retries (redis-py >= 6 retries 3x with backoff)."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return Retry(NoBackoff(), 0)


def find_redis_server() -> str:
    """Path of the redis-server binary, or RedisServerError saying how to get one."""
    candidates = [
        os.environ.get("REDIS_SERVER_BIN"),
        shutil.which("redis-server"),
        "/usr/bin/redis-server",
        "/usr/sbin/redis-server",
    ]
    for c in candidates:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    raise RedisServerError(
        "redis-server binary not found (set REDIS_SERVER_BIN or install it, e.g. `apt-get install -y redis-server`)"
    )


# --------------------------------------------------------------------------- TLS material


@dataclass(frozen=True)
class TlsMaterial:
    """A self-signed CA and a server certificate (for 127.0.0.1/localhost) signed by it."""

    ca_pem: str
    ca_path: str
    cert_path: str
    key_path: str


def generate_tls_material(
    directory: str | os.PathLike, hosts: Iterable[str] = ("127.0.0.1", "localhost", "::1"), *, days: int = 2
) -> TlsMaterial:
    """Write ``ca.crt``, ``server.crt`` and ``server.key`` into ``directory``.

    Uses python ``cryptography`` (a dependency of google-auth); falls back to the openssl CLI.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    hosts = list(hosts)
    try:
        _generate_with_cryptography(d, hosts, days)
    except ImportError:  # pragma: no cover - cryptography is normally present
        _generate_with_openssl(d, hosts, days)
    return TlsMaterial(
        ca_pem=(d / "ca.crt").read_text(),
        ca_path=str(d / "ca.crt"),
        cert_path=str(d / "server.crt"),
        key_path=str(d / "server.key"),
    )


def _generate_with_cryptography(d: Path, hosts: list[str], days: int) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    not_before = now - datetime.timedelta(minutes=5)
    not_after = now + datetime.timedelta(days=days)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test Memorystore server CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    sans: list[x509.GeneralName] = []
    for h in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (d / "ca.crt").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    (d / "server.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path = d / "server.key"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
    )
    key_path.chmod(0o600)


def _generate_with_openssl(d: Path, hosts: list[str], days: int) -> None:  # pragma: no cover
    openssl = shutil.which("openssl")
    if not openssl:
        raise RedisServerError("need python `cryptography` or the openssl CLI to make TLS certs")
    san = ",".join(("IP:" if _is_ip(h) else "DNS:") + h for h in hosts)

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=d, check=True, capture_output=True)

    run(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        str(days),
        "-subj",
        "/CN=test Memorystore server CA",
    )
    run(
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        f"/CN={hosts[0]}",
    )
    (d / "ext.cnf").write_text(f"subjectAltName={san}\nextendedKeyUsage=serverAuth\n")
    run(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        str(days),
        "-extfile",
        "ext.cnf",
    )


def _is_ip(h: str) -> bool:
    try:
        ipaddress.ip_address(h)
        return True
    except ValueError:
        return False


# --------------------------------------------------------------------------- the server


class RedisServer:
    """One real ``redis-server`` process on a loopback port.

    Args:
        tls: serve TLS only (``--port 0 --tls-port P``), server-auth only like Memorystore.
        password: ``--requirepass`` value (Memorystore AUTH string); ``None`` = no AUTH.
        host: loopback address to bind (``127.0.0.1``).
        port: fixed port; default picks a free one (retrying if the pick races).
        workdir: directory for certs, log, ``--dir``; default a fresh temp dir (removed on stop).
        maxmemory: optional ``--maxmemory`` value (e.g. ``"1gb"``).
        disable_config_command: rename CONFIG to a secret name, as Memorystore blocks CONFIG
            for clients; :meth:`config_set` still works for the test harness.
        extra_args: more ``--name value`` arguments for redis-server.
        startup_timeout: seconds to wait for PING to answer.
    """

    def __init__(
        self,
        tls: bool = False,
        password: str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        workdir: str | os.PathLike | None = None,
        maxmemory: str | None = None,
        disable_config_command: bool = False,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 10.0,
    ) -> None:
        self.tls = bool(tls)
        self.password = password
        self.host = host
        self._fixed_port = port
        self.port: int | None = port
        self._own_workdir = workdir is None
        self._workdir_arg = workdir
        self.workdir: Path | None = Path(workdir) if workdir else None
        self.maxmemory = maxmemory
        self.extra_args = list(extra_args)
        self.startup_timeout = startup_timeout
        self._config_cmd = "CONFIG-" + secrets.token_hex(8) if disable_config_command else "CONFIG"
        self._proc: ManagedProcess | None = None
        self._tls: TlsMaterial | None = None
        self._lock = threading.Lock()

    # ---- properties
    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.alive()

    @property
    def ca_pem(self) -> str | None:
        """PEM of the CA that signed the server certificate (None without TLS)."""
        return self._tls.ca_pem if self._tls else None

    @property
    def ca_path(self) -> str | None:
        return self._tls.ca_path if self._tls else None

    @property
    def log_path(self) -> Path | None:
        return self.workdir / "redis.log" if self.workdir else None

    @property
    def url(self) -> str:
        """A redis-py URL (``rediss://`` with TLS). The CA must still be passed separately."""
        from urllib.parse import quote

        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"{'rediss' if self.tls else 'redis'}://{auth}{self.host}:{self.port}/0"

    def connection_kwargs(self) -> dict:
        """Keyword arguments for ``redis.Redis(...)`` reaching this server."""
        kw: dict = {"host": self.host, "port": self.port}
        if self.password is not None:
            kw["password"] = self.password
        if self.tls:
            kw.update(ssl=True, ssl_ca_certs=self.ca_path, ssl_cert_reqs="required")
        return kw

    def feast_connection_string(self) -> str:
        """Feast redis online store ``connection_string`` (comma parts go to redis-py)."""
        parts = [f"{self.host}:{self.port}"]
        if self.tls:
            parts += ["ssl=true", f"ssl_ca_certs={self.ca_path}"]
        if self.password is not None:
            parts.append(f"password={self.password}")
        return ",".join(parts)

    def client(self, **overrides):
        """A ``redis.Redis`` client configured for this server (TLS + CA + password).

        Unlike redis-py's default (3 retries with exponential backoff of 1-10 s, applied to
        ConnectionError and its subclass AuthenticationError too), this client does not retry,
        so negative tests fail fast. Pass ``retry=...`` to override.
        """
        import redis

        kw = self.connection_kwargs()
        kw.setdefault("socket_timeout", 5)
        kw.setdefault("socket_connect_timeout", 5)
        kw.setdefault("retry", no_retry())
        kw.update(overrides)
        return redis.Redis(**kw)

    def config_set(self, name: str, value) -> None:
        """CONFIG SET through the (possibly renamed) CONFIG command."""
        with self.client() as c:
            c.execute_command(self._config_cmd, "SET", name, str(value))

    def config_get(self, name: str) -> str | None:
        with self.client(decode_responses=True) as c:
            res = c.execute_command(self._config_cmd, "GET", name)
        # redis-py may return a dict (RESP parsing callback) or a flat list
        if isinstance(res, dict):
            return res.get(name)
        return res[1] if res else None

    # ---- lifecycle
    def start(self) -> RedisServer:
        with self._lock:
            if self.running:
                return self
            binary = find_redis_server()
            if self.workdir is None:
                self.workdir = Path(tempfile.mkdtemp(prefix="redis-test-"))
            self.workdir.mkdir(parents=True, exist_ok=True)
            if self.tls and self._tls is None:
                self._tls = generate_tls_material(self.workdir / "tls", hosts=_hosts_for(self.host))
            attempts = 1 if self._fixed_port else 5
            last_err: Exception | None = None
            for _ in range(attempts):
                self.port = self._fixed_port or free_port(self.host)
                try:
                    self._spawn(binary)
                    return self
                except ProcessError as e:
                    last_err = RedisServerError(f"{e}\n{self._diagnostics()}")
                    self._kill()
                    if "in use" not in str(e).lower() + self._diagnostics().lower():
                        break
            raise last_err  # type: ignore[misc]

    def _args(self, binary: str) -> list[str]:
        assert self.workdir is not None
        args = [
            binary,
            "--bind",
            self.host,
            "--daemonize",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
            "--logfile",
            str(self.log_path),
            "--loglevel",
            "notice",
            "--databases",
            "16",
        ]
        if self.tls:
            assert self._tls is not None
            args += [
                "--port",
                "0",
                "--tls-port",
                str(self.port),
                "--tls-cert-file",
                self._tls.cert_path,
                "--tls-key-file",
                self._tls.key_path,
                "--tls-ca-cert-file",
                self._tls.ca_path,
                "--tls-auth-clients",
                "no",
            ]
        else:
            args += ["--port", str(self.port)]
        if self.password is not None:
            args += ["--requirepass", self.password]
        else:
            args += ["--protected-mode", "no"]
        if self.maxmemory:
            args += ["--maxmemory", str(self.maxmemory)]
        if self._config_cmd != "CONFIG":
            args += ["--rename-command", "CONFIG", self._config_cmd]
        return args + self.extra_args

    def _spawn(self, binary: str) -> None:
        assert self.log_path is not None and self.workdir is not None
        if self.log_path.exists():
            self.log_path.unlink()
        # stdout/stderr: redis writes early config errors there (before the logfile opens).
        self._stdio_path = self.workdir / "redis.stdio"
        self._stdio_path.unlink(missing_ok=True)
        self._proc = ManagedProcess("redis-server", self._args(binary), self._stdio_path)
        self._proc.start(self._ping, timeout=self.startup_timeout, what="answering PING")

    def _diagnostics(self) -> str:
        out = []
        for p in (getattr(self, "_stdio_path", None), self.log_path):
            if p and Path(p).exists():
                txt = Path(p).read_text(errors="replace").strip()
                if txt:
                    out.append(f"--- {p} (tail)\n" + "\n".join(txt.splitlines()[-25:]))
        return "\n".join(out) or "(no output)"

    def _ping(self) -> bool:
        with self.client(socket_timeout=1, socket_connect_timeout=1) as c:
            return bool(c.ping())

    def _kill(self, timeout: float = 5.0) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.stop(grace=timeout)

    def stop(self, timeout: float = 5.0, *, cleanup: bool = True) -> None:
        """Stop the process (SIGTERM by PID, SIGKILL after ``timeout``); remove the temp dir."""
        with self._lock:
            self._kill(timeout)
            if cleanup and self._own_workdir and self.workdir is not None:
                shutil.rmtree(self.workdir, ignore_errors=True)
                self.workdir = None
                self._tls = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return (
            f"RedisServer(host={self.host!r}, port={self.port}, tls={self.tls}, "
            f"auth={self.password is not None}, pid={self.pid})"
        )


def _hosts_for(host: str) -> list[str]:
    hosts = [host]
    for h in ("127.0.0.1", "localhost", "::1"):
        if h not in hosts:
            hosts.append(h)
    return hosts
