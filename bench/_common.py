"""Shared pieces of the control-plane benchmarks (bench/reconcile.py, bench/memory.py).

Everything here drives REAL processes from tests/support: etcd + kube-apiserver +
kube-controller-manager (ControlPlane), the operator as a subprocess (OperatorProcess), and a
kubelet stand-in that marks pods ready as the real controllers create them. Nothing is mocked
inside the operator.
"""

from __future__ import annotations

import base64
import concurrent.futures as cf
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _p in (str(ROOT / "operator"), str(ROOT)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from kubernetes import client, watch  # noqa: E402
from kubernetes import config as k8s_config  # noqa: E402
from kubernetes.client.exceptions import ApiException  # noqa: E402

from tests.support.controlplane import ControlPlane, find_binaries  # noqa: E402
from tests.support.kubelet import FakeKubelet  # noqa: E402
from tests.support.operator_process import OperatorProcess  # noqa: E402

G, V, P = "featurestore.kubeflow.org", "v1alpha1", "featurestores"
OWNER_LABEL = "featurestore.kubeflow.org/name"
FIELD_MANAGER = "featurestore-operator"
CRD_FILES = sorted((ROOT / "crds").glob("*.yaml")) + sorted((ROOT / "tests" / "support" / "crds").glob("*.yaml"))

AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
"""


# --------------------------------------------------------------------------- control plane


#: The helper's /24 Service range holds 254 ClusterIPs; 200 stores have 600 Services.
APISERVER_ARGS = ["--service-cluster-ip-range=10.96.0.0/16"]
#: kube-controller-manager's client defaults to 20 requests/s (burst 30). Every store's 3
#: workloads cost the controllers ~8 requests (ReplicaSet, Pod, status updates), so at the default
#: 200 stores would queue ~45 s inside the controller manager's rate limiter - for the operator
#: and the bare loop alike. Managed control planes run it with higher limits; see docs/benchmarks.md.
KCM_QPS_ARGS = ["--kube-api-qps=300", "--kube-api-burst=600"]


def start_control_plane(audit_log: Path | None = None, kcm_default_qps: bool = False) -> ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager with the project's CRDs and the Kubeflow /
    Istio CRDs (PodDefault, AuthorizationPolicy, Profile) installed, like a Kubeflow cluster.
    ``audit_log``: also write the apiserver's audit log (one JSON line per request) there."""
    args: list[str] = list(APISERVER_ARGS)
    if audit_log is not None:
        policy = audit_log.with_suffix(".policy.yaml")
        policy.write_text(AUDIT_POLICY)
        args += [
            f"--audit-policy-file={policy}",
            f"--audit-log-path={audit_log}",
            "--audit-log-format=json",
            "--audit-log-mode=blocking",
            "--audit-log-maxsize=0",
        ]
    cp = ControlPlane(
        find_binaries(require_controller_manager=True),
        apiserver_args=args,
        controller_manager_args=[] if kcm_default_qps else KCM_QPS_ARGS,
    )
    cp.start()
    try:
        cp.install_crds(CRD_FILES)
    except BaseException:
        cp.stop()
        raise
    return cp


def api_client(cp: ControlPlane, pool: int = 32) -> client.ApiClient:
    cfg = client.Configuration()
    k8s_config.load_kube_config(config_file=cp.kubeconfig, client_configuration=cfg)
    cfg.connection_pool_maxsize = pool
    return client.ApiClient(cfg)


def create_namespace(api: client.ApiClient, name: str) -> None:
    client.CoreV1Api(api).create_namespace(
        {"metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "kubeflow-profile"}}}
    )
    # The serviceaccount controller creates "default"; nothing here needs it.


def delete_namespace(api: client.ApiClient, name: str, timeout: float = 300.0) -> float:
    """Delete a namespace and wait until the namespace controller removed everything in it."""
    core = client.CoreV1Api(api)
    t0 = time.monotonic()
    try:
        core.delete_namespace(name)
    except ApiException as err:
        if err.status != 404:
            raise
    while time.monotonic() - t0 < timeout:
        try:
            core.read_namespace(name)
        except ApiException as err:
            if err.status == 404:
                return time.monotonic() - t0
            raise
        time.sleep(0.5)
    raise TimeoutError(f"namespace {name} still there after {timeout}s")


# --------------------------------------------------------------------------- objects


def fs_manifest(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{G}/{V}",
        "kind": "FeatureStore",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"project": "bench", **spec},
    }


def create_featurestores(
    api: client.ApiClient, manifests: list[dict[str, Any]], workers: int = 8
) -> list[dict[str, Any]]:
    """Create FeatureStores concurrently (what `kubectl apply -f dir/` of many stores amounts to)."""
    crd = client.CustomObjectsApi(api)

    def one(m: dict[str, Any]) -> dict[str, Any]:
        return crd.create_namespaced_custom_object(G, V, m["metadata"]["namespace"], P, m)

    with cf.ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, manifests))


