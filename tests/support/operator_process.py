"""Run the real operator (`featurestore-operator run`) as a subprocess against a test cluster."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OperatorProcess:
    """One operator process; ``env`` adds FSO_* settings. Logs go to a file (``log_text()``).

    ``standalone`` (default) passes ``--standalone``; ``standalone=False`` with
    ``args=["--peering", NAME]`` runs a peering (HA) replica."""

    def __init__(self, kubeconfig: str, env: dict[str, str] | None = None, args: list[str] | None = None,
                 standalone: bool = True):
        self.kubeconfig = kubeconfig
        self.extra_env = env or {}
        self.args = args or []
        self.standalone = standalone
        self.health_port = _free_port()
        self.metrics_port = _free_port()
        self.log_path = Path(tempfile.mkstemp(prefix="operator-", suffix=".log")[1])
        self.proc: subprocess.Popen | None = None

    def start(self, wait: float = 60.0) -> "OperatorProcess":
        env = dict(os.environ)
        # Importing feast in the test process sets PROMETHEUS_MULTIPROCESS_DIR (feast/metrics.py);
        # inherited, it would switch the operator's prometheus_client into multi-process mode.
        for var in ("PROMETHEUS_MULTIPROC_DIR", "PROMETHEUS_MULTIPROCESS_DIR", "prometheus_multiproc_dir"):
            env.pop(var, None)
        env.update({
            "KUBECONFIG": self.kubeconfig,
            "FSO_HEALTH_PORT": str(self.health_port),
            "FSO_METRICS_PORT": str(self.metrics_port),
            "FSO_RESYNC_SECONDS": env.get("FSO_RESYNC_SECONDS", "30"),
            "PYTHONUNBUFFERED": "1",
        })
        env.update(self.extra_env)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "featurestore_operator.cli", "run",
             *(["--standalone"] if self.standalone else []), *self.args],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True,
        )
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"operator exited {self.proc.returncode}:\n{self.log_text()[-4000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"operator not healthy after {wait}s:\n{self.log_text()[-4000:]}")

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            return r.read().decode()

    def kill(self) -> None:
        """SIGKILL: no chance to clean up (crash tests)."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def __enter__(self) -> "OperatorProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
