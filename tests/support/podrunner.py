"""Run a rendered Kubernetes container as a local process, the way the kubelet would start it.

Given the objects the operator renders (Deployment, CronJob, Job), :class:`PodRunner` takes one
pod template and one of its containers and runs **its exact** ``command`` + ``args``, ``env``,
``workingDir`` and volume mounts as a local process — nothing is hand-written or rewritten:

* env: ``value`` (with the kubelet's ``$(VAR)`` expansion against earlier entries),
  ``valueFrom.secretKeyRef`` / ``configMapKeyRef`` (resolved from in-test Secret/ConfigMap data,
  honouring ``optional``), ``fieldRef`` (metadata.name/namespace, spec.serviceAccountName);
  ``envFrom`` as well. ``command``/``args`` get the kubelet's ``$(VAR)`` expansion
  (:func:`expand`, a port of k8s.io/kubernetes/third_party/forked/golang/expansion).
* volumes: ``configMap`` / ``secret`` (all keys or ``items``, ``defaultMode``/``mode``,
  ``optional``) become files in a temp dir in the kubelet's AtomicWriter layout (``..data`` ->
  ``..<timestamp>/``, one symlink per key), ``emptyDir`` a fresh temp dir per pod,
  ``persistentVolumeClaim`` a temp dir per claim shared by every pod of the runner, ``projected``
  ``serviceAccountToken`` sources a token file minted by ``service_account_token(namespace, sa,
  audience, expirationSeconds)`` (a real TokenRequest, supplied by the test) for the pod's
  ``serviceAccountName`` (no refresh: the kubelet renews at 80% of the lifetime, tests are shorter).
* the process runs in a private mount namespace (``unshare --mount --propagation private``, so
  root is required) where each volume dir is bind-mounted onto the container's ``mountPath``
  (parents first, mount points inside read-only API volumes pre-created like kubelet #60342),
  ``readOnly`` mounts are remounted read-only, and ``readOnlyRootFilesystem`` remounts ``/``
  read-only in that namespace. So the process sees exactly /etc/feast/feature_store.yaml,
  /etc/feast/redis-tls/ca.crt, /repo, /tmp, /data ... at the rendered paths. Like the kubelet, a
  per-container file is bound at ``terminationMessagePath`` (:meth:`Pod.termination_message`).

What it does not do (documented, deliberate): images (the host's programs stand in for the
image: ``image_env`` gives the image's PATH, ``image_workdir`` its WORKDIR), users
(``runAsUser``/``fsGroup``: the process stays root, as mounting needs it), network namespaces
(containers bind the host's ports, so :meth:`Pod.check_ports_free` fails clearly on a clash),
resources/limits, probes other than the ``httpGet`` readiness wait in :meth:`Running.wait_ready`.
``extra_env`` is added to every process (e.g. the GCS emulator's variables standing in for GKE's
metadata server / Workload Identity) underneath the container's own env.

Mount points created on the host to bind onto (e.g. an empty ``/repo``) are shared by every runner
on the machine (other test processes too): removing one detaches its bind mounts in every mount
namespace, i.e. under the running pods of other runners. So each runner holds a shared lock on
:data:`MOUNTPOINTS_LOCK` while it lives, mount points are recorded in one machine-wide list, and
the runner that closes last (it gets the lock exclusively) removes the empty ones.
"""

from __future__ import annotations

import copy
import ctypes
import ctypes.util
import fcntl
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.support.process import ManagedProcess

__all__ = ["PodRunner", "Pod", "Prepared", "Running", "PodRunnerError", "expand", "pod_spec_of", "unshare_available"]


class PodRunnerError(RuntimeError):
    """A rendered pod cannot start (what the kubelet would report as a container error)."""


# --------------------------------------------------------------------------- $(VAR) expansion


