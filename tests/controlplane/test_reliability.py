"""Reliability of the real operator process against the real control plane, proven by breaking it.

* crash safety: SIGKILL at seeded random points while FeatureStores (provider gcp, Memorystore
  fake + fake-gcs-server behind the bucket overlay) are created, updated and deleted; after the
  last restart: no duplicate cloud resource, no orphan (cloud or Kubernetes), every live store Ready;
* cloud faults: 30 % of Memorystore and GCS calls fail with 429/500/503 and every store converges;
  a persistent 403 is named (call + permission) in the condition while it lasts, retried at a bounded
  rate, and the store converges once it is granted;
* API server faults: kube-apiserver restarted (SIGKILL, downtime) with stores in flight: the same
  operator process applies a change made right after and reconciles a store created right after;
* HA: two replicas elect one with a Lease, exactly one acts; SIGKILL of the leader hands over.

Figures (kills, stores, convergence seconds) are printed; run with ``-s`` to see them.
Knobs: FSO_CRASH_STORES (default 30), FSO_CRASH_KILLS (default 20), FSO_CRASH_SEED (default 9).
"""

from __future__ import annotations

import collections
import json
import os
import random
import time
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.support import chart_identity
from tests.support.gcs_emulator import GcsEmulator
from tests.support.iam_fake import GcsBucketOverlay
from tests.support.kube import (
    OWNER_LABEL,
    SERVER_PODS,
    G,
    P,
    V,
    as_profile_namespace,
    condition,
    custom,
    get_fs,
    is_ready,
    list_fs,
)
from tests.support.kubelet import FakeKubelet
from tests.support.labeled import labeled
from tests.support.memorystore_fake import MemorystoreFake
from tests.support.operator_process import OperatorProcess
from tests.support.waiting import wait_for

PROJECT, REGION = "test-project", "us-central1"
REPO_ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- helpers


class FlakyOverlay(GcsBucketOverlay):
    """The bucket overlay with a seeded random fault rate on every JSON-API bucket call."""

    def __init__(self, upstream, *, fail_rate: float = 0.0, codes=(429, 500, 503), seed: int = 0, **kw):
        super().__init__(upstream, **kw)
        self.fail_rate = fail_rate
        self.codes = list(codes)
        self._rng = random.Random(seed)
        self.injected = 0

    def _take_fault(self, method: str, path: str):
        fault = super()._take_fault(method, path)
        if (
            fault is None
            and self.fail_rate
            and path.startswith("/storage/v1/b")
            and self._rng.random() < self.fail_rate
        ):
            fault = self._rng.choice(self.codes)
        if fault is not None:
            self.injected += 1
        return fault


def gcp_env(ms: MemorystoreFake, overlay: GcsBucketOverlay, **extra: str) -> dict[str, str]:
    return {
        "FSO_MEMORYSTORE_ENDPOINT": ms.endpoint,
        "FSO_GCP_PROJECT": PROJECT,
        "FSO_GCP_REGION": REGION,
        "FSO_DEFAULT_PROVIDER": "gcp",
        "FSO_RESYNC_SECONDS": "10",
        # FSO_CRASH_STORES (30) stores share one namespace: over the policy's default of 10
        "FSO_POLICY": '{"maxStoresPerNamespace": 1000}',
        **overlay.env(),
        **extra,
    }


def manifest(name: str, **spec) -> dict:
    return {
        "apiVersion": f"{G}/{V}",
        "kind": "FeatureStore",
        "metadata": {"name": name},
        "spec": {"project": "rel", **spec},
    }


def gcp_manifest(name: str, memory: int = 1, replicas: int = 1) -> dict:
    # Delete on both backends: after deletion nothing may be left in the (fake) cloud.
    return manifest(
        name,
        onlineStore={"memorystore": {"memorySizeGb": memory}},
        offlineStore={"gcs": {"deletionPolicy": "Delete"}},
        featureServer={"replicas": replicas},
    )


crd = custom


def run_pods(kube_api, ns: str) -> None:
    """The fake kubelet: every Feast server pod in the namespace becomes ready."""
    FakeKubelet(kube_api).run(ns, SERVER_PODS)


