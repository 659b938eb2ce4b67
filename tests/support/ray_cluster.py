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
    ``cores``: pin the head to these CPUs and worker i to ``cores[i % len(cores)]`` (taskset)."""

    def __init__(
        self,
        workers: int = 1,
        *,
        head_cpus: int = 1,
        worker_cpus: int = 1,
        object_store_bytes: int = 150_000_000,
        cores: list[int] | None = None,
    ):
        self.port = free_port()
        # short (Ray's unix sockets) and outside /tmp, which is an emptyDir in the pod
        self.temp = Path(tempfile.mkdtemp(prefix="ray", dir="/var/tmp"))
        ray_cli = str(Path(sys.executable).parent / "ray")
        common = [
            "--block",
            f"--object-store-memory={object_store_bytes}",
            "--disable-usage-stats",
            "--node-ip-address=127.0.0.1",
        ]
        env = {"RAY_USAGE_STATS_ENABLED": "0"}

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
            "--include-dashboard=false",
            f"--temp-dir={self.temp}",
            *common,
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

    def close(self) -> None:
        for p in reversed(self.procs):
            p.stop(grace=30)
        shutil.rmtree(self.temp, ignore_errors=True)