def rendered_children(body: dict[str, Any]) -> list[dict[str, Any]]:
    """What the operator writes for one created FeatureStore (provider local: every endpoint is
    known without asking anyone), rendered in-process by the product's pure render function for
    a 1.20 API server: render() objects plus the online-store Secret."""
    from featurestore_operator.api import OperatorConfig, parse_featurestore, resolve
    from featurestore_operator.backends.incluster import new_password
    from featurestore_operator.backends.planned import planned_endpoints
    from featurestore_operator.render import ApiVersions, render
    from featurestore_operator.render.names import Names, meta

    config = OperatorConfig()
    fs = parse_featurestore(body)
    fs = fs.model_copy(update={"spec": resolve(fs.spec, config)})
    versions = ApiVersions(
        cronjob="batch/v1beta1", pdb="policy/v1beta1", hpa="autoscaling/v2beta2", cronjob_time_zone=False
    )
    objects = list(render(fs, planned_endpoints(fs), config, versions).objects)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta(fs, Names(fs).online_secret, "online-store"),
        "type": "Opaque",
        "data": {"password": base64.b64encode(new_password().encode()).decode()},
    }
    return [secret, *objects]


_PLURALS = {
    "ServiceAccount": ("", "serviceaccounts"),
    "ConfigMap": ("", "configmaps"),
    "Secret": ("", "secrets"),
    "Service": ("", "services"),
    "PersistentVolumeClaim": ("", "persistentvolumeclaims"),
    "Deployment": ("apps", "deployments"),
    "StatefulSet": ("apps", "statefulsets"),
    "Job": ("batch", "jobs"),
    "CronJob": ("batch", "cronjobs"),
    "HorizontalPodAutoscaler": ("autoscaling", "horizontalpodautoscalers"),
    "PodDisruptionBudget": ("policy", "poddisruptionbudgets"),
    "NetworkPolicy": ("networking.k8s.io", "networkpolicies"),
    "PodDefault": ("kubeflow.org", "poddefaults"),
    "AuthorizationPolicy": ("security.istio.io", "authorizationpolicies"),
}


def object_path(obj: dict[str, Any]) -> str:
    group, plural = _PLURALS[obj["kind"]]
    base = f"/api/{obj['apiVersion']}" if not group else f"/apis/{obj['apiVersion']}"
    m = obj["metadata"]
    return f"{base}/namespaces/{m['namespace']}/{plural}/{m['name']}"


def ssa(api: client.ApiClient, obj: dict[str, Any]) -> dict[str, Any]:
    """One server-side apply (PATCH application/apply-patch+yaml, our field manager, force) - the
    same request the operator's Kube.apply makes, through the same client library."""
    method, url, headers, body, post = api.param_serialize(
        "PATCH",
        object_path(obj),
        query_params=[("fieldManager", FIELD_MANAGER), ("force", "true")],
        body=obj,
        header_params={"Content-Type": "application/apply-patch+yaml", "Accept": "application/json"},
        auth_settings=["BearerToken"],
    )
    resp = api.call_api(method, url, headers, body, post, _request_timeout=(10, 60))
    resp.read()
    if resp.status >= 400:
        raise ApiException(http_resp=resp)
    return json.loads(resp.data)


# --------------------------------------------------------------------------- kubelet + watches


class _GivenPods(FakeKubelet):
    """FakeKubelet, fed with pods from a watch instead of listing them."""

    def __init__(self, api: client.ApiClient):
        super().__init__(api)
        self.given: list[Any] = []

    def pods(self, namespace: str, selector: str) -> list[Any]:
        return self.given