def owned_objects(kube_api, ns: str) -> dict[str, list[str]]:
    """Every object carrying the owner label in ``ns``, grouped by owner name (kind/name)."""
    out: dict[str, list[str]] = collections.defaultdict(list)
    kinds = ["ConfigMap", "Secret", "ServiceAccount", "Service", "Deployment", "ReplicaSet", "Pod", "Job"]
    for kind, item in labeled(kube_api, ns, OWNER_LABEL, kinds):
        out[item.metadata.labels[OWNER_LABEL]].append(f"{kind}/{item.metadata.name}")
    return out


def instances_by_owner(ms: MemorystoreFake) -> dict[str, list[str]]:
    out: dict[str, list[str]] = collections.defaultdict(list)
    for inst in ms.instances():
        out[inst.labels.get("featurestore-name", "?")].append(inst.name)
    return out


def buckets_by_owner(overlay: GcsBucketOverlay) -> dict[str, list[str]]:
    out: dict[str, list[str]] = collections.defaultdict(list)
    for b in overlay.client().list_buckets():
        out[(b.labels or {}).get("featurestore-name", "?")].append(b.name)
    return out


def successful_creates(
    ms: MemorystoreFake, overlay: GcsBucketOverlay
) -> tuple[collections.Counter, collections.Counter]:
    instance_creates = collections.Counter(
        r.query.get("instanceId") for r in ms.calls("CreateInstance") if r.status == 200
    )
    bucket_creates = collections.Counter(
        (r.body or {}).get("name")
        for r in list(overlay.requests)
        if r.method == "POST" and r.path == "/storage/v1/b" and r.status == 200
    )
    return instance_creates, bucket_creates


def delete_all_and_wait(kube_api, ns: str, names, timeout: float = 120) -> None:
    for name in names:
        try:
            crd(kube_api).delete_namespaced_custom_object(G, V, ns, P, name)
        except ApiException as err:
            if err.status != 404:
                raise
    wait_for(lambda: not list_fs(kube_api, ns), timeout=timeout, interval=1, what="every FeatureStore deleted")


# --------------------------------------------------------------------------- 1. crash safety


