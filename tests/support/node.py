"""A real single-node Kubernetes cluster on this machine, for the e2e tier.

The control plane (tests/support/controlplane.py: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler) bound to a bridge address, plus a real node: containerd (private root/state/socket)
+ runc, kubelet, kube-proxy in iptables mode, the bridge/host-local/portmap CNI plugins, dnsmasq as
cluster DNS (tests/support/dns_responder.py) and pre-created hostPath PersistentVolumes. Binaries
and images come from hack/provision-node.sh ($FSO_CACHE/node). Pods reach the API server as
10.96.0.1 (kube-proxy), the host at ``Node.host_ip``, the bridge gateway, and, as on GKE,
``metadata.google.internal`` at 169.254.169.254 (an address of the bridge, where a test may serve
tests/support/gke_metadata.py).

One node per machine at a time (a lock file): the bridge, pod CIDR, iptables chains and port 53
are machine-wide. ``stop()`` removes every trace: pods (CNI DEL), containers, mounts, network
namespaces, the bridge, the KUBE-*/CNI-* iptables chains, and restores ip_forward.

Usage::

    with Node() as node:           # ~1-2 min warm (image import dominates the first start)
        node.kubeconfig            # kubectl/helm talk to https://10.244.0.1:PORT
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
from pathlib import Path
from typing import Any

from tests.support.controlplane import (
    CONTROLLERS,
    ControlPlane,
    ControlPlaneError,
    cache_dir,
    find_binaries,
    free_port,
)
from tests.support.dns_responder import DnsResponder
from tests.support.gke_metadata import METADATA_HOST, METADATA_IP

BRIDGE = "fso0"
POD_CIDR = "10.244.0.0/24"
HOST_IP = "10.244.0.1"
SERVICE_CIDR = "10.96.0.0/12"
NODE_NAME = "fso-node"
LOCK = Path("/run/lock/fso-node.lock")
IMAGES = ("pause", "operator", "feast", "redis")
PV_COUNT = 8
#: + the HPA controller: without metrics it still scales a Deployment up to minReplicas, as on GKE
NODE_CONTROLLERS = [*CONTROLLERS, "persistentvolume-binder", "podgc", "ttl-after-finished", "horizontalpodautoscaling"]


class NodeError(RuntimeError):
    """The node could not be assembled or did not become Ready."""


def node_cache() -> Path:
    return cache_dir() / "node"


def missing_parts() -> list[str]:
    """What hack/provision-node.sh has not provided yet (empty: the node can start)."""
    missing = [b for b in ("kubelet", "kube-proxy", "kube-scheduler") if not (node_cache() / "bin" / b).exists()]
    missing += [f"image {i}" for i in IMAGES if not (node_cache() / "images" / f"{i}.tar").exists()]
    missing += [t for t in ("containerd", "ctr", "runc", "iptables", "dnsmasq", "ip") if not shutil.which(t)]
    if os.geteuid() != 0:
        missing.append("root")
    return missing


def _run(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if check and out.returncode != 0:
        raise NodeError(f"{' '.join(args)} failed ({out.returncode}): {out.stderr.strip() or out.stdout.strip()}")
    return out


class Node:
    """Control plane + containerd + kubelet + kube-proxy + DNS + PVs; see the module docstring."""

    def __init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="fso-node-"))
        self.host_ip = HOST_IP
        self.sock = self.workdir / "containerd" / "containerd.sock"
        self._lock_fd: int | None = None
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._ip_forward = "0"
        self._netns_before: set[str] = set()
        self.cp: ControlPlane | None = None
        self.dns: DnsResponder | None = None
        self.startup_seconds: dict[str, float] = {}

    # ------------------------------------------------------------------ public
    @property
    def kubeconfig(self) -> str:
        assert self.cp
        return self.cp.kubeconfig

    def env(self) -> dict[str, str]:
        assert self.cp
        return self.cp.env()

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        assert self.cp
        return self.cp.request(method, path, body)

    def trust_registry(self, address: str) -> None:
        """Let containerd pull from the registry at ``address`` (HOST:PORT) over plain HTTP: a
        loopback-only local registry (hack/local-registry.sh). containerd reads its hosts directory
        (CRI ``registry.config_path``, containerd 1.6 docs/hosts.md) at every pull: no restart.
        (For a loopback address the CRI plugin already defaults to plain HTTP, tried here: this makes
        it explicit, and is what a plain-HTTP registry on another address needs.)"""
        hosts = self.workdir / "certs.d" / address
        hosts.mkdir(parents=True, exist_ok=True)
        (hosts / "hosts.toml").write_text(
            f'server = "http://{address}"\n[host."http://{address}"]\n  capabilities = ["pull", "resolve"]\n'
        )

    def remove_images(self, *refs: str) -> None:
        """Forget these images (containerd's root persists across runs: an earlier run's pull)."""
        self._ctr("images", "rm", *refs, check=False)

    def images(self) -> list[str]:
        """The image references containerd holds (namespace k8s.io)."""
        return self._ctr("images", "ls", "-q").stdout.split()

    def image_digest(self, ref: str) -> str | None:
        """The manifest digest containerd holds for ``ref`` (None: it has no such image)."""
        rows = self._ctr("images", "ls", f"name=={ref}").stdout.splitlines()[1:]
        return rows[0].split()[2] if rows else None

    def __enter__(self) -> Node:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Node:
        missing = missing_parts()
        if missing:
            raise NodeError("run hack/provision-node.sh first; missing: " + ", ".join(missing))
        self._lock()
        try:
            self._timed("network", self._network)
            self._timed("control plane", self._control_plane)
            self._timed("dns", self._dns)
            self._timed("containerd", self._containerd)
            self._timed("images", self._import_images)
            self._timed("kubelet", self._kubelet)
            self._timed("kube-proxy", self._kube_proxy)
            self._timed("volumes", self._volumes)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Tear everything down; each step runs even when an earlier one failed."""
        for step in (
            self._drain_pods,
            self._stop_node_procs,
            self._stop_containers,
            self._unmount,
            self._remove_netns,
            self._stop_dns,
            self._keep_logs,
            self._stop_control_plane,
            self._clean_network,
        ):
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - keep tearing down
                print(f"[node] teardown step {step.__name__} failed: {exc!r}")
        shutil.rmtree(self.workdir, ignore_errors=True)
        self._unlock()

    def _keep_logs(self) -> None:
        """Copy every log of this run to $FSO_CACHE/node/last-run-logs (replaced by the next run)."""
        keep = node_cache() / "last-run-logs"
        if not self.workdir.exists():
            return  # stopped already
        shutil.rmtree(keep, ignore_errors=True)
        keep.mkdir(parents=True)
        for name, path in self.logs().items():
            if path.exists():
                shutil.copy(path, keep / f"{name}.log")

    def logs(self) -> dict[str, Path]:
        found = {name: self.workdir / f"{name}.log" for name in self._procs}
        found["dnsmasq"] = self.workdir / "dns" / "dnsmasq.log"
        if self.cp:
            found.update(self.cp.logs)
        return found

    # ------------------------------------------------------------------ start steps
    def _timed(self, name: str, fn: Any) -> None:
        t0 = time.monotonic()
        fn()
        self.startup_seconds[name] = round(time.monotonic() - t0, 1)

    def _lock(self) -> None:
        LOCK.parent.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(LOCK, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)  # another node on this machine: wait for it

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _network(self) -> None:
        self._clean_network()  # leftovers of a run that was killed
        _run("ip", "link", "add", BRIDGE, "type", "bridge")
        _run("ip", "addr", "add", f"{HOST_IP}/24", "dev", BRIDGE)
        # GKE's metadata address, for a test's GkeMetadataServer; goes with the bridge
        _run("ip", "addr", "add", f"{METADATA_IP}/32", "dev", BRIDGE)
        _run("ip", "link", "set", BRIDGE, "up")
        self._ip_forward = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
        Path("/proc/sys/net/ipv4/ip_forward").write_text("1")
        self._netns_before = set(os.listdir("/var/run/netns")) if os.path.isdir("/var/run/netns") else set()

    def _control_plane(self) -> None:
        sched = str(node_cache() / "bin" / "kube-scheduler")
        self.cp = ControlPlane(
            find_binaries(require_controller_manager=True),
            bind_address=HOST_IP,
            service_cluster_ip_range=SERVICE_CIDR,
            scheduler=sched,
            controllers=NODE_CONTROLLERS,
            start_timeout=120,
        )
        self.cp.start()

    def _dns(self) -> None:
        assert self.cp
        self.dns = DnsResponder(
            HOST_IP, self.workdir / "dns", self.cp.request, static=[f"{METADATA_IP} {METADATA_HOST}"]
        )
        self.dns.start()

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{name}.log", "ab")
        proc = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        log.close()
        self._procs[name] = proc
        return proc

    def _wait(self, name: str, check: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        proc = self._procs.get(name)
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise NodeError(f"{name} exited ({proc.returncode}): {self._tail(name)}")
            try:
                if check():
                    return
            except Exception:  # noqa: BLE001 - keep polling
                pass
            time.sleep(0.5)
        raise NodeError(f"{name} not ready after {timeout:.0f}s: {self._tail(name)}")

    def _tail(self, name: str, lines: int = 30) -> str:
        try:
            return "\n".join((self.workdir / f"{name}.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _ctr(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return _run("ctr", "--address", str(self.sock), "-n", "k8s.io", *args, check=check, timeout=timeout)

    def _containerd(self) -> None:
        state = self.workdir / "containerd"
        cni_conf = self.workdir / "cni"
        state.mkdir()
        cni_conf.mkdir()
        (self.workdir / "certs.d").mkdir()  # registry hosts (trust_registry)
        (cni_conf / "10-fso.conflist").write_text(
            json.dumps(
                {
                    "cniVersion": "0.4.0",
                    "name": "fso-pods",
                    "plugins": [
                        {
                            "type": "bridge",
                            "bridge": BRIDGE,
                            "isGateway": True,
                            "ipMasq": True,
                            "hairpinMode": True,
                            "ipam": {
                                "type": "host-local",
                                "ranges": [[{"subnet": POD_CIDR, "gateway": HOST_IP, "rangeStart": "10.244.0.10"}]],
                                "routes": [{"dst": "0.0.0.0/0"}],
                                "dataDir": str(self.workdir / "cni-ipam"),
                            },
                        },
                        {"type": "portmap", "capabilities": {"portMappings": True}},
                    ],
                }
            )
        )
        # The root (image content and snapshots) persists in the cache, so images are imported once.
        root = node_cache() / "containerd-root"
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        (state / "config.toml").write_text(f"""version = 2
root = "{root}"
state = "{state / "state"}"
[grpc]
  address = "{self.sock}"
[ttrpc]
  address = "{self.sock}.ttrpc"
[{cri}]
  sandbox_image = "k8s.gcr.io/pause:3.2"
  restrict_oom_score_adj = true
  enable_selinux = false
  disable_apparmor = true
[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"
[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[{cri}.containerd.runtimes.runc.options]
  Root = "{state / "runc"}"
[{cri}.cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "{cni_conf}"
[{cri}.registry]
  config_path = "{self.workdir / "certs.d"}"
""")
        self._spawn("containerd", ["containerd", "--config", str(state / "config.toml")])
        self._wait("containerd", lambda: self._ctr("version", timeout=10).returncode == 0, 60)
        self._remove_containers()  # containers of a killed earlier run in the persistent root

    def _import_images(self) -> None:
        """Import each image tarball whose key changed since it was last imported."""
        marks = node_cache() / "containerd-root" / "fso-imported"
        marks.mkdir(parents=True, exist_ok=True)
        for image in IMAGES:
            key = (node_cache() / "images" / f"{image}.key").read_text().strip()
            mark = marks / image
            if mark.exists() and mark.read_text().strip() == key:
                continue
            self._ctr("images", "import", str(node_cache() / "images" / f"{image}.tar"))
            mark.write_text(key)

    def _kubelet(self) -> None:
        assert self.cp
        kdir = self.workdir / "kubelet"
        kdir.mkdir()
        resolv = self.workdir / "resolv.conf"
        resolv.write_text(f"nameserver {HOST_IP}\n")
        self._spawn(
            "kubelet",
            [
                str(node_cache() / "bin" / "kubelet"),
                f"--kubeconfig={self.cp.kubeconfig}",
                f"--root-dir={kdir}",
                f"--cert-dir={kdir / 'pki'}",
                "--container-runtime=remote",
                f"--container-runtime-endpoint=unix://{self.sock}",
                "--runtime-request-timeout=10m",
                "--cgroup-driver=cgroupfs",
                "--fail-swap-on=false",
                "--cgroups-per-qos=false",
                "--enforce-node-allocatable=",
                "--eviction-hard=",
                "--image-gc-high-threshold=100",
                "--image-gc-low-threshold=99",
                "--pod-infra-container-image=k8s.gcr.io/pause:3.2",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={HOST_IP}",
                f"--address={HOST_IP}",
                "--read-only-port=0",
                "--healthz-port=0",
                f"--cluster-dns={HOST_IP}",
                "--cluster-domain=cluster.local",
                f"--resolv-conf={resolv}",
                f"--volume-plugin-dir={kdir / 'volume-plugins'}",
                "--serialize-image-pulls=false",
                "--authorization-mode=AlwaysAllow",
                "--anonymous-auth=true",
                "--v=1",
            ],
        )

        def ready() -> bool:
            node = self.cp.request("GET", f"/api/v1/nodes/{NODE_NAME}")  # type: ignore[union-attr]
            conds = {c["type"]: c["status"] for c in node.get("status", {}).get("conditions", [])}
            return conds.get("Ready") == "True"

        self._wait("kubelet", ready, 180)
        # The kubelet registers with the not-ready taint; the node lifecycle controller (not run here:
        # it would evict pods whenever a heartbeat is late on a loaded machine) lifts it once Ready.
        self.cp.request(
            "PATCH",
            f"/api/v1/nodes/{NODE_NAME}",
            {"spec": {"taints": None}},
            content_type="application/merge-patch+json",
        )

    def _kube_proxy(self) -> None:
        assert self.cp
        self._spawn(
            "kube-proxy",
            [
                str(node_cache() / "bin" / "kube-proxy"),
                f"--kubeconfig={self.cp.kubeconfig}",
                "--proxy-mode=iptables",
                f"--hostname-override={NODE_NAME}",
                f"--cluster-cidr={POD_CIDR}",
                "--conntrack-max-per-core=0",
                f"--healthz-bind-address=127.0.0.1:{free_port()}",
                f"--metrics-bind-address=127.0.0.1:{free_port()}",
                "--v=1",
            ],
        )
        # ready once the kubernetes Service (10.96.0.1) has its rules
        self._wait("kube-proxy", lambda: "10.96.0.1/32" in _run("iptables-save", "-t", "nat").stdout, 90)

    def _volumes(self) -> None:
        """Pre-created hostPath PersistentVolumes (no provisioner on this node; kind ships local-path)."""
        assert self.cp
        for i in range(PV_COUNT):
            path = self.workdir / "pv" / f"pv{i}"
            path.mkdir(parents=True)
            path.chmod(0o777)
            self.cp.request(
                "POST",
                "/api/v1/persistentvolumes",
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolume",
                    "metadata": {"name": f"fso-pv{i}", "labels": {"fso-node": "true"}},
                    "spec": {
                        "capacity": {"storage": "50Gi"},
                        "accessModes": ["ReadWriteOnce", "ReadWriteMany"],
                        "persistentVolumeReclaimPolicy": "Retain",
                        "hostPath": {"path": str(path)},
                    },
                },
            )

    # ------------------------------------------------------------------ teardown steps
    def _drain_pods(self) -> None:
        """Delete every pod while the kubelet still runs, so CNI DEL frees addresses and netns."""
        if not self.cp or "kubelet" not in self._procs or self._procs["kubelet"].poll() is not None:
            return
        for proc in (self.cp._kcm, self.cp._sched):  # no more replacements
            if proc:
                self.cp._kill(proc)
        pods = self.cp.request("GET", "/api/v1/pods")["items"]
        for pod in pods:
            meta = pod["metadata"]
            try:
                self.cp.request(
                    "DELETE", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}", {"gracePeriodSeconds": 0}
                )
            except urllib.error.HTTPError:
                pass
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            running = self._ctr("tasks", "ls", "-q", check=False, timeout=10).stdout.split()
            if not running:
                return
            time.sleep(1)

    def _stop_node_procs(self) -> None:
        for name in ("kube-proxy", "kubelet"):
            proc = self._procs.get(name)
            if proc and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        proxy = node_cache() / "bin" / "kube-proxy"
        if proxy.exists():
            _run(str(proxy), "--cleanup", check=False)

    def _stop_containers(self) -> None:
        proc = self._procs.get("containerd")
        if not proc or proc.poll() is not None:
            return
        self._remove_containers()
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _remove_containers(self) -> None:
        for task in self._ctr("tasks", "ls", "-q", check=False, timeout=30).stdout.split():
            self._ctr("tasks", "kill", "-s", "SIGKILL", task, check=False, timeout=30)
        time.sleep(1)
        for task in self._ctr("tasks", "ls", "-q", check=False, timeout=30).stdout.split():
            self._ctr("tasks", "delete", "-f", task, check=False, timeout=30)
        for ctr in self._ctr("containers", "ls", "-q", check=False, timeout=30).stdout.split():
            self._ctr("containers", "delete", ctr, check=False, timeout=30)

    def _unmount(self) -> None:
        """Unmount whatever is still mounted under our work dir or containerd's state (deepest first)."""
        roots = (str(self.workdir), str(node_cache() / "containerd-root"))
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
        for target in sorted((m for m in mounts if m.startswith(roots)), key=len, reverse=True):
            _run("umount", "-l", target, check=False)

    def _remove_netns(self) -> None:
        if not os.path.isdir("/var/run/netns"):
            return
        for name in set(os.listdir("/var/run/netns")) - self._netns_before:
            if name.startswith("cni-"):
                _run("umount", "-l", f"/var/run/netns/{name}", check=False)
                Path(f"/var/run/netns/{name}").unlink(missing_ok=True)

    def _stop_dns(self) -> None:
        if self.dns:
            self.dns.stop()

    def _stop_control_plane(self) -> None:
        if self.cp:
            self.cp.stop()

    def _clean_network(self) -> None:
        """Remove the bridge and every KUBE-*/CNI-* iptables chain and rule; restore ip_forward."""
        if _run("ip", "link", "show", BRIDGE, check=False).returncode == 0:
            _run("ip", "link", "delete", BRIDGE, check=False)
        for table in ("nat", "filter", "mangle"):
            saved = _run("iptables-save", "-t", table, check=False).stdout
            kept = [line for line in saved.splitlines() if "KUBE-" not in line and "CNI-" not in line]
            if len(kept) != len(saved.splitlines()):
                subprocess.run(
                    ["iptables-restore", "-T", table],
                    input="\n".join(kept) + "\n",
                    text=True,
                    capture_output=True,
                    timeout=60,
                )
        if self.startup_seconds.get("network") is not None:
            Path("/proc/sys/net/ipv4/ip_forward").write_text(self._ip_forward)


__all__ = ["Node", "NodeError", "ControlPlaneError", "missing_parts", "HOST_IP", "NODE_NAME"]
