"""A real, local Kubernetes control plane for tests: etcd + kube-apiserver + kube-controller-manager.

No kind, no Docker, no fakes: the binaries are real (Debian bookworm's Kubernetes 1.20.2
built by ``hack/provision-controlplane.sh``, or envtest/kind binaries found through
``KUBEBUILDER_ASSETS`` / ``PATH``). There is no scheduler and no kubelet, so no Pod ever
runs, but everything the API server and the controller manager do is real: OpenAPI schema
validation of custom resources, RBAC, server-side apply, garbage collection via
ownerReferences, Deployment -> ReplicaSet -> Pod objects, namespace finalization.

Usage::

    cp = ControlPlane()
    cp.start()                 # ~3-5 s on 2 cores
    cp.kubeconfig              # path to a kubeconfig (CA = the apiserver's self-signed cert)
    cp.server, cp.token        # https://127.0.0.1:PORT and the admin bearer token
    cp.restart_apiserver()     # fault injection: same port, same etcd, same cert
    cp.stop()

Binary search order (same as the provisioning script), per binary:
``$KUBEBUILDER_ASSETS`` -> ``PATH`` -> ``$FSO_CACHE/k8s/bin``
(``FSO_CACHE`` defaults to ``~/.cache/featurestore-operator``).

This module imports only the standard library and ``tests.support.process`` (``cryptography`` is
used when present, otherwise the ``openssl`` CLI generates the service-account key).
"""

from __future__ import annotations

import atexit
import json
import os
import re
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.support.process import ManagedProcess, ProcessError, free_port

__all__ = [
    "ControlPlane",
    "ControlPlaneError",
    "BinariesNotFound",
    "Binaries",
    "cache_dir",
    "find_binary",
    "find_binaries",
    "find_tool",
    "tool_path_dirs",
]

ADMIN_USER = "fso-admin"
CONTROLLERS = [
    "garbagecollector",
    "namespace",
    "serviceaccount",
    "serviceaccount-token",
    "root-ca-cert-publisher",
    "clusterrole-aggregation",  # Kubeflow aggregates kubeflow-edit/view ClusterRoles
    "deployment",
    "replicaset",
    "statefulset",
    "daemonset",
    "job",
    "cronjob",
    "endpoint",
    "endpointslice",
    "disruption",
    "pvc-protection",  # removes kubernetes.io/pvc-protection once no pod uses a deleted claim
    "pv-protection",
]


class ControlPlaneError(RuntimeError):
    """A control-plane process failed to start or become ready."""


class BinariesNotFound(ControlPlaneError):
    """Required binaries are missing; ``missing`` names them."""

    def __init__(self, missing: Sequence[str]):
        self.missing = list(missing)
        super().__init__(
            "control-plane binaries not found: "
            + ", ".join(self.missing)
            + " (searched $KUBEBUILDER_ASSETS, PATH and "
            + str(cache_dir() / "k8s" / "bin")
            + "); run hack/provision-controlplane.sh to build/cache them"
        )


# --------------------------------------------------------------------------- binaries


def cache_dir() -> Path:
    return Path(os.environ.get("FSO_CACHE") or Path.home() / ".cache" / "featurestore-operator")


def tool_path_dirs() -> list[str]:
    """Extra directories holding tools (helm, kubectl fallback) installed by the script."""
    return [str(cache_dir() / "bin"), str(cache_dir() / "k8s" / "bin")]


def find_binary(name: str) -> str | None:
    """KUBEBUILDER_ASSETS -> PATH -> cache, like hack/provision-controlplane.sh."""
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets:
        cand = Path(assets) / name
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand)
    found = shutil.which(name)
    if found:
        return found
    cand = cache_dir() / "k8s" / "bin" / name
    if cand.is_file() and os.access(cand, os.X_OK):
        return str(cand)
    return None


def find_tool(name: str) -> str | None:
    """A CLI tool (helm, kubectl): KUBEBUILDER_ASSETS (kubectl) -> PATH -> cache dirs."""
    if name == "kubectl":
        return find_binary("kubectl") or _find_in(name, tool_path_dirs())
    return shutil.which(name) or _find_in(name, tool_path_dirs())


def _find_in(name: str, dirs: Sequence[str]) -> str | None:
    for d in dirs:
        cand = Path(d) / name
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand)
    return None