def test_crash_safety_random_sigkills(control_plane, featurestore_crd, kube_api, namespace):
    stores = int(os.environ.get("FSO_CRASH_STORES", "30"))
    kills = int(os.environ.get("FSO_CRASH_KILLS", "20"))
    seed = int(os.environ.get("FSO_CRASH_SEED", "9"))
    rng = random.Random(seed)
    api = crd(kube_api)
    started = time.monotonic()
    with (
        MemorystoreFake(op_delay=0.3, real_redis=False, seed=seed) as ms,
        GcsEmulator() as gcs,
        GcsBucketOverlay(gcs) as overlay,
    ):
        op = OperatorProcess(control_plane.kubeconfig, env=gcp_env(ms, overlay), args=["--namespace", namespace])
        pending = [f"c{i:02d}" for i in range(stores)]  # never reused: one create per name is provable
        live: dict[str, dict] = {}  # name -> spec the test last asked for
        deleted: list[str] = []
        want_deleted = stores // 3
        actions = collections.Counter()

        def act() -> None:
            roll = rng.random()
            if pending and (roll < 0.5 or not live):
                name = pending.pop(0)
                body = gcp_manifest(name)
                api.create_namespaced_custom_object(G, V, namespace, P, body)
                live[name] = body["spec"]
                actions["create"] += 1
            elif live and len(deleted) < want_deleted and roll < 0.7:
                name = rng.choice(sorted(live))
                api.delete_namespaced_custom_object(G, V, namespace, P, name)
                live.pop(name)
                deleted.append(name)
                actions["delete"] += 1
            elif live:
                name = rng.choice(sorted(live))
                memory = 3 - live[name]["onlineStore"]["memorystore"]["memorySizeGb"]  # 1 <-> 2: an UpdateInstance
                replicas = rng.choice([1, 2])
                api.patch_namespaced_custom_object(
                    G,
                    V,
                    namespace,
                    P,
                    name,
                    {
                        "spec": {
                            "onlineStore": {"memorystore": {"memorySizeGb": memory}},
                            "featureServer": {"replicas": replicas},
                        }
                    },
                )
                live[name] = gcp_manifest(name, memory, replicas)["spec"]
                actions["update"] += 1

        uptimes = []
        try:
            for _ in range(kills):
                for _ in range(rng.randint(0, 2)):  # changes while the operator is down
                    act()
                op.start()
                up = rng.uniform(0.3, 4.0)
                uptimes.append(up)
                deadline = time.monotonic() + up
                while True:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    if rng.random() < 0.6:
                        act()
                    if rng.random() < 0.3:
                        run_pods(kube_api, namespace)
                    time.sleep(min(left, rng.uniform(0.05, 0.6)))
                op.kill()
            while pending or len(deleted) < want_deleted:  # the rest of the plan while it is down
                act()
            chaos_seconds = time.monotonic() - started

            # Final restart: everything converges.
            op.start()
            t0 = time.monotonic()

            def converged():
                run_pods(kube_api, namespace)
                current = list_fs(kube_api, namespace)
                if set(current) != set(live):
                    return False
                if not all(is_ready(current[n]) for n in live):
                    return False
                owners = owned_objects(kube_api, namespace)
                if any(owners.get(n) for n in deleted):
                    return False
                inst, buckets = instances_by_owner(ms), buckets_by_owner(overlay)
                return set(inst) == set(live) and set(buckets) == set(live)

            try:
                wait_for(converged, timeout=240, interval=1, what="convergence after the last restart")
            except AssertionError as err:
                current = list_fs(kube_api, namespace)
                stuck = {n: (o.get("status") or {}).get("phase") for n, o in current.items() if not is_ready(o)}
                raise AssertionError(
                    f"not converged: live={sorted(live)} present={sorted(current)} not ready={stuck} "
                    f"instances={dict(instances_by_owner(ms))} buckets={dict(buckets_by_owner(overlay))} "
                    f"leftovers={ {n: owned_objects(kube_api, namespace).get(n) for n in deleted} }\n"
                    f"{op.log_text()[-6000:]}"
                ) from err
            converge_seconds = time.monotonic() - t0

            # 0 duplicates: one successful create per instance id / bucket name, one of each per store.
            instance_creates, bucket_creates = successful_creates(ms, overlay)
            dup_instances = {k: n for k, n in instance_creates.items() if n > 1}
            dup_buckets = {k: n for k, n in bucket_creates.items() if n > 1}
            assert not dup_instances and not dup_buckets, (dup_instances, dup_buckets)
            inst, buckets = instances_by_owner(ms), buckets_by_owner(overlay)
            assert all(len(v) == 1 for v in inst.values()) and all(len(v) == 1 for v in buckets.values())
            # Spec changes made under fire were applied (memory is an UpdateInstance each time).
            by_name = {i.labels["featurestore-name"]: i for i in ms.instances()}
            apps = client.AppsV1Api(kube_api)
            for name, spec in live.items():
                assert by_name[name].memory_size_gb == spec["onlineStore"]["memorystore"]["memorySizeGb"], name
                dep = apps.read_namespaced_deployment(f"{name}-feature-server", namespace)
                assert dep.spec.replicas == spec["featureServer"]["replicas"], name
                fs = get_fs(kube_api, namespace, name)
                assert not (fs["status"].get("operations") or {}).get("memorystore"), (
                    f"{name}: operation left in flight"
                )
            # 0 orphans: deleted stores left nothing in the cloud or the cluster.
            assert not set(deleted) & (set(inst) | set(buckets))
            leftovers = {n: v for n, v in owned_objects(kube_api, namespace).items() if n in deleted}
            assert not leftovers, leftovers
            assert op.alive()

            # Finally delete the rest (also leaves the namespace deletable): no cloud resource stays.
            t1 = time.monotonic()
            delete_all_and_wait(kube_api, namespace, list(live), timeout=120)
            assert not ms.instances(), "instances left after deleting every store"
            assert not list(overlay.client().list_buckets()), "buckets left after deleting every store"
            delete_seconds = time.monotonic() - t1
            print(
                f"\n[crash] seed={seed} stores={stores} kills={kills} actions={dict(actions)} "
                f"uptime/kill={sum(uptimes) / len(uptimes):.1f}s chaos={chaos_seconds:.0f}s "
                f"converged after last restart in {converge_seconds:.1f}s; live={len(live)} deleted={len(deleted)}; "
                f"CreateInstance ok={sum(instance_creates.values())} (409 retries="
                f"{ms.count('CreateInstance', status=409)}), bucket creates ok={sum(bucket_creates.values())}; "
                f"deleting the remaining {len(live)} took {delete_seconds:.1f}s"
            )
        finally:
            cleanup(op, kube_api, namespace)


