"""The e2e scenario (tests/e2e/scenario.sh, the same one the kind run uses) on a real node assembled
on this machine: tests/support/node.py (control plane + containerd/runc + kubelet + kube-proxy +
bridge CNI + dnsmasq cluster DNS + hostPath PVs) with the images hack/provision-node.sh built from
the repo's Dockerfile. Every workload runs as a real container.

The node fixture's teardown asserts that nothing is left on the machine: no bridge, no KUBE-/CNI-
iptables chains, no network namespace, mount or process of ours.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.controlplane import free_port
from tests.support.dns_responder import PROBE_NAME, DnsResponder, hosts_lines
from tests.support.node import BRIDGE, Node, missing_parts
from tests.support.waiting import wait_for

HERE = Path(__file__).resolve().parent
SCENARIO = HERE / "scenario.sh"


def _traces(node: Node) -> list[str]:
    """What of the node is still on this machine after stop()."""
    found = []
    if subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True).returncode == 0:
        found.append(f"bridge {BRIDGE}")
    for table in ("nat", "filter"):
        rules = subprocess.run(["iptables-save", "-t", table], capture_output=True, text=True).stdout
        found += [f"iptables {table}: {line}" for line in rules.splitlines() if "KUBE-" in line or "CNI-" in line]
    netns = Path("/var/run/netns")
    if netns.is_dir():
        found += [f"netns {n}" for n in os.listdir(netns) if n not in node._netns_before]
    mounts = Path("/proc/mounts").read_text().splitlines()
    found += [f"mount {m.split()[1]}" for m in mounts if str(node.workdir) in m]
    found += [f"process {name} ({p.pid})" for name, p in node._procs.items() if p.poll() is None]
    shims = subprocess.run(["pgrep", "-af", str(node.sock)], capture_output=True, text=True).stdout
    found += [f"process {line}" for line in shims.splitlines()]
    return found


def _missing(message: str) -> None:
    if os.environ.get("FSO_REQUIRE_CONTROLPLANE") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def node() -> Iterator[Node]:
    missing = missing_parts()
    if missing:
        _missing("run hack/provision-node.sh (hack/test.sh does): missing " + ", ".join(missing))
    started = time.monotonic()
    n = Node().start()
    print(f"[node] started in {time.monotonic() - started:.0f}s: {n.startup_seconds}")
    yield n
    n.stop()
    assert not _traces(n), "the node left traces behind"


def test_dns_hosts_lines() -> None:
    """ClusterIP Services by IP; headless ones by their endpoints, StatefulSet pods by hostname."""
    services = [
        {"metadata": {"name": "web", "namespace": "a"}, "spec": {"clusterIP": "10.96.0.20"}},
        {"metadata": {"name": "db", "namespace": "a"}, "spec": {"clusterIP": "None"}},
        {"metadata": {"name": "ext", "namespace": "a"}, "spec": {"type": "ExternalName", "externalName": "x.y"}},
    ]
    endpoints = [
        {
            "metadata": {"name": "db", "namespace": "a"},
            "subsets": [{"addresses": [{"ip": "10.244.0.11", "hostname": "db-0"}]}],
        },
        {"metadata": {"name": "web", "namespace": "a"}, "subsets": [{"addresses": [{"ip": "10.244.0.12"}]}]},
    ]
    assert hosts_lines(services, endpoints) == [
        "10.244.0.11 db-0.db.a.svc.cluster.local",
        "10.244.0.11 db.a.svc.cluster.local",
        "10.96.0.20 web.a.svc.cluster.local",
    ]


def test_dns_responder_answers_from_the_start_survives_a_kill_and_follows_services(tmp_path: Path) -> None:
    """A real dnsmasq fed by an instant in-memory API: the first reload comes at once, as under load.
    (The old start sent it a SIGHUP within microseconds of exec, which killed it silently.)"""
    if not shutil.which("dnsmasq"):
        _missing("run hack/provision-node.sh (hack/test.sh does): missing dnsmasq")
    services = [{"metadata": {"name": "kubernetes", "namespace": "default"}, "spec": {"clusterIP": "10.96.0.1"}}]

    def request(method: str, path: str) -> dict[str, object]:
        return {"items": services if path.endswith("/services") else []}

    dns = DnsResponder("127.0.0.1", tmp_path, request, port=free_port())
    dns.start()
    try:
        assert dns.answers(PROBE_NAME) == ["10.96.0.1"]
        assert dns.answers("nothing.default.svc.cluster.local") == []
        services.append({"metadata": {"name": "web", "namespace": "a"}, "spec": {"clusterIP": "10.96.0.20"}})
        wait_for(lambda: dns.answers("web.a.svc.cluster.local") == ["10.96.0.20"], timeout=30, what="a new Service")
        assert dns._proc
        dns._proc.send_signal(signal.SIGKILL)
        wait_for(lambda: dns.errors, timeout=30, what="the death noticed")
        wait_for(lambda: dns.answers("web.a.svc.cluster.local") == ["10.96.0.20"], timeout=60, what="restarted")
        assert [e for e in dns.errors if "restarted" in e] == dns.errors, dns.errors
    finally:
        dns.stop()


@pytest.mark.timeout(3600)
def test_scenario_on_node(node: Node, tmp_path: Path) -> None:
    """helm install -> examples/local.yaml Ready -> pods -> materialize -> client pod reads features
    through cluster DNS -> config roll-out -> deletion removes everything (scenario.sh)."""
    env = node.env()
    env["TIMEOUT_SECONDS"] = "900"
    log = tmp_path / "scenario.log"
    started = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.run(
            ["bash", str(SCENARIO)], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=HERE.parents[1], timeout=3300
        )
    text = log.read_text(errors="replace")
    print(text[-6000:])
    print(f"[node] scenario took {time.monotonic() - started:.0f}s")
    assert proc.returncode == 0, "scenario.sh failed; last lines:\n" + "\n".join(text.splitlines()[-120:])
    assert "ONLINE-FEATURES-OK" in text and "[e2e" in text and "PASSED" in text
    assert node.dns and not [e for e in node.dns.errors if "dnsmasq" in e], f"cluster DNS died: {node.dns.errors}"
