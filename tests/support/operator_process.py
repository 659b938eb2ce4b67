"""Run the real operator (`featurestore-operator run`) as a subprocess against a test cluster."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.support import chart_identity
from tests.support.process import ManagedProcess, free_port
from tests.support.waiting import wait_for

#: a loaded 2-core machine (five test sessions, etcd, kube-apiserver) starts the operator in ~5-20 s
START_TIMEOUT = 90.0


class OperatorProcess:
    """One operator process; ``env`` adds FSO_* settings. Logs go to a file (``log_text()``).

    ``standalone`` (default) passes ``--standalone``; ``standalone=False`` with
    ``args=["--peering", NAME]`` runs a peering (HA) replica.

    ``identity="chart"`` (default): a kubeconfig carrying the test control plane's admin token is
    swapped for the chart's operator ServiceAccount (tests/support/chart_identity.py), so the process
    runs with exactly the chart's RBAC. ``identity="admin"`` keeps the admin token: say why."""

    def __init__(
        self,
        kubeconfig: str,
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
        standalone: bool = True,
        identity: str = "chart",
    ):
        assert identity in ("chart", "admin"), identity
        self.kubeconfig = chart_identity.kubeconfig_for(kubeconfig) if identity == "chart" else kubeconfig
        self.extra_env = env or {}
        self.args = args or []
        self.standalone = standalone
        self.health_port = free_port()
        self.metrics_port = free_port()
        self.log_path = Path(tempfile.mkstemp(prefix="operator-", suffix=".log")[1])
        self.process: ManagedProcess | None = None

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        # Importing feast in the test process sets PROMETHEUS_MULTIPROCESS_DIR (feast/metrics.py);
        # inherited, it would switch the operator's prometheus_client into multi-process mode.
        for var in ("PROMETHEUS_MULTIPROC_DIR", "PROMETHEUS_MULTIPROCESS_DIR", "prometheus_multiproc_dir"):
            env.pop(var, None)
        env.update(
            {
                "KUBECONFIG": self.kubeconfig,
                "FSO_HEALTH_PORT": str(self.health_port),
                "FSO_METRICS_PORT": str(self.metrics_port),
                "FSO_RESYNC_SECONDS": env.get("FSO_RESYNC_SECONDS", "30"),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra_env)
        return env

    def command(self) -> list[str]:
        # as in the image: the test extra's packages are not importable (as_in_image.py says why)
        return [
            sys.executable,
            str(Path(__file__).with_name("as_in_image.py")),
            "run",
            *(["--standalone"] if self.standalone else []),
            *self.args,
        ]

    def _new_process(self) -> ManagedProcess:
        # no banner: the log holds only the operator's own (JSON) lines, which tests parse
        self.process = ManagedProcess("operator", self.command(), self.log_path, env=self._environment(), banner=False)
        return self.process

    def spawn(self) -> ManagedProcess:
        """Start the process without waiting for it (tests of start-up failures)."""
        return self._new_process().spawn()

    def start(self, wait: float = START_TIMEOUT) -> OperatorProcess:
        self._new_process().start(self.healthy, timeout=wait, what="healthy (/healthz 200)")
        return self

    def healthy(self) -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=2) as r:
            return r.status == 200

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            return r.read().decode()

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples called ``name`` whose labels include ``labels``."""
        return sum(
            s.value
            for f in text_string_to_metric_families(self.metrics())
            for s in f.samples
            if s.name == name and labels.items() <= s.labels.items()
        )

    def reconciles(self) -> float:
        """Reconcile passes finished so far (any result): the positive signal before a negative check."""
        return self.metric("featurestore_reconciles_total")

    def wait_reconciles(self, passes: int = 2, timeout: float = 120.0) -> float:
        """Wait until ``passes`` more reconcile passes have finished. With one store, the second of them
        started after this call: whatever the operator would do about the state before it, it has done."""
        start = self.reconciles()
        return wait_for(
            lambda: (n := self.reconciles()) >= start + passes and n,
            timeout=timeout,
            interval=0.5,
            what=f"{passes} more reconcile passes (from {start:.0f})",
        )

    def api_calls(self, resource: str) -> float:
        """The operator's own count of Kubernetes API requests for ``resource`` (all verbs)."""
        return self.metric("featurestore_kube_api_calls_total", resource=resource)

    def kill(self) -> None:
        """SIGKILL: no chance to clean up (crash tests)."""
        if self.process:
            self.process.kill()

    def stop(self) -> None:
        if self.process:
            self.process.stop(grace=15.0)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        """The Popen (bench/ reads its pid)."""
        return self.process.popen if self.process else None

    @property
    def returncode(self) -> int | None:
        return self.process.returncode if self.process else None

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def __enter__(self) -> OperatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