def cleanup(op: OperatorProcess, kube_api, ns: str) -> None:
    """Leave no FeatureStore behind (their finalizers would keep the namespace Terminating)."""
    try:
        if list_fs(kube_api, ns):
            if not op.alive():
                op.start()
            delete_all_and_wait(kube_api, ns, list(list_fs(kube_api, ns)), timeout=90)
    except Exception as err:  # noqa: BLE001 - best effort; the test's own assertion matters
        print(f"[cleanup] {ns}: {err}")
    finally:
        op.stop()


# --------------------------------------------------------------------------- 2. cloud faults


def test_cloud_faults_converge_and_conditions_name_the_failing_call(
    control_plane, featurestore_crd, kube_api, namespace
):
    api = crd(kube_api)
    with (
        MemorystoreFake(op_delay=0.3, real_redis=False, fail_rate=0.3, seed=3) as ms,
        GcsEmulator() as gcs,
        FlakyOverlay(gcs, fail_rate=0.3, seed=4) as overlay,
    ):
        op = OperatorProcess(
            control_plane.kubeconfig, env=gcp_env(ms, overlay), args=["--namespace", namespace]
        ).start()
        try:
            names = [f"flaky{i}" for i in range(8)]
            t0 = time.monotonic()
            for name in names:
                api.create_namespaced_custom_object(G, V, namespace, P, gcp_manifest(name))

            def all_ready(which):
                run_pods(kube_api, namespace)
                current = list_fs(kube_api, namespace)
                return all(is_ready(current.get(n)) for n in which)

            wait_for(lambda: all_ready(names), timeout=180, interval=1, what="every store Ready under 30% cloud faults")
            converge = time.monotonic() - t0
            ms_faults = sum(1 for r in ms.calls() if r.injected == "fail")
            assert ms_faults >= 5 and overlay.injected >= 5, (ms_faults, overlay.injected)
            instance_creates, bucket_creates = successful_creates(ms, overlay)
            assert set(instance_creates.values()) == {1} and set(bucket_creates.values()) == {1}
            assert len(instance_creates) == len(bucket_creates) == len(names)

            # A persistent 403 on CreateInstance: the condition names the call and the permission.
            ms.forbid = {"CreateInstance"}
            api.create_namespaced_custom_object(G, V, namespace, P, gcp_manifest("denied"))

            def online_denied():
                c = condition(get_fs(kube_api, namespace, "denied"), "OnlineStore")
                return c if c and c["reason"] == "PermissionDenied" else None

            online = wait_for(online_denied, timeout=90, interval=0.5, what="OnlineStore PermissionDenied")
            assert online["status"] == "False"
            assert (
                "create Memorystore instance" in online["message"] and "redis.instances.create" in online["message"]
            ), online
            fs = get_fs(kube_api, namespace, "denied")
            assert condition(fs, "Ready")["status"] == "False" and "OnlineStore" in condition(fs, "Ready")["message"]

            # Bounded retries while it fails: it keeps trying (3 more attempts come), but at most once per
            # resync period (10 s), never in a hot loop.
            n0 = ms.count("CreateInstance")
            wait_for(
                lambda: ms.count("CreateInstance") >= n0 + 3,
                timeout=120,
                interval=1,
                what="3 more CreateInstance attempts while forbidden",
            )
            times = [r.time for r in ms.calls("CreateInstance")][n0 - 1 : n0 + 3]
            gaps = [b - a for a, b in zip(times, times[1:], strict=False)]  # consecutive pairs
            attempts, window = len(gaps), times[-1] - times[0]
            assert all(r.status == 403 for r in ms.calls("CreateInstance")[n0 : n0 + 3])
            assert min(gaps) >= 5, f"CreateInstance retried {min(gaps):.1f}s after a 403: a hot loop ({gaps})"

            # A persistent 403 on bucket creation: OfflineStore names storage.buckets.create.
            overlay.fail_next("POST", r"^/storage/v1/b$", 403, times=10**6)
            api.create_namespaced_custom_object(G, V, namespace, P, gcp_manifest("nobucket"))

            def offline_denied():
                c = condition(get_fs(kube_api, namespace, "nobucket"), "OfflineStore")
                return c if c and c["reason"] == "PermissionDenied" else None

            offline = wait_for(offline_denied, timeout=90, interval=0.5, what="OfflineStore PermissionDenied")
            assert "storage.buckets.create" in offline["message"], offline

            # Granted: both converge without any operator restart.
            ms.forbid = set()
            with overlay._lock:
                overlay._faults.clear()
            t1 = time.monotonic()
            wait_for(lambda: all_ready(["denied", "nobucket"]), timeout=90, interval=1, what="Ready after the grant")
            recover = time.monotonic() - t1
            assert op.alive()
            print(
                f"\n[faults] 8 stores Ready in {converge:.1f}s with {ms_faults} Memorystore and {overlay.injected} GCS "
                f"injected 429/500/503; {attempts} CreateInstance retries in {window:.0f}s while forbidden; "
                f"Ready {recover:.1f}s after the permissions were granted"
            )
        finally:
            ms.reset_faults()
            overlay.fail_rate = 0.0
            cleanup(op, kube_api, namespace)


