"""PodRunner shares host mount points between runners (other test processes too): one runner closing
must never detach the volumes of a pod another runner still runs (removing a mount point detaches
its bind mounts in every mount namespace)."""

from __future__ import annotations

import fcntl
import secrets
import shutil
from pathlib import Path

from tests.support.podrunner import MOUNTPOINTS_LOCK, PodRunner, unshare_available
from tests.support.prerequisites import missing
from tests.support.waiting import wait_for

if unshare_available():
    missing(f"needs podrunner ({unshare_available()})", module=True)


def deployment(name: str, command: list[str], mount_path: str) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "c", "command": command, "volumeMounts": [{"name": "data", "mountPath": mount_path}]}
                    ],
                    "volumes": [{"name": "data", "emptyDir": {}}],
                }
            }
        },
    }


def test_closing_a_runner_keeps_another_runners_pod_volumes_mounted():
    top = f"/podrunner-test-{secrets.token_hex(4)}"
    target = f"{top}/data"
    objects = [deployment("job", ["true"], target), deployment("server", ["sleep", "300"], target)]
    first, second = PodRunner(objects, secrets={}), PodRunner(objects, secrets={})
    try:
        job = first.pod(first.find("Deployment", "job"))
        assert job.run(job.prepare("c"), timeout=60).returncode == 0  # creates the mount point on the host
        assert Path(target).is_dir()

        server = second.pod(second.find("Deployment", "server"))
        (server.volumes["data"] / "marker").write_text("still here")
        running = server.start(server.prepare("c"))
        seen = Path(f"/proc/{running.pid}/root{target}/marker")  # the file as the server's namespace sees it
        wait_for(seen.exists, timeout=60, what="the server's volume mounted")

        first.close()
        assert running.proc.poll() is None, running.log()
        assert seen.exists() and seen.read_text() == "still here", "the first runner's close detached the volume"
    finally:
        first.close()
        second.close()
    try:
        with open(MOUNTPOINTS_LOCK) as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # a runner of another test process lives: the last one out removes them
            assert not Path(top).exists(), "the last runner out left the mount points behind"
    finally:
        shutil.rmtree(top, ignore_errors=True)
