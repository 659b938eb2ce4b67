"""Provisioning waits for another apt/dpkg process (bounded, with a message) instead of failing:
hack/lib/apt.sh against locks really held by other processes - a POSIX lock as dpkg/apt take it,
and flock(1) - on lock files in a temp dir (FSO_DPKG_LOCKS), with a stand-in apt-get on PATH."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIB = ROOT / "hack" / "lib" / "apt.sh"

HOLD_POSIX = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.lockf(fd, fcntl.LOCK_EX)  # what dpkg and apt take (fcntl F_SETLK)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


@pytest.fixture
def locks(tmp_path: Path) -> list[Path]:
    paths = [tmp_path / "lock-frontend", tmp_path / "lock"]
    for p in paths:
        p.touch()
    return paths


def _hold_posix(path: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_POSIX, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout and proc.stdout.readline().strip() == "held"
    return proc


def _run(
    script: str, locks: list[Path], tmp_path: Path, timeout: float = 60
) -> tuple[subprocess.CompletedProcess, float]:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir(exist_ok=True)
    fake = fake_bin / "apt-get"
    fake.write_text('#!/bin/sh\necho "apt-get $*"\n')
    fake.chmod(0o755)
    env = {**os.environ, "FSO_DPKG_LOCKS": " ".join(map(str, locks)), "PATH": f"{fake_bin}:{os.environ['PATH']}"}
    start = time.monotonic()
    out = subprocess.run(
        ["bash", "-c", f'. "{LIB}"; {script}'], capture_output=True, text=True, env=env, timeout=timeout
    )
    return out, time.monotonic() - start


def test_waits_for_a_dpkg_style_lock_then_runs_apt(locks, tmp_path):
    holder = _hold_posix(locks[0], 4)
    try:
        out, took = _run("apt_get_locked install -y redis-server", locks, tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert out.returncode == 0, out.stderr
    assert took >= 3, f"did not wait for the lock ({took:.1f}s)"
    assert f"waiting for {locks[0]} (held by pid {holder.pid}" in out.stderr
    # apt itself also waits (a process taking the lock between our check and apt-get's)
    assert out.stdout.strip() == "apt-get -o DPkg::Lock::Timeout=600 install -y redis-server"


def test_gives_up_after_the_timeout_with_a_message(locks, tmp_path):
    holder = subprocess.Popen(["flock", str(locks[1]), "sleep", "60"])
    try:
        time.sleep(0.5)
        out, took = _run("FSO_APT_LOCK_TIMEOUT=2 apt_get_locked update", locks, tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert out.returncode == 1
    assert out.stdout == "", "apt-get ran while the lock was held"
    assert "still held" in out.stderr and "after 2s" in out.stderr and "FSO_APT_LOCK_TIMEOUT" in out.stderr
    assert 1 <= took < 20  # whole seconds of `date +%s`


def test_free_locks_do_not_wait(locks, tmp_path):
    out, took = _run("apt_get_locked update", locks, tmp_path)
    assert out.returncode == 0 and out.stderr == "" and took < 5


def test_every_apt_get_in_hack_goes_through_the_lock_wait():
    for script in (ROOT / "hack").glob("*.sh"):
        for n, line in enumerate(script.read_text().splitlines(), 1):
            code = re.sub(r'"[^"]*"|\'[^\']*\'', "", line.split("#", 1)[0])  # messages are not calls
            if re.search(r"(^|[\s;&|(])apt-get\s", code):
                pytest.fail(
                    f"{script.name}:{n} runs apt-get directly; use apt_get_locked (hack/lib/apt.sh): {line.strip()}"
                )
