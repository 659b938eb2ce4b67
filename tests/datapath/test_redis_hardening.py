"""The rendered in-cluster Redis container, run as the kubelet would (tests/support/podrunner.py) on
Debian's redis-server: it requires the password from its Secret, and the password appears in no
process's argv (``/proc/PID/cmdline`` is readable by every user on a node)."""

from __future__ import annotations

import os
import secrets
import shutil
import time
import uuid

import pytest
from featurestore_operator.api import FeatureStore, OperatorConfig, resolve
from featurestore_operator.backends.planned import planned_endpoints
from featurestore_operator.render import render
from featurestore_operator.render.names import Names

from tests.support.podrunner import PodRunner, unshare_available
from tests.support.prerequisites import missing
from tests.support.redis_server import free_port

if unshare_available() or not shutil.which("redis-server"):
    missing(f"needs redis-server and podrunner ({unshare_available()})", module=True)


def test_rendered_redis_requires_its_password_and_keeps_it_out_of_argv():
    import redis

    fs = FeatureStore.model_validate(
        {
            "apiVersion": "featurestore.kubeflow.org/v1alpha1",
            "kind": "FeatureStore",
            "metadata": {"name": "r", "namespace": "team", "uid": str(uuid.uuid4())},
            "spec": {"project": "p", "provider": "local"},
        }
    )
    fs = fs.model_copy(update={"spec": resolve(fs.spec, OperatorConfig())})
    names = Names(fs)
    password = secrets.token_hex(24)
    out = render(fs, planned_endpoints(fs), OperatorConfig())
    with PodRunner(out.objects, secrets={names.online_secret: {"password": password}}, namespace="team") as runner:
        pod = runner.pod(runner.find("StatefulSet"))
        prepared = pod.prepare("redis")
        port = free_port()
        prepared.argv += ["--port", str(port)]  # containers share the host network here: a free port
        prepared.ports = {"tcp-redis": port}
        running = pod.start(prepared)
        deadline = time.monotonic() + 30
        while True:
            try:
                assert redis.Redis(port=port, password=password, socket_timeout=2).ping()
                break
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline or running.proc.poll() is not None:
                    raise AssertionError(running.log()) from None
                time.sleep(0.2)
        with pytest.raises(redis.exceptions.AuthenticationError):
            redis.Redis(port=port, socket_timeout=2).get("k")
        with pytest.raises(redis.exceptions.AuthenticationError):
            redis.Redis(port=port, password="wrong", socket_timeout=2).ping()
        cmdlines = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if os.getpgid(int(pid)) == running.pid:
                    cmdlines.append(open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace"))
            except OSError:
                continue
        assert any("redis-server" in c for c in cmdlines), cmdlines
        assert not any(password in c for c in cmdlines), "the Redis password is in a process's argv"
