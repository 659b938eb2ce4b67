"""Private git repositories, over https (token) and ssh (key + known_hosts), with the exact resolver
and fetch containers the operator renders, run as processes with the env and Secret volumes the
kubelet would give them (tests/support/podrunner.py), against real servers started here: git's
http-backend behind HTTPS + basic auth, and Debian's sshd.

The ssh host key is checked: a known_hosts without the server's key fails (``hostkey``), it is never
accepted on first use; a wrong token or key fails as ``auth``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from featurestore_operator.api import FeatureStore, OperatorConfig, resolve
from featurestore_operator.backends.planned import planned_endpoints
from featurestore_operator.render import RepoSource, render

from tests.support.git_server import GitServer
from tests.support.git_ssh import SshGitServer
from tests.support.podrunner import PodRunner, unshare_available
from tests.support.prerequisites import missing

TOKEN = "s3cret"


@pytest.fixture(autouse=True)
def _needs_unshare():
    why = unshare_available()
    if why:
        missing(f"podrunner: {why}")


@pytest.fixture
def https() -> Iterator[GitServer]:
    server = GitServer(TOKEN)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def ssh(https) -> Iterator[SshGitServer]:
    server = SshGitServer(https.root)  # the same bare repositories, over ssh
    try:
        yield server
    finally:
        server.close()


def _objects(url: str, commit: str | None = None) -> list[dict]:
    fs = FeatureStore.model_validate(
        {
            "metadata": {"name": "s", "namespace": "ns", "uid": "u"},
            "spec": {"project": "p", "featureRepo": {"git": {"url": url, "ref": "main", "secretRef": {"name": "git"}}}},
        }
    )
    config = OperatorConfig()
    fs = fs.model_copy(update={"spec": resolve(fs.spec, config)})
    repo = RepoSource("rev", commit) if commit else None
    return render(fs, planned_endpoints(fs), config, repo=repo).objects


def resolve_ref(url: str, secret: dict[str, str], env: dict[str, str]) -> dict:
    objects = _objects(url)
    [job] = [o for o in objects if o["kind"] == "Job" and "-resolve-" in o["metadata"]["name"]]
    with PodRunner(objects, secrets={"git": secret}, extra_env=env, namespace="ns") as runner:
        pod = runner.pod(job)
        res = pod.run_job(timeout=60)
        report = json.loads(pod.termination_message("resolve"))
    assert (res.returncode == 0) == ("commit" in report), (res.stdout, res.stderr)
    return report


def fetch(url: str, commit: str, secret: dict[str, str], env: dict[str, str]) -> str:
    objects = _objects(url, commit)
    [job] = [o for o in objects if o["kind"] == "Job" and "-apply-" in o["metadata"]["name"]]
    with PodRunner(objects, secrets={"git": secret}, extra_env=env, namespace="ns") as runner:
        pod = runner.pod(job)
        res = pod.run(pod.prepare("fetch-repo", init=True), timeout=60)
        assert res.returncode == 0, res.stderr
        files = (Path(pod.volumes["repo"]) / "features.py").read_text()
    return res.stdout.strip().splitlines()[-1] + " " + files


def test_https_with_a_token(https):
    first = https.create("features", {"features.py": "# one\n"})
    second = https.push("features", {"features.py": "# two\n"})
    env = {"GIT_SSL_CAINFO": str(https.ca_file)}  # the image's CA bundle would trust a real host
    assert resolve_ref(https.url("features"), {"token": TOKEN}, env) == {
        "v": 1,
        "ref": "refs/heads/main",
        "commit": second,
    }
    assert fetch(https.url("features"), first, {"token": TOKEN}, env) == f"{first} # one\n"
    assert resolve_ref(https.url("features"), {"token": "wrong"}, env) == {"v": 1, "error": "auth"}
    assert resolve_ref(https.url("missing"), {"token": TOKEN}, env)["error"] in ("notfound", "auth")


def test_ssh_with_a_key_and_known_hosts(https, ssh):
    first = https.create("features", {"features.py": "# one\n"})
    secret = {"ssh-privatekey": ssh.client_key, "known_hosts": ssh.known_hosts()}
    assert resolve_ref(ssh.url("features"), secret, {}) == {"v": 1, "ref": "refs/heads/main", "commit": first}
    assert fetch(ssh.url("features"), first, secret, {}) == f"{first} # one\n"

    # a known_hosts that does not list this server: refused, never accepted on first use
    other = SshGitServer(https.root)
    try:
        wrong_host = {**secret, "known_hosts": other.known_hosts().replace(str(other.port), str(ssh.port))}
        assert resolve_ref(ssh.url("features"), wrong_host, {}) == {"v": 1, "error": "hostkey"}
        no_hosts = {"ssh-privatekey": ssh.client_key}
        assert resolve_ref(ssh.url("features"), no_hosts, {}) == {"v": 1, "error": "hostkey"}
        # a key the server does not authorize
        assert resolve_ref(ssh.url("features"), {**secret, "ssh-privatekey": other.client_key}, {}) == {
            "v": 1,
            "error": "auth",
        }
    finally:
        other.close()