class KubeletLoop:
    """Marks every Pod of a namespace (None: of all namespaces) Running/Ready as soon as the controllers
    create it (a watch plus a few patching threads, using tests/support/kubelet.FakeKubelet's status), so Deployments
    and StatefulSets become available through the real controllers. Job pods (feature-repo apply)
    are left alone: nothing in these benchmarks has a feature repo."""

    def __init__(self, api: client.ApiClient, namespace: str | None, workers: int = 4):
        self.api = api
        self.namespace = namespace
        self.pool = cf.ThreadPoolExecutor(workers)
        self.stop_event = threading.Event()
        self.marked = 0
        self._lock = threading.Lock()
        self._seen: set[str] = set()
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"kubelet-{namespace or 'all'}")
        self._local = threading.local()

    def start(self) -> KubeletLoop:
        self.thread.start()
        return self

    def _mark(self, pod: Any) -> None:
        kubelet = getattr(self._local, "kubelet", None)
        if kubelet is None:
            kubelet = self._local.kubelet = _GivenPods(self.api)
        kubelet.given = [pod]
        for attempt in range(5):
            try:
                n = kubelet.run(pod.metadata.namespace, "")
                with self._lock:
                    self.marked += n
                return
            except ApiException as err:
                if err.status == 404:
                    return
                time.sleep(0.2 * (attempt + 1))

    def _run(self) -> None:
        core = client.CoreV1Api(self.api)
        rv = None
        while not self.stop_event.is_set():
            w = watch.Watch()
            try:
                kwargs = {"timeout_seconds": 30, "allow_watch_bookmarks": False}
                if rv:
                    kwargs["resource_version"] = rv
                stream = (
                    w.stream(core.list_namespaced_pod, self.namespace, **kwargs)
                    if self.namespace
                    else w.stream(core.list_pod_for_all_namespaces, **kwargs)
                )
                for ev in stream:
                    if self.stop_event.is_set():
                        break
                    pod = ev["object"]
                    rv = pod.metadata.resource_version
                    if (
                        ev["type"] == "DELETED"
                        or (pod.metadata.labels or {}).get("app.kubernetes.io/component") == "feature-repo"
                    ):
                        continue
                    if pod.status and pod.status.phase == "Running":
                        continue
                    if pod.metadata.uid in self._seen:
                        continue
                    self._seen.add(pod.metadata.uid)
                    self.pool.submit(self._mark, pod)
            except ApiException as err:
                if err.status == 410:
                    rv = None
                    continue
                time.sleep(0.5)
            except Exception:  # connection reset etc.: reconnect
                time.sleep(0.2)
            finally:
                w.stop()

    def stop(self) -> None:
        self.stop_event.set()
        self.pool.shutdown(wait=False, cancel_futures=True)


class Tracker:
    """Watches ``list_fn(*args)`` and records when each object first satisfies ``predicate``;
    ``wait(n)`` blocks until n objects did."""

    def __init__(self, list_fn: Callable[..., Any], args: tuple[Any, ...], predicate: Callable[[dict[str, Any]], bool]):
        self.list_fn, self.args, self.predicate = list_fn, args, predicate
        self.done_at: dict[str, float] = {}
        self.cond = threading.Condition()
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Tracker:
        self.thread.start()
        return self

    def _run(self) -> None:
        rv = None
        while not self.stop_event.is_set():
            w = watch.Watch()
            try:
                kwargs: dict[str, Any] = {"timeout_seconds": 30}
                if rv:
                    kwargs["resource_version"] = rv
                for ev in w.stream(self.list_fn, *self.args, deserialize=False, **kwargs):
                    obj = ev["object"]
                    rv = obj["metadata"]["resourceVersion"]
                    name = obj["metadata"]["name"]
                    if ev["type"] != "DELETED" and name not in self.done_at and self.predicate(obj):
                        with self.cond:
                            self.done_at[name] = time.monotonic()
                            self.cond.notify_all()
                    if self.stop_event.is_set():
                        break
            except ApiException as err:
                if err.status == 410:
                    rv = None
                    continue
                time.sleep(0.5)
            except Exception:  # an ERROR event (expired resourceVersion), a reset connection
                rv = None
                time.sleep(0.2)
            finally:
                w.stop()

    def wait(self, n: int, timeout: float) -> float:
        """Monotonic time at which the n-th object became done."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.done_at) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self.done_at)} of {n} done after {timeout}s")
                self.cond.wait(min(left, 1.0))
            return sorted(self.done_at.values())[n - 1]

    def stop(self) -> None:
        self.stop_event.set()


def fs_ready(obj: dict[str, Any]) -> bool:
    return (obj.get("status") or {}).get("phase") == "Ready"


def deployment_available(obj: dict[str, Any]) -> bool:
    """The operator's own criterion (reconcile.conditions.deployment_part)."""
    st = obj.get("status") or {}
    return (
        st.get("observedGeneration", 0) >= obj["metadata"].get("generation", 0)
        and (st.get("availableReplicas") or 0) >= 1
    )


