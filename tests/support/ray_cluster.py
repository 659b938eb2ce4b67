"""A real local Ray cluster for the compute engine's data-path test and bench: ``ray start --head``
plus ``ray start --address`` workers from the ``ray`` CLI, each a :class:`ManagedProcess` in its own
session (stopped by process group, never ``ray stop``, which kills every Ray on the machine)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from tests.support.process import ManagedProcess, free_port

#: What ``ray start`` prints once its node runs (head: GCS up; worker: joined the head's GCS).
STARTED = "Ray runtime started"


class LocalRayCluster:
    """``workers`` worker nodes of ``worker_cpus`` each and a head offering ``head_cpus`` to tasks.
    ``cores``: pin the head to these CPUs and worker i to ``cores[i % len(cores)]`` (taskset).
    ``token``: Ray's token authentication on every node (RAY_AUTH_MODE=token, as KubeRay's
    ``authOptions`` sets it); ``dashboard``: the head's dashboard and Jobs API on :attr:`jobs_url`."""

    def __init__(
        self,
        workers: int = 1,
        *,
        head_cpus: int = 1,
        worker_cpus: int = 1,
        object_store_bytes: int = 150_000_000,
        cores: list[int] | None = None,
        token: str | None = None,
        dashboard: bool = False,
    ):
        self.port = free_port()
        self.dashboard_port = free_port() if dashboard else None
        # short (Ray's unix sockets) and outside /tmp, which is an emptyDir in the pod
        self.temp = Path(tempfile.mkdtemp(prefix="ray", dir="/var/tmp"))
        ray_cli = str(Path(sys.executable).parent / "ray")
        common = [
            "--block",
            f"--object-store-memory={object_store_bytes}",
            "--disable-usage-stats",
            "--node-ip-address=127.0.0.1",
        ]
        # a job's entrypoint (a shell command) finds the venv's feast, as in the Feast image
        path = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
        # Auth mode always explicit: with RAY_AUTH_MODE unset, Ray turns token auth on by itself when
        # ~/.ray/auth_token exists (authentication_token_setup.py), and a head and its workers could
        # then disagree depending on what an earlier run left in this machine's home.
        env = {"RAY_USAGE_STATS_ENABLED": "0", "PATH": path, "RAY_AUTH_MODE": "disabled"}
        if token:
            env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
        head_dashboard = (
            [
                "--include-dashboard=true",
                "--dashboard-host=127.0.0.1",
                f"--dashboard-port={self.dashboard_port}",
            ]
            if dashboard
            else ["--include-dashboard=false"]
        )

        def node_ports() -> list[str]:
            """Ports of a node's own agents, free ones: with ray[default] every node runs a dashboard
            agent, whose default ports would collide with another test's cluster on this machine."""
            return [
                f"--dashboard-agent-listen-port={free_port()}",
                f"--dashboard-agent-grpc-port={free_port()}",
                f"--metrics-export-port={free_port()}",
                f"--runtime-env-agent-port={free_port()}",
            ]

        def pin(cpus: list[int] | None) -> list[str]:
            return ["taskset", "-c", ",".join(map(str, cpus))] if cpus else []

        head = [
            *pin(cores),
            ray_cli,
            "start",
            "--head",
            f"--port={self.port}",
            f"--num-cpus={head_cpus}",
            f"--ray-client-server-port={free_port()}",
            *head_dashboard,
            f"--temp-dir={self.temp}",
            *common,
            *node_ports(),
        ]
        self.procs = [self._start("ray-head", head, env)]
        try:
            for i in range(workers):
                worker = [
                    *pin([cores[i % len(cores)]] if cores else None),
                    ray_cli,
                    "start",
                    f"--address=127.0.0.1:{self.port}",
                    f"--num-cpus={worker_cpus}",
                    *common,
                    *node_ports(),
                ]
                self.procs.append(self._start(f"ray-worker-{i}", worker, env))
        except BaseException:
            self.close()
            raise

    def _start(self, name: str, args: list[str], env: dict[str, str]) -> ManagedProcess:
        proc = ManagedProcess(name, args, self.temp / f"{name}.log", env={**os.environ, **env}, banner=False)
        proc.start(lambda: STARTED in proc.log_text(), timeout=180, what=f"started ({STARTED!r})")
        return proc

    @property
    def address(self) -> str:
        """The GCS address: the materialization driver runs on a node of the cluster (this host), as a
        Ray job's entrypoint does. (Ray Client, ray://, cannot run Feast's Ray Data pipeline.)"""
        return f"127.0.0.1:{self.port}"

    @property
    def jobs_url(self) -> str:
        """The head's Ray Jobs API (the dashboard), as the head Service's port 8265 in a RayCluster."""
        assert self.dashboard_port, "started without dashboard=True"
        return f"http://127.0.0.1:{self.dashboard_port}"

    def close(self) -> None:
        # a throw-away cluster: 5 s to exit on SIGTERM, then SIGKILL of each group (a head given 30 s
        # used them all in every teardown, 31 s of the suite per cluster)
        for p in reversed(self.procs):
            p.stop(grace=5)
        shutil.rmtree(self.temp, ignore_errors=True)