@dataclass
class Binaries:
    etcd: str
    kube_apiserver: str
    kube_controller_manager: str | None
    version: str = ""  # e.g. "v1.20.2"

    @property
    def minor(self) -> int:
        m = re.match(r"v?(\d+)\.(\d+)", self.version)
        return int(m.group(2)) if m else 0


def _binary_version(path: str) -> str:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    m = re.search(r"v\d+\.\d+\.\d+\S*", out)
    return m.group(0) if m else ""


def find_binaries(require_controller_manager: bool = False) -> Binaries:
    """Locate etcd, kube-apiserver and (optionally required) kube-controller-manager."""
    etcd = find_binary("etcd")
    api = find_binary("kube-apiserver")
    kcm = find_binary("kube-controller-manager")
    # Prefer a controller manager that sits next to the apiserver (same build).
    if api:
        sibling = Path(api).parent / "kube-controller-manager"
        if sibling.is_file() and os.access(sibling, os.X_OK):
            kcm = str(sibling)
    missing = [n for n, p in (("etcd", etcd), ("kube-apiserver", api)) if not p]
    if require_controller_manager and not kcm:
        missing.append("kube-controller-manager")
    if missing:
        raise BinariesNotFound(missing)
    assert etcd and api
    return Binaries(etcd=etcd, kube_apiserver=api, kube_controller_manager=kcm, version=_binary_version(api))


# --------------------------------------------------------------------------- helpers