def statefulset_ready(obj: dict[str, Any]) -> bool:
    return ((obj.get("status") or {}).get("readyReplicas") or 0) >= 1


def fs_tracker(api: client.ApiClient, namespace: str, predicate: Callable[[dict[str, Any]], bool] = None) -> Tracker:
    return Tracker(
        client.CustomObjectsApi(api).list_namespaced_custom_object, (G, V, namespace, P), predicate or fs_ready
    )


def workload_trackers(api: client.ApiClient, namespace: str) -> tuple[Tracker, Tracker]:
    apps = client.AppsV1Api(api)
    return (
        Tracker(apps.list_namespaced_deployment, (namespace,), deployment_available),
        Tracker(apps.list_namespaced_stateful_set, (namespace,), statefulset_ready),
    )


# --------------------------------------------------------------------------- operator


#: benchmarks put hundreds of stores in one namespace: over the admin policy's default of 10
BENCH_POLICY = '{"maxStoresPerNamespace": 10000}'


def start_operator(cp: ControlPlane, env: dict[str, str] | None = None) -> OperatorProcess:
    env = dict(env or {})
    if "PYTHONPATH" not in env:  # an operator from another tree (--src, --before) may predate the knob and its limit
        env = {"FSO_POLICY": BENCH_POLICY, **env}
    return OperatorProcess(cp.kubeconfig, env=env).start()


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text -> {'name{labels}': value} (samples only)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        try:
            out[name] = float(value)
        except ValueError:
            pass
    return out


def metric_sum(samples: dict[str, float], name: str, **labels: str) -> float:
    total = 0.0
    for key, value in samples.items():
        base, _, rest = key.partition("{")
        if base != name:
            continue
        if all(f'{k}="{v}"' in rest for k, v in labels.items()):
            total += value
    return total


def rss_mib(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


# --------------------------------------------------------------------------- stats


def med(values: Iterable[float]) -> float:
    vals = list(values)
    return statistics.median(vals) if vals else float("nan")


def fmt_runs(values: Iterable[float], unit: str = "s", digits: int = 2) -> str:
    vals = list(values)
    return f"median {med(vals):.{digits}f}{unit}  (runs: " + ", ".join(f"{v:.{digits}f}" for v in vals) + ")"


def machine() -> str:
    import platform

    return f"{platform.node()} · {os.cpu_count()} CPUs · Python {platform.python_version()}"


class CpuMeter:
    """CPU seconds used by each process of the setup between start() and stop()."""

    def __init__(self, pids: dict[str, int]):
        import psutil

        self.procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.start_times: dict[str, float] = {}
        self.used: dict[str, float] = {}

    @staticmethod
    def _cpu(p: Any) -> float:
        t = p.cpu_times()
        return t.user + t.system + getattr(t, "children_user", 0) + getattr(t, "children_system", 0)

    def start(self) -> CpuMeter:
        self.start_times = {n: self._cpu(p) for n, p in self.procs.items()}
        self.wall = time.monotonic()
        return self

    def stop(self) -> dict[str, float]:
        self.used = {n: self._cpu(p) - self.start_times[n] for n, p in self.procs.items()}
        self.used["wall"] = time.monotonic() - self.wall
        return self.used

    def line(self) -> str:
        return "  ".join(f"{n} {v:.1f}" for n, v in self.used.items())


class Profiler:
    """py-spy sampling the operator process (all threads, native frames off) into collapsed
    stacks, for finding where its CPU goes; a no-op without ``path``."""

    def __init__(self, pid: int, path: Path | None, rate: int = 200):
        self.pid, self.path, self.rate = pid, path, rate
        self.proc: subprocess.Popen | None = None

    def start(self) -> Profiler:
        if self.path is None:
            return self
        spy = Path(sys.executable).with_name("py-spy")
        if not spy.exists():
            raise RuntimeError(f"--profile needs py-spy next to {sys.executable} (pip install py-spy)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                str(spy),
                "record",
                "--pid",
                str(self.pid),
                "--rate",
                str(self.rate),
                "--format",
                "raw",
                "--output",
                str(self.path),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
            self.proc.wait(30)