def expand(value: str, mapping: Mapping[str, str]) -> str:
    """The kubelet's ``$(VAR)`` expansion of env values, command and args.

    ``$(NAME)`` becomes the value of NAME when defined, else stays literally ``$(NAME)``;
    ``$$`` becomes ``$``; any other ``$`` is kept (so shell syntax like ``"$@"``, ``${X:-}`` or
    ``$(date ...)`` passes through unless it names a defined variable).
    """
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    n = len(value)
    while cursor < n:
        if value[cursor] == "$" and cursor + 1 < n:
            out.append(value[checkpoint:cursor])
            rest = value[cursor + 1 :]
            if rest[0] == "$":  # escaped operator
                read, is_var, advance = "$", False, 1
            elif rest[0] == "(":
                close = rest.find(")", 1)
                if close == -1:  # incomplete reference: keep "$(" and go on
                    read, is_var, advance = "$(", False, 1
                else:
                    read, is_var, advance = rest[1:close], True, close + 1
            else:
                read, is_var, advance = "$" + rest[0], False, 1
            if is_var:
                out.append(mapping[read] if read in mapping else f"$({read})")
            else:
                out.append(read)
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    out.append(value[checkpoint:])
    return "".join(out)


# --------------------------------------------------------------------------- object access


def pod_spec_of(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The pod spec inside a Deployment/StatefulSet/DaemonSet/Job/CronJob/Pod."""
    kind = obj.get("kind")
    if kind == "Pod":
        return obj["spec"]
    if kind == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        return obj["spec"]["template"]["spec"]
    raise PodRunnerError(f"{kind} has no pod template")


def unshare_available() -> str | None:
    """None when private mount namespaces work here, else why not."""
    if os.geteuid() != 0:
        return "needs root (bind mounts in a private mount namespace)"
    if not shutil.which("unshare"):
        return "the `unshare` program (util-linux) is missing"
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"], capture_output=True, text=True)
    if proc.returncode != 0:
        return f"unshare --mount failed: {proc.stderr.strip()}"
    return None


def _as_bytes(v: str | bytes) -> bytes:
    return v if isinstance(v, bytes) else v.encode()


@dataclass
class Mount:
    source: str
    target: str
    read_only: bool = False


@dataclass
class Prepared:
    """Everything needed to exec one container: the kubelet's view after resolving the spec."""

    pod: str
    container: str
    argv: list[str]
    env: dict[str, str]
    cwd: str
    mounts: list[Mount]
    read_only_root: bool
    ports: dict[str, int] = field(default_factory=dict)
    spec: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- runner


class PodRunner:
    """Runs containers of rendered objects as local processes.

    Args:
        objects: rendered objects; every ``ConfigMap`` among them is available to volumes/env.
        secrets: Secret name -> {key: value} (what the operator/backends would have written).
        config_maps: more ConfigMaps (name -> data), e.g. the user's feature repo ConfigMap.
        extra_env: added to every process below the container's env (e.g. ``GcsEmulator.env()``).
        image_env: the image's ENV (at least PATH); default: this interpreter's bin dir + system PATH.
        image_workdir: the image's WORKDIR, used when the container sets no ``workingDir``.
        namespace: metadata.namespace for fieldRefs.
    """

    def __init__(
        self,
        objects: list[Mapping[str, Any]],
        *,
        secrets: Mapping[str, Mapping[str, str | bytes]],
        config_maps: Mapping[str, Mapping[str, str]] | None = None,
        extra_env: Mapping[str, str] | None = None,
        image_env: Mapping[str, str] | None = None,
        image_workdir: str = "/",
        namespace: str = "default",
        service_account_token: Callable[[str, str, str, int], str] | None = None,
        claims: Mapping[str, Path] | None = None,
    ) -> None:
        """``claims``: host directories that back these PersistentVolumeClaims (default: a fresh one
        each), e.g. one that processes outside the pods read too, as a bucket."""
        self.objects = [copy.deepcopy(dict(o)) for o in objects]
        self.config_maps: dict[str, dict[str, str]] = {
            o["metadata"]["name"]: dict(o.get("data") or {}) for o in self.objects if o.get("kind") == "ConfigMap"
        }
        self.config_maps.update({k: dict(v) for k, v in (config_maps or {}).items()})
        self.secrets = {k: dict(v) for k, v in secrets.items()}
        self.extra_env = dict(extra_env or {})
        self.image_env = dict(
            image_env
            or {
                "PATH": os.pathsep.join(
                    [
                        str(Path(sys.executable).parent),
                        "/usr/local/sbin",
                        "/usr/local/bin",
                        "/usr/sbin",
                        "/usr/bin",
                        "/sbin",
                        "/bin",
                    ]
                )
            }
        )
        self.image_workdir = image_workdir
        self.namespace = namespace
        self.service_account_token = service_account_token
        self.base = Path(tempfile.mkdtemp(prefix="podrunner-"))
        self._claims: dict[str, Path] = dict(claims or {})
        self._created_file = MOUNTPOINTS_LOG
        self._lock = open(MOUNTPOINTS_LOCK, "a")  # noqa: SIM115 - held (shared) until close()
        fcntl.flock(self._lock, fcntl.LOCK_SH)  # waits while the last runner out removes mount points
        self._running: list[Running] = []
        self._seq = 0

    # ---- lookup
    def find(self, kind: str, name: str | None = None) -> dict[str, Any]:
        found = [o for o in self.objects if o.get("kind") == kind and (name is None or o["metadata"]["name"] == name)]
        if len(found) != 1:
            raise PodRunnerError(
                f"expected exactly one rendered {kind}{' ' + name if name else ''}, found {len(found)}"
            )
        return found[0]

    def pod(self, obj: Mapping[str, Any], *, name: str | None = None) -> Pod:
        self._seq += 1
        pod_name = name or f"{obj['metadata']['name']}-{self._seq}"
        return Pod(self, obj, pod_name, self.base / f"pod-{self._seq}-{pod_name}")

    def claim_dir(self, claim: str) -> Path:
        if claim not in self._claims:
            d = self.base / "claims" / claim
            d.mkdir(parents=True)
            self._claims[claim] = d
        return self._claims[claim]

    # ---- lifecycle
    def close(self) -> None:
        for r in list(self._running):
            r.stop()
        shutil.rmtree(self.base, ignore_errors=True)
        if self._lock.closed:
            return
        fcntl.flock(self._lock, fcntl.LOCK_UN)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another runner lives: its pods may be bound onto the mount points
            self._lock.close()
            return
        try:
            _remove_mountpoints()
        finally:
            self._lock.close()

    def __enter__(self) -> PodRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: Every runner on the machine holds a shared flock on this file while it lives.
MOUNTPOINTS_LOCK = Path(tempfile.gettempdir()) / "podrunner-mountpoints.lock"
#: Mount points created on the host by any runner's pods, one path a line (appended by the pods).
MOUNTPOINTS_LOG = Path(tempfile.gettempdir()) / "podrunner-mountpoints.log"


def _remove_mountpoints() -> None:
    """Remove the recorded mount points that are empty; call only with MOUNTPOINTS_LOCK held exclusively."""
    created = []
    if MOUNTPOINTS_LOG.exists():
        created = [p for p in MOUNTPOINTS_LOG.read_text().splitlines() if p]
    for p in sorted(set(created), key=lambda s: s.count("/"), reverse=True):
        if p.startswith("/dev/"):
            # /dev/termination-log stays (empty, on devtmpfs): /dev is shared by every process of
            # the machine, not only by runners
            continue
        try:
            if os.path.isdir(p):
                os.rmdir(p)  # only when empty
            elif os.path.isfile(p) and os.path.getsize(p) == 0:
                os.unlink(p)
        except OSError:
            pass
    MOUNTPOINTS_LOG.unlink(missing_ok=True)


class Pod:
    """One pod instance: its volumes are materialized once and shared by its containers."""

    def __init__(self, runner: PodRunner, obj: Mapping[str, Any], name: str, root: Path) -> None:
        self.runner = runner
        self.obj = obj
        self.name = name
        self.spec = pod_spec_of(obj)
        self.root = root
        root.mkdir(parents=True)
        self.volumes: dict[str, Path] = {}
        for vol in self.spec.get("volumes") or []:
            self.volumes[vol["name"]] = self._materialize(vol)

    # ---- volumes
    def _write_items(self, d: Path, data: Mapping[str, str | bytes], source: Mapping[str, Any], what: str) -> None:
        """Write a ConfigMap/Secret volume in the kubelet's AtomicWriter layout: the files live in
        a hidden timestamped dir ``..2006_01_02_15_04_05.NNN``, ``..data`` links to it, and each
        top-level name is a symlink ``NAME -> ..data/NAME``. (Programs that walk the volume see the
        hidden dir too: that is what real pods see.)"""
        default_mode = source.get("defaultMode", 0o644)
        items = source.get("items")
        if items is None:
            items = [{"key": k, "path": k} for k in data]
        # Go's os.MkdirTemp(dir, "..2006_01_02_15_04_05.") appends a random uint32 in decimal.
        ts_dir = d / (time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime()) + str(secrets.randbelow(2**32)))
        ts_dir.mkdir(mode=0o755)
        top_level: set[str] = set()
        for item in items:
            if item["key"] not in data:
                if source.get("optional"):
                    continue
                raise PodRunnerError(f"{what} has no key {item['key']!r}: the volume cannot be set up")
            p = ts_dir / item["path"]
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(_as_bytes(data[item["key"]]))
            p.chmod(item.get("mode", default_mode))
            top_level.add(Path(item["path"]).parts[0])
        (d / "..data").symlink_to(ts_dir.name)
        for name in sorted(top_level):
            (d / name).symlink_to(f"..data/{name}")

    def _materialize(self, vol: Mapping[str, Any]) -> Path:
        d = self.root / "volumes" / vol["name"]
        if "emptyDir" in vol:
            d.mkdir(parents=True)
            return d
        if "persistentVolumeClaim" in vol:
            return self.runner.claim_dir(vol["persistentVolumeClaim"]["claimName"])
        if "configMap" in vol:
            src = vol["configMap"]
            d.mkdir(parents=True)
            data = self.runner.config_maps.get(src["name"])
            if data is None:
                if src.get("optional"):
                    return d
                raise PodRunnerError(f"volume {vol['name']!r}: ConfigMap {src['name']!r} not found")
            self._write_items(d, data, src, f"ConfigMap {src['name']!r}")
            return d
        if "secret" in vol:
            src = vol["secret"]
            d.mkdir(parents=True)
            secret = self.runner.secrets.get(src["secretName"])
            if secret is None:
                if src.get("optional"):
                    return d
                raise PodRunnerError(f"volume {vol['name']!r}: Secret {src['secretName']!r} not found")
            self._write_items(d, secret, src, f"Secret {src['secretName']!r}")
            return d
        if "projected" in vol:
            d.mkdir(parents=True)
            self._write_items(
                d,
                self._projected(vol),
                {"defaultMode": vol["projected"].get("defaultMode", 0o644)},
                f"projected volume {vol['name']!r}",
            )
            return d
        raise PodRunnerError(f"volume {vol['name']!r}: unsupported volume type {sorted(vol)}")

    def _projected(self, vol: Mapping[str, Any]) -> dict[str, str]:
        """The files of a projected volume (serviceAccountToken sources only)."""
        files: dict[str, str] = {}
        for source in vol["projected"]["sources"]:
            token = source.get("serviceAccountToken")
            if token is None or self.runner.service_account_token is None:
                raise PodRunnerError(f"volume {vol['name']!r}: unsupported projected source {sorted(source)}")
            sa = self.spec.get("serviceAccountName") or "default"
            files[token["path"]] = self.runner.service_account_token(
                self.runner.namespace, sa, token.get("audience", ""), token.get("expirationSeconds", 3600)
            )
        return files

    # ---- containers
    def _container(self, name: str | None, init: bool = False) -> dict[str, Any]:
        containers = self.spec.get("initContainers" if init else "containers") or []
        if name is None:
            if len(containers) != 1:
                raise PodRunnerError(f"{self.name}: name the container (has {[c['name'] for c in containers]})")
            return containers[0]
        for c in containers:
            if c["name"] == name:
                return c
        raise PodRunnerError(f"{self.name}: no container {name!r}")

    def _env_source(self, ref: Mapping[str, Any], kind: str) -> str | None:
        store = self.runner.secrets if kind == "secret" else self.runner.config_maps
        data = store.get(ref["name"])
        if data is None or ref["key"] not in data:
            if ref.get("optional"):
                return None
            raise PodRunnerError(f"{kind} {ref['name']!r} key {ref['key']!r} not found (CreateContainerConfigError)")
        v = data[ref["key"]]
        return v.decode() if isinstance(v, bytes) else v

    def _field(self, path: str) -> str:
        meta = self.obj.get("metadata", {})
        values = {
            "metadata.name": self.name,
            "metadata.namespace": meta.get("namespace", self.runner.namespace),
            "spec.serviceAccountName": self.spec.get("serviceAccountName", "default"),
            "status.podIP": "127.0.0.1",
            "status.hostIP": "127.0.0.1",
            "spec.nodeName": socket.gethostname(),
        }
        if path not in values:
            raise PodRunnerError(f"fieldRef {path} not supported")
        return values[path]

    def container_env(self, c: Mapping[str, Any]) -> dict[str, str]:
        """The container's env as the kubelet computes it (envFrom, then env with $(VAR))."""
        env: dict[str, str] = {}
        for src in c.get("envFrom") or []:
            prefix = src.get("prefix", "")
            if "configMapRef" in src:
                data = self.runner.config_maps.get(src["configMapRef"]["name"])
            else:
                raw = self.runner.secrets.get(src["secretRef"]["name"])
                data = None if raw is None else {k: (v.decode() if isinstance(v, bytes) else v) for k, v in raw.items()}
            ref = src.get("configMapRef") or src.get("secretRef") or {}
            if data is None:
                if ref.get("optional"):
                    continue
                raise PodRunnerError(f"envFrom {ref.get('name')!r} not found")
            env.update({prefix + k: v for k, v in data.items()})
        for e in c.get("env") or []:
            if "value" in e or "valueFrom" not in e:
                env[e["name"]] = expand(e.get("value", ""), env)
                continue
            vf = e["valueFrom"]
            if "secretKeyRef" in vf:
                v = self._env_source(vf["secretKeyRef"], "secret")
            elif "configMapKeyRef" in vf:
                v = self._env_source(vf["configMapKeyRef"], "configmap")
            elif "fieldRef" in vf:
                v = self._field(vf["fieldRef"]["fieldPath"])
            else:
                raise PodRunnerError(f"env {e['name']}: unsupported valueFrom {sorted(vf)}")
            if v is not None:
                env[e["name"]] = v
        return env

    def prepare(
        self, container: str | None = None, *, init: bool = False, extra_mounts: list[Mount] | None = None
    ) -> Prepared:
        c = self._container(container, init)
        if not c.get("command"):
            raise PodRunnerError(f"container {c['name']!r} has no command (the image ENTRYPOINT is not known here)")
        env = self.container_env(c)
        argv = [expand(a, env) for a in [*c["command"], *(c.get("args") or [])]]
        mounts: list[Mount] = []
        for m in c.get("volumeMounts") or []:
            if m["name"] not in self.volumes:
                raise PodRunnerError(f"container {c['name']!r} mounts unknown volume {m['name']!r}")
            src = self.volumes[m["name"]]
            if m.get("subPath"):
                src = src / m["subPath"]
            mounts.append(Mount(str(src), m["mountPath"], bool(m.get("readOnly"))))
        # The kubelet bind-mounts a per-container file at terminationMessagePath; its content ends up
        # in the pod's status (containerStatuses[].state.terminated.message): see termination_message.
        log = self.termination_log(c["name"])
        log.touch()
        mounts.append(Mount(str(log), c.get("terminationMessagePath") or "/dev/termination-log"))
        mounts += extra_mounts or []
        process_env = {**self.runner.image_env, **self.runner.extra_env, **env}
        ports = {p.get("name", str(p["containerPort"])): int(p["containerPort"]) for p in c.get("ports") or []}
        return Prepared(
            pod=self.name,
            container=c["name"],
            argv=argv,
            env=process_env,
            cwd=c.get("workingDir") or self.runner.image_workdir,
            mounts=mounts,
            read_only_root=bool((c.get("securityContext") or {}).get("readOnlyRootFilesystem")),
            ports=ports,
            spec=copy.deepcopy(c),
        )

    def termination_log(self, container: str) -> Path:
        return self.root / f"termination-log-{container}"

    def termination_message(self, container: str) -> str:
        """What the container wrote to its termination message path (the kubelet keeps 4096 bytes)."""
        path = self.termination_log(container)
        return path.read_bytes()[:4096].decode(errors="replace") if path.exists() else ""

    # ---- running
    def _command(self, p: Prepared) -> tuple[list[str], Path]:
        self.runner._seq += 1
        spec_file = self.root / f"exec-{self.runner._seq}-{p.container}.json"
        spec_file.write_text(
            json.dumps(
                {
                    "argv": p.argv,
                    "env": p.env,
                    "cwd": p.cwd,
                    "read_only_root": p.read_only_root,
                    "mounts": [m.__dict__ for m in p.mounts],
                    "created_log": str(self.runner._created_file),
                }
            )
        )
        return [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            sys.executable,
            str(Path(__file__).resolve()),
            "--exec",
            str(spec_file),
        ], spec_file

    def run(self, p: Prepared, *, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run to completion (a Job's container); returns the CompletedProcess (text output)."""
        cmd, _ = self._command(p)
        try:
            return subprocess.run(
                cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, start_new_session=True
            )
        except subprocess.TimeoutExpired as exc:
            raise PodRunnerError(
                f"{p.pod}/{p.container} did not finish within {timeout}s:\n{_tail(exc.stdout)}\n{_tail(exc.stderr)}"
            ) from None

    def run_job(self, container: str | None = None, *, timeout: float = 300) -> subprocess.CompletedProcess:
        """Init containers in order (each must succeed, like the kubelet), then the container."""
        for init in self.spec.get("initContainers") or []:
            res = self.run(self.prepare(init["name"], init=True), timeout=timeout)
            if res.returncode != 0:
                return res
        return self.run(self.prepare(container), timeout=timeout)

    def check_ports_free(self, p: Prepared) -> None:
        for name, port in p.ports.items():
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind(("0.0.0.0", port))
                except OSError as exc:
                    raise PodRunnerError(
                        f"port {port} (containerPort {name!r} of {p.pod}/{p.container}) is already in use on "
                        f"this machine ({exc.strerror}); containers share the host network here, so stop "
                        "whatever listens there (these tests run serially)"
                    ) from None

    def start(self, p: Prepared) -> Running:
        """Start a long-running container (a Deployment's); stop it with :meth:`Running.stop`."""
        self.check_ports_free(p)
        cmd, _ = self._command(p)
        log = self.root / f"{p.container}.log"
        log.unlink(missing_ok=True)
        # (imported here: this file also runs as a script, the in-namespace exec helper below)
        from tests.support.process import ManagedProcess

        running = Running(p, ManagedProcess(p.container, cmd, log).spawn(), self.runner)
        self.runner._running.append(running)
        return running


def _tail(text: str | bytes | None, lines: int = 40) -> str:
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return "\n".join(text.strip().splitlines()[-lines:])


class Running:
    """A started long-running container process (its own process group)."""

    def __init__(self, prepared: Prepared, process: ManagedProcess, runner: PodRunner) -> None:
        self.prepared = prepared
        self.process = process
        self.log_path = process.log_path
        self._runner = runner

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        assert self.process.popen is not None
        return self.process.popen

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self, lines: int = 60) -> str:
        return _tail(self.log_path.read_bytes() if self.log_path.exists() else b"", lines)

    def url(self, port: str | int, path: str = "") -> str:
        number = self.prepared.ports[port] if isinstance(port, str) else port
        return f"http://127.0.0.1:{number}{path}"

    def wait_ready(self, timeout: float = 90) -> float:
        """Poll the container's rendered readinessProbe (or startupProbe) until it passes:
        ``httpGet`` answers 200 / ``tcpSocket`` accepts a connection. Returns seconds waited."""
        probe = self.prepared.spec.get("readinessProbe") or self.prepared.spec.get("startupProbe") or {}
        check = probe.get("httpGet") or probe.get("tcpSocket")
        if not check:
            raise PodRunnerError(f"{self.prepared.container} has no httpGet/tcpSocket readiness probe")
        port = check["port"]
        number = self.prepared.ports[port] if isinstance(port, str) and not port.isdigit() else int(port)
        url = self.url(number, check.get("path", "/")) if "httpGet" in probe else f"tcp://127.0.0.1:{number}"
        from tests.support.process import ProcessError

        def probe_passes() -> bool:
            if "httpGet" in probe:
                with urllib.request.urlopen(url, timeout=2) as r:
                    return r.status == 200
            with socket.create_connection(("127.0.0.1", number), timeout=2):
                return True

        try:
            return self.process.wait_ready(probe_passes, timeout, what=f"ready ({url})", interval=0.1)
        except ProcessError as err:
            raise PodRunnerError(f"{self.prepared.pod}/{self.prepared.container}: {err}") from None

    def stop(self, timeout: float = 15) -> int | None:
        """SIGTERM the container's process group (like the kubelet), SIGKILL after ``timeout``; also
        kills workers that outlived their master (same process group)."""
        if self in self._runner._running:
            self._runner._running.remove(self)
        self.process.stop(grace=timeout)
        return self.process.returncode


# --------------------------------------------------------------------------- in-namespace exec

MS_RDONLY = 1
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384


def _exec_in_namespace(spec_path: str) -> None:  # pragma: no cover - runs in the child
    """Runs inside ``unshare --mount``: bind the volumes, make things read-only, exec argv."""
    spec = json.loads(Path(spec_path).read_text())
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)

    def mount(source: str | None, target: str, flags: int) -> None:
        rc = libc.mount(source.encode() if source else None, target.encode(), None, flags, None)
        if rc != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"mount({source!r}, {target!r}, flags={flags}): {os.strerror(err)}")

    created: list[str] = []
    mounted: list[str] = []

    def ensure(target: str, is_dir: bool) -> None:
        # Record only what is created on the host's own filesystem (not inside a bound volume).
        missing = []
        p = Path(target)
        while not os.path.lexists(p):
            if not any(str(p) == t or str(p).startswith(t.rstrip("/") + "/") for t in mounted):
                missing.append(str(p))
            p = p.parent
        if is_dir:
            os.makedirs(target, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if not os.path.exists(target):
                open(target, "a").close()
        created.extend(missing)

    mounts = spec["mounts"]
    # Open every source before mounting anything: a source under e.g. /tmp stays reachable after
    # a volume is mounted over /tmp.
    fds = [os.open(m["source"], os.O_PATH) for m in mounts]
    is_dir = [os.path.isdir(m["source"]) for m in mounts]
    order = sorted(range(len(mounts)), key=lambda i: mounts[i]["target"].rstrip("/").count("/"))
    with open(spec["created_log"], "a") as log:
        for i in order:
            m = mounts[i]
            ensure(m["target"], is_dir[i])
            log.write("".join(c + "\n" for c in created))
            log.flush()
            created.clear()
            mount(f"/proc/self/fd/{fds[i]}", m["target"], MS_BIND | MS_REC)
            mounted.append(m["target"])
    for i in order:
        if mounts[i]["read_only"]:
            mount(None, mounts[i]["target"], MS_BIND | MS_REMOUNT | MS_RDONLY)
    if spec["read_only_root"]:
        mount(None, "/", MS_BIND | MS_REMOUNT | MS_RDONLY)
    for fd in fds:
        os.close(fd)
    os.chdir(spec["cwd"])
    argv = spec["argv"]
    os.execvpe(argv[0], argv, spec["env"])


if __name__ == "__main__":  # pragma: no cover
    if len(sys.argv) == 3 and sys.argv[1] == "--exec":
        try:
            _exec_in_namespace(sys.argv[2])
        except OSError as exc:
            sys.stderr.write(f"podrunner: cannot start container: {exc}\n")
            sys.exit(128)
    sys.stderr.write("usage: podrunner.py --exec SPEC.json (internal)\n")
    sys.exit(2)