def _generate_rsa_key(key_path: Path, pub_path: Path) -> None:
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
        pub_path.write_bytes(
            key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
    except ImportError as err:
        openssl = shutil.which("openssl")
        if not openssl:
            raise ControlPlaneError("need the `cryptography` package or the `openssl` CLI") from err
        subprocess.run([openssl, "genrsa", "-out", str(key_path), "2048"], check=True, capture_output=True)
        subprocess.run(
            [openssl, "rsa", "-in", str(key_path), "-pubout", "-out", str(pub_path)], check=True, capture_output=True
        )
    key_path.chmod(0o600)


WORKDIR_PREFIX = "fso-controlplane-"


def _sweep_stale_workdirs() -> None:
    """Remove temp dirs left by control planes whose owning process was SIGKILLed (their
    children die with it through PR_SET_PDEATHSIG, but nobody removed the directory)."""
    for d in Path(tempfile.gettempdir()).glob(WORKDIR_PREFIX + "*"):
        try:
            pid = int((d / "owner.pid").read_text().strip())
        except (OSError, ValueError):
            continue
        try:
            os.kill(pid, 0)
            continue  # owner still alive
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except PermissionError:
            continue


# --------------------------------------------------------------------------- control plane


class ControlPlane:
    """etcd + kube-apiserver (+ kube-controller-manager) on free loopback ports."""

    def __init__(
        self,
        binaries: Binaries | None = None,
        *,
        workdir: str | None = None,
        with_controller_manager: bool = True,
        token_users: dict[str, Sequence[str]] | None = None,
        apiserver_args: Sequence[str] = (),
        controller_manager_args: Sequence[str] = (),
        controllers: Sequence[str] = CONTROLLERS,
        start_timeout: float = 60.0,
        verbosity: int = 1,
        bind_address: str = "127.0.0.1",
        service_cluster_ip_range: str = "10.0.0.0/24",
        scheduler: str | None = None,
    ):
        """
        :param token_users: extra static token users, ``{"user": ["group", ...]}``;
            their tokens are in ``self.tokens[user]`` after ``start()``.
        :param bind_address: address the API server binds to and advertises. A non-loopback
            address (a real node: tests/support/node.py) also turns the endpoint reconciler on, so
            pods reach the API server as the first IP of ``service_cluster_ip_range``.
        :param scheduler: path of a kube-scheduler binary to run too (pods get scheduled).
        """
        self.binaries = binaries or find_binaries(require_controller_manager=False)
        self.with_controller_manager = bool(with_controller_manager and self.binaries.kube_controller_manager)
        self._own_workdir = workdir is None
        if self._own_workdir:
            _sweep_stale_workdirs()
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix=WORKDIR_PREFIX))
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self._own_workdir:
            (self.workdir / "owner.pid").write_text(str(os.getpid()))
        self.start_timeout = start_timeout
        self.verbosity = verbosity
        self.bind_address = bind_address
        self.service_cluster_ip_range = service_cluster_ip_range
        self._scheduler_bin = scheduler
        self._sched: ManagedProcess | None = None
        self._extra_api_args = list(apiserver_args)
        self._extra_kcm_args = list(controller_manager_args)
        self._controllers = list(controllers)
        self.token = secrets.token_hex(24)
        self.tokens: dict[str, str] = {ADMIN_USER: self.token}
        self._users: dict[str, list[str]] = {ADMIN_USER: ["system:masters"]}
        for user, groups in (token_users or {}).items():
            self._users[user] = list(groups)
            self.tokens[user] = secrets.token_hex(24)
        self.etcd_port = 0
        self.etcd_peer_port = 0
        self.port = 0
        self.kcm_port = 0
        self._etcd: ManagedProcess | None = None
        self._api: ManagedProcess | None = None
        self._kcm: ManagedProcess | None = None
        self.startup_seconds: dict[str, float] = {}
        self.crd_names: list[str] = []  # CRDs installed through install_crds()
        self.crd_errors: dict[str, str] = {}  # for callers recording rejected CRD files
        self._stopped = True
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ properties
    @property
    def server(self) -> str:
        return f"https://{self.bind_address}:{self.port}"

    @property
    def ca_file(self) -> Path:
        """The apiserver's self-signed serving cert (with its CA) from --cert-dir."""
        return self.workdir / "apiserver-certs" / "apiserver.crt"

    @property
    def kubeconfig(self) -> str:
        return str(self.workdir / "kubeconfig")

    @property
    def etcd_url(self) -> str:
        return f"http://127.0.0.1:{self.etcd_port}"

    @property
    def version(self) -> str:
        return self.binaries.version

    @property
    def minor(self) -> int:
        return self.binaries.minor

    @property
    def logs(self) -> dict[str, Path]:
        return {p.name: p.log_path for p in (self._etcd, self._api, self._kcm, self._sched) if p}

    def pids(self) -> dict[str, int]:
        return {p.name: p.pid for p in (self._etcd, self._api, self._kcm, self._sched) if p and p.pid and p.alive()}

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """Environment for subprocesses (kubectl, helm): KUBECONFIG set, tool dirs on PATH."""
        env = dict(os.environ if base is None else base)
        env["KUBECONFIG"] = self.kubeconfig
        env["PATH"] = os.pathsep.join([env.get("PATH", "")] + tool_path_dirs())
        return env

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> ControlPlane:
        with self._lock:
            if not self._stopped:
                return self
            self._stopped = False
            atexit.register(self.stop)
            t0 = time.monotonic()
            try:
                self._prepare_files()
                self._start_with_retries(self._start_etcd, "etcd")
                self._start_with_retries(self._start_apiserver, "kube-apiserver")
                self._write_kubeconfig(self.kubeconfig, ADMIN_USER, self.token)
                if self.with_controller_manager:
                    self._start_with_retries(self._start_controller_manager, "kube-controller-manager")
                if self._scheduler_bin:
                    self._start_with_retries(self._start_scheduler, "kube-scheduler")
            except BaseException:
                self.stop()
                raise
            self.startup_seconds["total"] = time.monotonic() - t0
            return self

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self, keep_workdir: bool = False) -> None:
        """Kill the processes (by PID and process group) and remove the temp dir
        (``keep_workdir``: keep the logs, drop the etcd data)."""
        with self._lock:
            for proc in (self._sched, self._kcm, self._api, self._etcd):
                if proc:
                    self._kill(proc)
            self._stopped = True
            if self._own_workdir and self.workdir.exists():
                if keep_workdir:
                    # Keep logs/kubeconfig for post-mortems, not the 64 MB etcd WAL; and
                    # mark it as not stale so the next run's sweep leaves it alone.
                    shutil.rmtree(self.workdir / "etcd-data", ignore_errors=True)
                    (self.workdir / "owner.pid").unlink(missing_ok=True)
                else:
                    shutil.rmtree(self.workdir, ignore_errors=True)
            try:
                atexit.unregister(self.stop)
            except Exception:
                pass

    def restart_apiserver(self, downtime: float = 0.0, grace: float = 3.0) -> None:
        """Stop and start kube-apiserver on the same port, same etcd, same cert.

        :param downtime: seconds to stay down between stop and start.
        :param grace: SIGTERM grace before SIGKILL; 0 kills at once (a crash).
        """
        self.stop_apiserver(grace=grace)
        if downtime:
            time.sleep(downtime)
        self.start_apiserver()

    def stop_apiserver(self, grace: float = 3.0) -> None:
        """Take the apiserver down (clients see connection refused) until start_apiserver()."""
        with self._lock:
            if self._api:
                self._kill(self._api, timeout=grace)

    def start_apiserver(self) -> None:
        with self._lock:
            if self._api and self._api.alive():
                return
            self._start_apiserver(reuse_port=True)

    def restart_controller_manager(self) -> None:
        with self._lock:
            if not self.with_controller_manager:
                return
            if self._kcm:
                self._kill(self._kcm)
            self._start_controller_manager()

    def add_token_user(self, user: str, groups: Sequence[str] = ()) -> str:
        """Add a static-token user. The token file is read at startup, so this restarts
        the apiserver (a few seconds). Prefer ``service_account_kubeconfig`` for RBAC
        tests: it needs no restart."""
        with self._lock:
            self._users[user] = list(groups)
            self.tokens[user] = secrets.token_hex(24)
            self._write_token_file()
            if self._api and self._api.alive():
                self.restart_apiserver()
            return self.tokens[user]

    def kubeconfig_for_token(self, token: str, path: str, user: str = "user") -> str:
        """Write a kubeconfig for ``token`` at ``path`` (same server and CA)."""
        self._write_kubeconfig(path, user, token)
        return path

    def service_account_token(self, namespace: str, name: str, expiration_seconds: int = 3600) -> str:
        """A bound token for ServiceAccount ``namespace/name`` via the TokenRequest API."""
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": expiration_seconds},
        }
        resp = self.request("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token", body)
        return resp["status"]["token"]

    def service_account_kubeconfig(self, namespace: str, name: str, path: str) -> str:
        """Kubeconfig authenticating as ServiceAccount ``namespace/name`` (it must exist)."""
        token = self.service_account_token(namespace, name)
        return self.kubeconfig_for_token(token, path, user=f"system:serviceaccount:{namespace}:{name}")

    def request(
        self,
        method: str,
        path: str,
        body: dict | None = None,
        token: str | None = None,
        timeout: float = 10.0,
        content_type: str = "application/json",
    ) -> dict:
        """Minimal authenticated HTTPS call to the apiserver (stdlib only)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {token or self.token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", content_type)
        with urllib.request.urlopen(req, context=self._ssl_context(), timeout=timeout) as r:
            raw = r.read()
        return json.loads(raw) if raw else {}

    # ------------------------------------------------------------------ CRDs
    def install_crds(self, paths: Sequence[os.PathLike], timeout: float = 60.0) -> list[str]:
        """Create (or replace) every CustomResourceDefinition in the YAML files ``paths``
        and wait until each is Established. Returns the CRD names. Needs PyYAML."""
        import yaml  # lazy: keep this module stdlib-only at import time

        names: list[str] = []
        for path in paths:
            with open(path) as fh:
                docs = [d for d in yaml.safe_load_all(fh) if d]
            for doc in docs:
                if doc.get("kind") != "CustomResourceDefinition":
                    continue
                name = doc["metadata"]["name"]
                base = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
                try:
                    self.request("POST", base, doc)
                except urllib.error.HTTPError as exc:
                    if exc.code != 409:
                        raise ControlPlaneError(
                            f"creating CRD {name} from {path} failed: HTTP {exc.code}: "
                            f"{exc.read().decode(errors='replace')}"
                        ) from None
                    current = self.request("GET", f"{base}/{name}")
                    doc = dict(doc)
                    doc["metadata"] = dict(doc["metadata"], resourceVersion=current["metadata"]["resourceVersion"])
                    try:
                        self.request("PUT", f"{base}/{name}", doc)
                    except urllib.error.HTTPError as exc2:
                        raise ControlPlaneError(
                            f"replacing CRD {name} from {path} failed: HTTP {exc2.code}: "
                            f"{exc2.read().decode(errors='replace')}"
                        ) from None
                names.append(name)
        for name in names:
            self.wait_crd_established(name, timeout)
        self.crd_names.extend(n for n in names if n not in self.crd_names)
        return names

    def wait_crd_established(self, name: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        conds: list = []
        while time.monotonic() < deadline:
            crd = self.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
            conds = (crd.get("status") or {}).get("conditions") or []
            by_type = {c.get("type"): c for c in conds}
            if by_type.get("Established", {}).get("status") == "True":
                return
            bad = [
                c
                for t, c in by_type.items()
                if (t == "NamesAccepted" and c.get("status") == "False")
                or (t == "NonStructuralSchema" and c.get("status") == "True")
            ]
            if bad:
                raise ControlPlaneError(f"CRD {name} will not be served: {bad}")
            time.sleep(0.1)
        raise ControlPlaneError(f"CRD {name} not Established after {timeout:.0f}s: {conds}")

    # ------------------------------------------------------------------ internals
    def _prepare_files(self) -> None:
        (self.workdir / "apiserver-certs").mkdir(exist_ok=True)
        (self.workdir / "kcm-certs").mkdir(exist_ok=True)
        sa_key = self.workdir / "sa.key"
        if not sa_key.exists():
            _generate_rsa_key(sa_key, self.workdir / "sa.pub")
        self._write_token_file()

    def _write_token_file(self) -> None:
        lines = []
        for i, (user, groups) in enumerate(sorted(self._users.items())):
            line = f"{self.tokens[user]},{user},uid-{i}-{user}"
            if groups:
                line += ',"' + ",".join(groups) + '"'
            lines.append(line)
        path = self.workdir / "tokens.csv"
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)

    def _ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def _process(self, name: str, args: list[str], env: dict[str, str] | None = None) -> ManagedProcess:
        return ManagedProcess(
            name, args, self.workdir / f"{name}.log", env={**os.environ, **(env or {})}, cwd=self.workdir
        ).spawn()

    def _kill(self, proc: ManagedProcess, timeout: float = 3.0) -> None:
        """SIGTERM the process group, SIGKILL after ``timeout`` (0 = SIGKILL at once).

        The grace is short on purpose: kube-apiserver 1.20 lingers ~10 s after SIGTERM
        while watches are open, and all state lives in a throwaway etcd anyway."""
        proc.stop(grace=timeout)

    def _start_with_retries(self, fn, name: str, attempts: int = 3) -> None:
        """Port races with other processes are possible: retry with fresh ports."""
        for i in range(attempts):
            try:
                fn()
                return
            except ControlPlaneError as exc:
                if i + 1 < attempts and "address already in use" in str(exc).lower():
                    continue
                raise

    def _wait(self, proc: ManagedProcess, check, what: str, timeout: float | None = None) -> float:
        try:
            return proc.wait_ready(check, timeout or self.start_timeout, what, interval=0.1)
        except ProcessError as exc:
            proc.stop(grace=0)
            raise ControlPlaneError(str(exc)) from None

    # etcd ----------------------------------------------------------------
    def _start_etcd(self) -> None:
        self.etcd_port, self.etcd_peer_port = free_port(), free_port()
        data = self.workdir / "etcd-data"
        client = f"http://127.0.0.1:{self.etcd_port}"
        peer = f"http://127.0.0.1:{self.etcd_peer_port}"
        args = [
            self.binaries.etcd,
            "--name=default",
            f"--data-dir={data}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=default={peer}",
            "--initial-cluster-state=new",
            "--unsafe-no-fsync",
            "--quota-backend-bytes=4294967296",
            "--log-level=warn",
        ]
        env = {}
        import platform

        if platform.machine() in ("aarch64", "arm64"):
            env["ETCD_UNSUPPORTED_ARCH"] = "arm64"
        self._etcd = self._process("etcd", args, env)

        def healthy() -> bool:
            with urllib.request.urlopen(client + "/health", timeout=2) as r:
                return json.loads(r.read()).get("health") in ("true", True)

        self.startup_seconds["etcd"] = self._wait(self._etcd, healthy, "healthy")

    # kube-apiserver -------------------------------------------------------
    def _apiserver_args(self) -> list[str]:
        w = self.workdir
        args = [
            self.binaries.kube_apiserver,
            f"--etcd-servers={self.etcd_url}",
            f"--secure-port={self.port}",
            f"--bind-address={self.bind_address}",
            f"--advertise-address={self.bind_address}",
            f"--cert-dir={w / 'apiserver-certs'}",
            f"--token-auth-file={w / 'tokens.csv'}",
            "--authorization-mode=Node,RBAC",
            f"--service-account-key-file={w / 'sa.pub'}",
            f"--service-account-signing-key-file={w / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-cluster-ip-range={self.service_cluster_ip_range}",
            "--allow-privileged=true",
            # The endpoint reconciler would try to publish 127.0.0.1 as the `kubernetes`
            # Service endpoint, which validation rejects (loopback), logging an error every
            # 10 s. Without a node no in-cluster client exists, so switch it off then.
            "--endpoint-reconciler-type=" + ("none" if self.bind_address.startswith("127.") else "lease"),
            # kubectl logs/exec: reach the kubelet at its node IP
            "--kubelet-preferred-address-types=InternalIP",
            "--enable-priority-and-fairness=false",
            "--profiling=false",
            "--event-ttl=1h",
            f"--v={self.verbosity}",
        ]
        if 0 < self.minor < 24:
            args.append("--insecure-port=0")  # 1.20 would otherwise open 8080 on localhost
        return args + self._extra_api_args

    def _start_apiserver(self, reuse_port: bool = False) -> None:
        if not reuse_port or not self.port:
            self.port = free_port()
        self._api = self._process("kube-apiserver", self._apiserver_args())
        self.startup_seconds["kube-apiserver"] = self._wait(self._api, self._ready, "ready")

    def _ready(self) -> bool:
        if not self.ca_file.exists():
            return False
        req = urllib.request.Request(self.server + "/readyz")
        req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, context=self._ssl_context(), timeout=2) as r:
                return r.status == 200
        except urllib.error.HTTPError:
            return False

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until the apiserver answers /readyz (e.g. after fault injection)."""
        assert self._api is not None
        self._wait(self._api, self._ready, "ready", timeout)

    # kube-controller-manager ---------------------------------------------
    def _start_controller_manager(self) -> None:
        assert self.binaries.kube_controller_manager
        w = self.workdir
        self.kcm_port = free_port()
        args = [
            self.binaries.kube_controller_manager,
            f"--kubeconfig={self.kubeconfig}",
            f"--controllers={','.join(self._controllers)}",
            "--use-service-account-credentials=false",
            f"--service-account-private-key-file={w / 'sa.key'}",
            f"--root-ca-file={self.ca_file}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.kcm_port}",
            f"--cert-dir={w / 'kcm-certs'}",
            "--concurrent-gc-syncs=5",
            f"--v={self.verbosity}",
        ]
        if 0 < self.minor < 24:
            args.append("--port=0")  # no insecure 10252 listener on 1.20
        args += self._extra_kcm_args
        self._kcm = self._process("kube-controller-manager", args)

        # Ready once its /healthz answers and the serviceaccount controller has created
        # default/default (informers synced, controllers running).
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE  # KCM's own throwaway self-signed cert

        def running() -> bool:
            url = f"https://127.0.0.1:{self.kcm_port}/healthz"
            with urllib.request.urlopen(url, context=insecure, timeout=2) as r:
                if r.status != 200:
                    return False
            try:
                self.request("GET", "/api/v1/namespaces/default/serviceaccounts/default", timeout=2)
                return True
            except urllib.error.HTTPError:
                return False

        self.startup_seconds["kube-controller-manager"] = self._wait(self._kcm, running, "running controllers")

    # kube-scheduler -------------------------------------------------------
    def _start_scheduler(self) -> None:
        assert self._scheduler_bin
        port = free_port()
        args = [
            self._scheduler_bin,
            f"--kubeconfig={self.kubeconfig}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={self.workdir / 'sched-certs'}",
            f"--v={self.verbosity}",
        ]
        if 0 < self.minor < 23:
            args.append("--port=0")  # no insecure 10251 listener
        self._sched = self._process("kube-scheduler", args)
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE  # the scheduler's throwaway self-signed cert

        def healthy() -> bool:
            with urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz", context=insecure, timeout=2) as r:
                return r.status == 200

        self.startup_seconds["kube-scheduler"] = self._wait(self._sched, healthy, "healthy")

    # kubeconfig -----------------------------------------------------------
    def _write_kubeconfig(self, path: str, user: str, token: str) -> None:
        cfg = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "fso-test",
                    "cluster": {
                        "server": self.server,
                        "certificate-authority": str(self.ca_file),
                    },
                }
            ],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": "fso-test", "context": {"cluster": "fso-test", "user": user}}],
            "current-context": "fso-test",
            "preferences": {},
        }
        p = Path(path)
        p.write_text(json.dumps(cfg, indent=2))  # JSON is YAML
        p.chmod(0o600)

    def __repr__(self) -> str:
        return (
            f"ControlPlane(server={self.server!r}, version={self.version!r}, "
            f"kcm={self.with_controller_manager}, workdir={str(self.workdir)!r})"
        )


if __name__ == "__main__":  # manual check: python tests/support/controlplane.py
    with ControlPlane() as cp:
        print(cp, cp.startup_seconds)
        print("KUBECONFIG=" + cp.kubeconfig)
        if "--hold" in sys.argv:
            try:
                signal.pause()
            except KeyboardInterrupt:
                pass
