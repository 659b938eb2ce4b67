"""An operator upgrade with live stores, on the real API server: the previous release's chart and
operator, then `helm upgrade` to this tree's, with a local store and a gcp store (Memorystore and GCS
fakes) Ready throughout.

What is real: kube-apiserver + kube-controller-manager (Deployments -> ReplicaSets -> Pods), helm
install/upgrade of the two charts, the two operators' code (the previous one from git history, run
with the environment its chart's Deployment gives it and the token of its chart's ServiceAccount, so
with exactly its chart's RBAC). What stands in: the operator runs as a local process (this tier has no
node: the chart's Deployment stays without pods; stopping the old process and starting the new one is
what the Deployment's rollout does), and tests/support/kubelet.py reports the pods the real controllers
create as Running/Ready. The e2e tier runs the same upgrade story on real pods only when asked: its
minutes are not worth it where template hashes prove the point.

Proved: both stores stay Ready (polled every 0.2 s across the whole upgrade); no cloud operation is
repeated (the fakes count their calls); exactly the workloads whose pod template the new operator
renders differently get a new ReplicaSet (their pods are replaced), every other pod stays; the test
prints which changed and the paths that changed.
"""

from __future__ import annotations

import json
import subprocess
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.support.gcs_emulator import GcsEmulator
from tests.support.helm import CHART, ROOT, helm
from tests.support.iam_fake import GcsBucketOverlay
from tests.support.kube import OWNER_LABEL, G, P, V, condition, fs_manifest, get_fs
from tests.support.memorystore_fake import MemorystoreFake
from tests.support.operator_process import OperatorProcess
from tests.support.waiting import wait_for

#: the previous release: main at the end of 2026-11-30 (chart 0.1.0), the last commit before the
#: 2026-12-07 security work (RBAC shrink, fences, hardening) changed what the operator renders
PREVIOUS = "0f94bcf78a6ecb56ed08520a42dd2ebf849d898b"
PROJECT, REGION = "test-project", "us-central1"
RELEASE = "fso-upgrade"
SA = f"{RELEASE}-featurestore-operator"
#: the chart values of both releases (names both charts know); the CRD is the tier's (session fixture)
VALUES = {
    "crds": {"install": False},
    "webhook": {"enabled": False},
    "istio": False,
    "resyncSeconds": 10,
    "gcp": {"project": PROJECT, "region": REGION},
}
#: settings the process gets from the test, not from the chart
PROCESS_ONLY = {"FSO_HEALTH_PORT", "FSO_METRICS_PORT", "HOME", "PYTHONDONTWRITEBYTECODE", "POD_NAME"}
RECORD_UID = "featurestore.kubeflow.org/store-uid"
#: the Feast image of the new release (the previous one ran the operator's default)
NEW_FEAST_IMAGE = "registry.example/featurestore-feast:0.2.0"
WORKLOADS = {"Deployment": "list_namespaced_deployment", "StatefulSet": "list_namespaced_stateful_set"}


def _git_tree(tmp_path: Path, *paths: str) -> Path:
    archive = tmp_path / "previous.tar"
    out = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "-o", str(archive), PREVIOUS, *paths],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if out.returncode != 0:
        pytest.fail(f"cannot read the previous release from git ({PREVIOUS}): {out.stderr}", pytrace=False)
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "previous", filter="data")
    return tmp_path / "previous"


def _chart_env(helm_bin: str, kubeconfig: str, release_ns: str) -> dict[str, str]:
    """The environment the installed release's Deployment gives the operator container."""
    manifest = helm(helm_bin, "get", "manifest", RELEASE, "-n", release_ns, kubeconfig=kubeconfig).stdout
    [deploy] = [d for d in yaml.safe_load_all(manifest) if d and d["kind"] == "Deployment"]
    [container] = deploy["spec"]["template"]["spec"]["containers"]
    env = {}
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
        elif e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
            env[e["name"]] = release_ns
    return {k: v for k, v in env.items() if k not in PROCESS_ONLY}


def _release_kubeconfig(control_plane, release_ns: str) -> str:
    """The control plane's kubeconfig with a token of the release's own ServiceAccount."""
    answer = control_plane.request(
        "POST",
        f"/api/v1/namespaces/{release_ns}/serviceaccounts/{SA}/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 3600}},
    )
    cfg = json.loads(Path(control_plane.kubeconfig).read_text())
    for user in cfg["users"]:
        user["user"] = {"token": answer["status"]["token"]}
    path = Path(tempfile.mkstemp(prefix="operator-release-", suffix=".kubeconfig")[1])
    path.write_text(json.dumps(cfg))
    return str(path)