# --------------------------------------------------------------------------- 3. API server faults


def test_apiserver_restart_operator_recovers_without_restart(control_plane, featurestore_crd, kube_api, namespace):
    # A resync far away: what happens after the restart must come from the re-established watches.
    op = OperatorProcess(
        control_plane.kubeconfig, env={"FSO_RESYNC_SECONDS": "600"}, args=["--namespace", namespace]
    ).start()
    api = crd(kube_api)
    core = client.CoreV1Api(kube_api)
    pid = op.pid

    def ready(*names):
        run_pods(kube_api, namespace)
        current = list_fs(kube_api, namespace)
        return all(is_ready(current.get(n)) for n in names)

    def ttl(name):
        return core.read_namespaced_config_map(f"{name}-feast-config", namespace).data["feature_store.yaml"]

    try:
        for name in ("a1", "a2"):
            api.create_namespaced_custom_object(G, V, namespace, P, manifest(name))
        wait_for(lambda: ready("a1", "a2"), timeout=60, interval=1, what="a1, a2 Ready")
        figures = []
        for round_, (downtime, grace) in enumerate([(3.0, 0.0), (8.0, 3.0)]):
            inflight = f"b{round_}"
            api.create_namespaced_custom_object(G, V, namespace, P, manifest(inflight))  # in flight at the crash
            control_plane.restart_apiserver(downtime=downtime, grace=grace)
            t0 = time.monotonic()
            changed, created = ("a1", "a2")[round_], f"c{round_}"
            api.patch_namespaced_custom_object(
                G, V, namespace, P, changed, {"spec": {"registry": {"cacheTtlSeconds": 7 + round_}}}
            )
            api.create_namespaced_custom_object(G, V, namespace, P, manifest(created))
            wait_for(
                lambda want=f"cache_ttl_seconds: {7 + round_}", name=changed: want in ttl(name),
                timeout=60,
                interval=0.5,
                what=f"{changed}'s change made right after the restart applied",
            )
            applied = time.monotonic() - t0
            try:
                wait_for(
                    lambda names=(inflight, created, changed): ready(*names),
                    timeout=150,
                    interval=1,
                    what=f"{inflight} (in flight) and {created} (created after the restart) Ready",
                )
            except AssertionError as err:
                states = {
                    n: {
                        "phase": (o.get("status") or {}).get("phase"),
                        "gen": o["metadata"].get("generation"),
                        "conditions": [
                            (c["type"], c["status"], c["reason"], c["message"][:120])
                            for c in (o.get("status") or {}).get("conditions", [])
                        ],
                    }
                    for n, o in list_fs(kube_api, namespace).items()
                    if n in (inflight, created)
                }
                log = "\n".join(line for line in op.log_text().splitlines() if "Request attempt" not in line)
                raise AssertionError(f"{err}\n{json.dumps(states, indent=1)}\n{log[-6000:]}") from None
            figures.append(
                f"downtime {downtime:.0f}s ({'SIGKILL' if not grace else 'SIGTERM'}): change applied "
                f"{applied:.1f}s after the API server was back, all Ready after {time.monotonic() - t0:.1f}s"
            )
            assert op.alive() and op.pid == pid, "the operator must recover without a restart"
        print("\n[apiserver] " + "; ".join(figures))
    finally:
        control_plane.start_apiserver()
        control_plane.wait_ready()
        cleanup(op, kube_api, namespace)


