"""The one lifecycle for every real process a test starts (etcd, kube-apiserver, redis-server,
fake-gcs-server, the operator...): spawn with its output in a log file, in its own process group,
dying with the test process; wait until a readiness check passes (failing at once, with the log's
tail, if the process exits); stop with SIGTERM to the whole group, SIGKILL after a grace period.

    proc = ManagedProcess("redis-server", [binary, "--port", str(port)], log_path)
    proc.start(lambda: ping(port), timeout=10, what="answering PING")
    ...
    proc.stop()
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

__all__ = ["ManagedProcess", "ProcessError", "free_port"]


class ProcessError(RuntimeError):
    """A process exited before it was ready, or was not ready in time."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (callers retry on "address already in use")."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # runs in the child between fork and exec
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


_LIVE: weakref.WeakSet[ManagedProcess] = weakref.WeakSet()


@atexit.register
def _stop_leftovers() -> None:
    for proc in list(_LIVE):
        proc.stop(grace=1.0)


class ManagedProcess:
    """One process: ``args`` run with ``env`` (default: this process's environment) in ``cwd``;
    stdout and stderr appended to ``log_path`` (after a line naming the command, unless ``banner``
    is False: a log that tests parse holds only what the process wrote)."""

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        log_path: str | os.PathLike[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        banner: bool = True,
    ) -> None:
        self.name = name
        self.banner = banner
        self.args = [str(a) for a in args]
        self.log_path = Path(log_path)
        self.env = dict(os.environ if env is None else env)
        self.cwd = cwd
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll() if self.popen else None

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def spawn(self) -> ManagedProcess:
        # PR_SET_PDEATHSIG fires when the forking *thread* exits: only safe from the main thread.
        main = threading.current_thread() is threading.main_thread() and sys.platform == "linux"
        with self.log_path.open("ab") as log:
            if self.banner:
                log.write(f"\n==== {time.strftime('%H:%M:%S')} starting: {' '.join(self.args)}\n".encode())
                log.flush()
            self.popen = subprocess.Popen(
                self.args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
                preexec_fn=_die_with_parent if main else None,
            )
        _LIVE.add(self)
        return self

    def wait_ready(
        self, check: Callable[[], object], timeout: float, what: str = "ready", interval: float = 0.05
    ) -> float:
        """Poll ``check`` (an exception or a falsy value: not yet) until it passes; seconds taken."""
        t0 = time.monotonic()
        last: object = None
        while time.monotonic() - t0 < timeout:
            if not self.alive():
                raise ProcessError(
                    f"{self.name} exited with code {self.returncode} before it was {what}; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            try:
                if check():
                    return time.monotonic() - t0
            except Exception as err:  # noqa: BLE001 - not ready yet
                last = err
            time.sleep(interval)
        raise ProcessError(
            f"{self.name} not {what} after {timeout:.0f}s (last check: {last!r}); "
            f"log {self.log_path}:\n{self.log_tail()}"
        )

    def start(self, check: Callable[[], object], timeout: float, what: str = "ready") -> float:
        """spawn() and wait_ready(); a process that fails to get ready is killed."""
        self.spawn()
        try:
            return self.wait_ready(check, timeout, what)
        except BaseException:
            self.stop(grace=0)
            raise

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM the process group, SIGKILL after ``grace`` seconds (0: SIGKILL at once)."""
        p = self.popen
        if p is None:
            return
        steps = ([(signal.SIGTERM, grace)] if grace > 0 and p.poll() is None else []) + [(signal.SIGKILL, 10.0)]
        for sig, wait in steps:
            try:
                os.killpg(p.pid, sig)  # the group: also whatever the process started
            except (ProcessLookupError, PermissionError):
                pass
            try:
                p.wait(timeout=wait)
                if sig == signal.SIGTERM:
                    break
            except subprocess.TimeoutExpired:
                continue
        if p.poll() is not None:  # leader gone: sweep the rest of its group
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        _LIVE.discard(self)

    def kill(self) -> None:
        """SIGKILL: no chance to clean up (crash tests)."""
        self.stop(grace=0)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:]) or "(empty log)"