def _workloads(api: client.ApiClient, ns: str) -> dict[str, dict[str, Any]]:
    """kind/name -> generation, pod template (as the API server stores it) and its current pods
    (name/uid)."""
    apps = client.AppsV1Api(api)
    pods = client.CoreV1Api(api).list_namespaced_pod(ns).items
    found = {}
    for kind, lister in WORKLOADS.items():
        for w in getattr(apps, lister)(ns).items:
            owner = (w.metadata.labels or {}).get(OWNER_LABEL)
            selector = w.spec.selector.match_labels or {}
            # name/uid: a StatefulSet's new pod keeps its name (local-redis-0), not its uid
            mine = sorted(
                f"{p.metadata.name}/{p.metadata.uid}"
                for p in pods
                if selector.items() <= (p.metadata.labels or {}).items() and owner
            )
            found[f"{kind}/{w.metadata.name}"] = {
                "generation": w.metadata.generation,
                "template": api.sanitize_for_serialization(w.spec.template),
                "pods": mine,
            }
    return found


def _diff(a: Any, b: Any, path: str = "") -> list[str]:
    """The paths where two JSON values differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [p for k in sorted(set(a) | set(b)) for p in _diff(a.get(k), b.get(k), f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [p for i, (x, y) in enumerate(zip(a, b, strict=True)) for p in _diff(x, y, f"{path}[{i}]")]
    return [] if a == b else [path or "."]


class ReadyWatch:
    """Polls the stores' Ready condition (and plays kubelet for their pods) until stopped."""

    def __init__(self, api: client.ApiClient, kubelet, ns: str, names: list[str]):
        self.api, self.kubelet, self.ns, self.names = api, kubelet, ns, names
        self.polls = 0
        self.not_ready: list[tuple[float, str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.kubelet.run(self.ns, f"{OWNER_LABEL},app.kubernetes.io/component!=feature-repo")
            for name in self.names:
                fs = get_fs(self.api, self.ns, name)
                ready = condition(fs, "Ready") if fs else None
                if not ready or ready["status"] != "True":
                    self.not_ready.append((time.time(), name, ready))
            self.polls += 1
            self._stop.wait(0.2)

    def __enter__(self) -> ReadyWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def _install(helm_bin, kubeconfig, chart, release_ns, values_file, verb):
    args = ["install", "--create-namespace"] if verb == "install" else ["upgrade"]
    helm(helm_bin, *args, RELEASE, str(chart), "-n", release_ns, "-f", str(values_file), kubeconfig=kubeconfig)


def _operator(control_plane, helm_bin, release_ns, test_env, pythonpath) -> OperatorProcess:
    env = {**_chart_env(helm_bin, control_plane.kubeconfig, release_ns), **test_env, "PYTHONPATH": pythonpath}
    # identity "admin" keeps the kubeconfig as given: it carries the RELEASE's ServiceAccount token
    # (this release's chart RBAC, old or new), not the tier's chart identity
    kubeconfig = _release_kubeconfig(control_plane, release_ns)
    return OperatorProcess(kubeconfig, env=env, identity="admin").start()


@pytest.mark.timeout(600)
def test_helm_upgrade_with_live_stores(
    control_plane, featurestore_crd, kube_api, kubelet, helm_bin, make_namespace, tmp_path
):
    started = time.monotonic()
    previous = _git_tree(tmp_path, "charts/featurestore-operator", "operator/featurestore_operator")
    ns = make_namespace("upgrade")
    release_ns = make_namespace("upgrade-release")
    crd = client.CustomObjectsApi(kube_api)
    with MemorystoreFake(op_delay=0.3) as ms, GcsEmulator() as gcs, GcsBucketOverlay(gcs) as overlay:
        # the chart's own namespace list (FSO_NAMESPACES and its Roles): this test's stores only
        common = {**VALUES, "watchNamespaces": [ns], "gcp": {**VALUES["gcp"], "memorystoreEndpoint": ms.endpoint}}
        values = tmp_path / "values.yaml"
        values.write_text(yaml.safe_dump(common))
        # the new release brings its own Feast image, as hack/release.sh packages it
        new_values = tmp_path / "new-values.yaml"
        new_values.write_text(yaml.safe_dump({**common, "images": {"feast": NEW_FEAST_IMAGE}}))
        test_env = overlay.env()  # GCS: the emulator instead of Google (the old chart has no extraEnv)
        kc = control_plane.kubeconfig

        # --- the previous release, its operator, two stores Ready
        _install(helm_bin, kc, previous / "charts/featurestore-operator", release_ns, values, "install")
        old = _operator(control_plane, helm_bin, release_ns, test_env, str(previous / "operator"))
        try:
            crd.create_namespaced_custom_object(G, V, ns, P, fs_manifest("local"))
            crd.create_namespaced_custom_object(G, V, ns, P, fs_manifest("cloud", project="cloud", provider="gcp"))
            names = ["local", "cloud"]
            wait_for(
                lambda: (
                    kubelet.run(ns, f"{OWNER_LABEL},app.kubernetes.io/component!=feature-repo") >= 0
                    and all((condition(get_fs(kube_api, ns, n), "Ready") or {}).get("status") == "True" for n in names)
                ),
                timeout=180,
                interval=1,
                what="both stores Ready under the previous operator",
            )
            old.wait_reconciles(3)  # settled: a resync of both stores after Ready
            ready_at = time.monotonic()
            before = _workloads(kube_api, ns)
            calls_before = {r: ms.count(r) for r in ("CreateInstance", "DeleteInstance", "UpdateInstance")}
            bucket_writes_before = [r for r in overlay.requests if r.method in ("POST", "PUT", "PATCH", "DELETE")]
        finally:
            print(old.log_text()[-5000:])

        # --- the upgrade: the old pod goes, helm upgrade, the new pod comes; the stores stay Ready
        new = None
        try:
            with ReadyWatch(kube_api, kubelet, ns, names) as watch:
                old.stop()
                _install(helm_bin, kc, CHART, release_ns, new_values, "upgrade")
                new = _operator(control_plane, helm_bin, release_ns, test_env, str(ROOT / "operator"))
                new.wait_reconciles(4, timeout=180)  # two passes per store, the second after the first's writes
                before_pods = {p for w in before.values() for p in w["pods"]}

                def rolled() -> dict[str, dict[str, Any]]:
                    now = _workloads(kube_api, ns)
                    fresh = [w for w in now if w in before and now[w]["template"] != before[w]["template"]]
                    waiting = [w for w in fresh if not now[w]["pods"] or set(now[w]["pods"]) & before_pods]
                    if waiting:  # named in the timeout's message
                        raise LookupError(f"not rolled yet: {', '.join(waiting)} ({[now[w]['pods'] for w in waiting]})")
                    return now

                after = wait_for(rolled, timeout=120, interval=1, what="the changed workloads rolled")
                new.wait_reconciles(2)
            # the previous version kept the gcp store's clean-up record in the store's namespace, which
            # this version ignores: the new operator writes it where it reads records
            cloud_uid = get_fs(kube_api, ns, "cloud")["metadata"]["uid"]
            records = client.CoreV1Api(kube_api).list_namespaced_config_map(
                release_ns, label_selector=f"featurestore.kubeflow.org/cleanup-record=true,{RECORD_UID}={cloud_uid}"
            )
            assert len(records.items) == 1, "the upgraded store's clean-up record is in the operator's namespace"
            upgrade_seconds = time.monotonic() - ready_at
            calls_after = {r: ms.count(r) for r in calls_before}
            bucket_writes = [r for r in overlay.requests if r.method in ("POST", "PUT", "PATCH", "DELETE")]
            # clean up while the new operator runs (the gcp store's finalizer needs it)
            for name in names:
                crd.delete_namespaced_custom_object(G, V, ns, P, name)
            wait_for(lambda: not any(get_fs(kube_api, ns, n) for n in names), timeout=120, what="stores deleted")
        finally:
            if new:
                print(new.log_text()[-8000:])
                new.stop()
            helm(helm_bin, "uninstall", RELEASE, "-n", release_ns, kubeconfig=kc, check=False)

    assert watch.polls > 20, "the Ready watch ran through the upgrade"
    assert calls_after == calls_before, "no Memorystore operation repeated"
    assert calls_before["CreateInstance"] == 1
    assert [(r.method, r.path) for r in bucket_writes] == [(r.method, r.path) for r in bucket_writes_before], (
        "no GCS write repeated"
    )
    assert set(after) == set(before), "the same workloads"
    report = []
    for name, old_w in sorted(before.items()):
        new_w = after[name]
        changed = _diff(old_w["template"], new_w["template"])
        if changed:
            assert new_w["generation"] > old_w["generation"]
            assert not set(new_w["pods"]) & set(old_w["pods"]), f"{name}: its template changed, its pods must be new"
            report.append(f"{name}: restarted; pod template changed at {changed}")
        else:
            assert new_w["generation"] == old_w["generation"], f"{name}: spec rewritten with the same template"
            assert new_w["pods"] == old_w["pods"], f"{name}: pods replaced although its template did not change"
            report.append(f"{name}: kept its pods {old_w['pods']}")
    print("\n".join(["[upgrade] what restarted and why:", *report]))
    restarted = {r.split(":")[0] for r in report if ": restarted" in r}
    # The in-cluster Redis is one pod (the embedded default, no replicas): when its template changed
    # its restart is an outage of the local store's online store, and Ready says so (CHANGELOG,
    # "Upgrade note"). Nothing else may leave Ready.
    redis_restart = [
        e for e in watch.not_ready if e[1] == "local" and "in-cluster Redis" in (e[2] or {}).get("message", "")
    ]
    if "StatefulSet/local-redis" not in restarted:
        redis_restart = []
    others = [e for e in watch.not_ready if e not in redis_restart]
    assert not others, f"a store left Ready during the upgrade: {others[:5]}"
    print(f"[upgrade] the local store was not Ready for {len(redis_restart)} polls while its Redis pod restarted")
    # the Feast workloads run the new image; the in-cluster Redis restarts only because this
    # release changed its template (memory request 256Mi -> 128Mi, in the mesh with native sidecars):
    # exactly the workloads whose template changed, nothing else
    assert restarted == {n for n in before if n.startswith("Deployment/")} | {"StatefulSet/local-redis"}, report
    print(
        f"[upgrade] {watch.polls} Ready polls; upgrade {upgrade_seconds:.0f}s, test {time.monotonic() - started:.0f}s"
    )