# --------------------------------------------------------------------------- 8. HA leader election


def test_ha_two_replicas_one_leads_and_handover(control_plane, featurestore_crd, kube_api, namespace):
    lease = f"fso-test-{namespace[-6:]}"
    # Namespaced operators (the test's own namespace only: stores other tests leave behind are not
    # touched), electing their leader with a Lease of this test's name in the chart release's
    # namespace (its leader-election Role grants Leases there only).
    lease_ns = chart_identity.NAMESPACE
    env = {"FSO_RESYNC_SECONDS": "10", "FSO_LEADER_ELECTION_SECONDS": "10", "POD_NAMESPACE": lease_ns}
    args = ["--leader-election", lease, "--namespace", namespace]
    first = OperatorProcess(control_plane.kubeconfig, env={**env, "POD_NAME": "first"}, args=args, standalone=False)
    second = OperatorProcess(control_plane.kubeconfig, env={**env, "POD_NAME": "second"}, args=args, standalone=False)
    leases = client.CoordinationV1Api(kube_api)
    try:
        first.start()
        wait_for(
            lambda: leases.read_namespaced_lease(lease, lease_ns).spec.holder_identity == "first",
            timeout=30,
            what="the first replica leading",
        )
        second.start()  # the Lease is held: it stands by
        crd(kube_api).create_namespaced_custom_object(G, V, namespace, P, manifest("ha1"))
        wait_for(
            lambda: (get_fs(kube_api, namespace, "ha1") or {}).get("status", {}).get("phase"),
            timeout=60,
            what="ha1 reconciled",
        )
        # a positive signal from the leader first (two passes, its resync included), then the stand-by's count
        first.wait_reconciles(2)
        acting = first.reconciles(), second.reconciles()
        assert acting[0] > 0 and acting[1] == 0, f"reconciles first/second: {acting}"
        assert leases.read_namespaced_lease(lease, lease_ns).spec.holder_identity == "first"

        # SIGKILL the leader: no hand-over, the stand-by takes over when the Lease expires.
        first.kill()
        t0 = time.monotonic()
        crd(kube_api).create_namespaced_custom_object(G, V, namespace, P, manifest("ha2"))
        wait_for(
            lambda: (get_fs(kube_api, namespace, "ha2") or {}).get("status", {}).get("phase"),
            timeout=90,
            interval=0.5,
            what="ha2 reconciled by the second replica",
        )
        handover = time.monotonic() - t0
        assert second.reconciles() > 0
        assert leases.read_namespaced_lease(lease, lease_ns).spec.holder_identity == "second"
        print(
            f"\n[ha] only the leader acted; after SIGKILL the stand-by reconciled a new store {handover:.1f}s later "
            f"(Lease 10 s)"
        )
    finally:
        first.stop()
        cleanup(second, kube_api, namespace)


# --------------------------------------------------------------------------- 7. observability


def test_observability_metrics_events_and_json_logs(control_plane, featurestore_crd, kube_api, namespace):
    from prometheus_client.parser import text_string_to_metric_families

    as_profile_namespace(kube_api, namespace)  # a clean store posts no Warning (NotAProfileNamespace)
    op = OperatorProcess(
        control_plane.kubeconfig, env={"FSO_RESYNC_SECONDS": "10"}, args=["--namespace", namespace]
    ).start()
    api = crd(kube_api)
    try:
        good = ["m1", "m2", "m3"]
        for name in good:
            api.create_namespaced_custom_object(G, V, namespace, P, manifest(name, ui={"enabled": True}))
        api.create_namespaced_custom_object(
            G, V, namespace, P, manifest("mbad", materialization={"schedule": "every day"})
        )

        def settled():
            run_pods(kube_api, namespace)
            current = list_fs(kube_api, namespace)
            return (
                all(is_ready(current.get(n)) for n in good)
                and (current["mbad"].get("status") or {}).get("phase") == "Failed"
            )

        wait_for(settled, timeout=150, interval=1, what="3 stores Ready, 1 Failed")
        api.patch_namespaced_custom_object(G, V, namespace, P, "m1", {"spec": {"ui": {"enabled": False}}})  # a prune
        wait_for(lambda: "pruned Deployment" in op.log_text(), timeout=60, what="prune logged")
        op.wait_reconciles(1)  # the pass that pruned has been counted

        families = {f.name: f for f in text_string_to_metric_families(op.metrics())}
        results = {
            s.labels["result"]: s.value
            for s in families["featurestore_reconciles"].samples
            if s.name == "featurestore_reconciles_total"
        }
        assert results.get("Ready", 0) >= 3 and results.get("Failed", 0) >= 1, results
        hist = families["featurestore_reconcile_duration_seconds"].samples
        count = next(s.value for s in hist if s.name.endswith("_count"))
        total = next(s.value for s in hist if s.name.endswith("_sum"))
        buckets = [(float(s.labels["le"]), s.value) for s in hist if s.name.endswith("_bucket")]
        assert count >= sum(results.values()) > 0 and 0 < total / count < 5, (count, total, results)
        values = [v for _, v in sorted(buckets)]
        assert values == sorted(values) and values[-1] == count, buckets
        phases = {s.labels["phase"]: s.value for s in families["featurestore_stores"].samples}
        assert phases.get("Ready") == 3 and phases.get("Failed") == 1, phases

        # Events for condition transitions, on the FeatureStore itself.
        events = client.CoreV1Api(kube_api).list_namespaced_event(namespace).items
        by_store = collections.defaultdict(set)
        for e in events:
            if e.involved_object.kind == "FeatureStore":
                by_store[e.involved_object.name].add((e.type, e.reason))
        for name in good:  # Ready, and no Warnings on the way (pods starting is not a problem)
            assert ("Normal", "Ready") in by_store[name], (name, by_store[name])
            assert not {r for t, r in by_store[name] if t == "Warning"}, (name, by_store[name])
        assert ("Warning", "SpecInvalidSpec") in by_store["mbad"], by_store["mbad"]

        # Logs: every line is JSON; lines about a store name its namespace too.
        lines = [line for line in op.log_text().splitlines() if line.strip()]
        parsed = [json.loads(line) for line in lines]
        assert all({"message", "severity", "timestamp"} <= set(p) for p in parsed)
        about = [
            p
            for p in parsed
            if any(f"/{n}" in p["message"] or (p.get("object") or {}).get("name") == n for n in good + ["mbad"])
        ]
        assert about and all(
            namespace in p["message"] or (p.get("object") or {}).get("namespace") == namespace for p in about
        ), about[:5]
        print(
            f"\n[observability] reconciles {results}; duration count={count:.0f} mean={total / count * 1000:.0f}ms; "
            f"stores by phase {phases}; {len(events)} Events; {len(parsed)} JSON log lines, {len(about)} about a store"
        )
    finally:
        cleanup(op, kube_api, namespace)


@pytest.mark.parametrize("killed", [False, True], ids=["operator-running", "operator-killed-meanwhile"])
def test_a_store_deleted_past_its_finalizer_has_its_cloud_resources_deleted(
    control_plane, featurestore_crd, kube_api, namespace, make_namespace, killed
):
    """The interleaving behind the crash test's orphan (store c00, created while the operator was
    down and deleted right after it started): kube-apiserver's DELETE decides "no finalizers, delete
    at once" on the object it read, and its storage delete does not look at finalizers again
    (k8s.io/apiserver registry Store.Delete -> etcd3 conditionalDelete, 1.20). A finalizer patched in
    between is answered 200 and deleted with the object: the operator, told the finalizer is on,
    creates the instance of a store that is already gone, and nothing ever finalized it. Emulated
    here deterministically: once the instance is being created, the finalizer is removed by someone
    else and the store deleted; ``killed``: with the operator SIGKILLed first and started again
    after (nothing in memory: the clean-up record written before the finalizer names the store).
    The cloud resources must still go (by their deterministic names, checked against the owner
    labels), a kept (Retain) bucket must stay, and the records (in the operator's namespace) go once done."""
    api = crd(kube_api)
    home = make_namespace("fso-home")
    with (
        MemorystoreFake(op_delay=1.0, real_redis=False, seed=1) as ms,
        GcsEmulator() as gcs,
        GcsBucketOverlay(gcs) as overlay,
    ):
        op = OperatorProcess(
            control_plane.kubeconfig,
            env=gcp_env(ms, overlay, FSO_OPERATOR_NAMESPACE=home),
            args=["--namespace", namespace],
        ).start()
        try:
            api.create_namespaced_custom_object(G, V, namespace, P, gcp_manifest("gone"))
            kept = manifest(
                "kept",
                onlineStore={"memorystore": {"memorySizeGb": 1}},
                offlineStore={"gcs": {"deletionPolicy": "Retain"}},
            )
            api.create_namespaced_custom_object(G, V, namespace, P, kept)
            wait_for(
                lambda: {"gone", "kept"} <= set(instances_by_owner(ms)),
                timeout=60,
                interval=0.2,
                what="both instances being created",
            )
            wait_for(
                lambda: {"gone", "kept"} <= set(buckets_by_owner(overlay)),
                timeout=60,
                interval=0.2,
                what="both buckets created",
            )
            # the records were written before the finalizers, in the operator's namespace (not the tenant's)
            selector = (
                f"featurestore.kubeflow.org/cleanup-record=true,featurestore.kubeflow.org/store-namespace={namespace}"
            )
            core = client.CoreV1Api(kube_api)
            assert len(core.list_namespaced_config_map(home, label_selector=selector).items) == 2
            assert not core.list_namespaced_config_map(
                namespace, label_selector="featurestore.kubeflow.org/cleanup-record"
            ).items
            if killed:
                op.kill()
            for name in ("gone", "kept"):
                api.patch_namespaced_custom_object(G, V, namespace, P, name, {"metadata": {"finalizers": None}})
                api.delete_namespaced_custom_object(G, V, namespace, P, name)
            wait_for(lambda: not list_fs(kube_api, namespace), timeout=30, interval=0.2, what="both stores gone")
            if killed:
                op.start()
            try:
                wait_for(
                    lambda: not instances_by_owner(ms) and set(buckets_by_owner(overlay)) == {"kept"},
                    timeout=90,
                    interval=0.5,
                    what="the instances and the Delete bucket deleted",
                )
            except AssertionError as err:
                raise AssertionError(
                    f"{err}: instances={dict(instances_by_owner(ms))} "
                    f"buckets={dict(buckets_by_owner(overlay))}\n{op.log_text()[-4000:]}"
                ) from None
            assert "cleaning up from its last known spec" in op.log_text()
            records = client.CoreV1Api(kube_api).list_namespaced_config_map(home, label_selector=selector).items
            wait_for(
                lambda: not client.CoreV1Api(kube_api).list_namespaced_config_map(home, label_selector=selector).items,
                timeout=30,
                interval=0.5,
                what=f"the clean-up records deleted (were {[r.metadata.name for r in records]})",
            )
            assert op.alive()
        finally:
            cleanup(op, kube_api, namespace)
