"""Reconcile benchmarks against a real control plane (etcd + kube-apiserver 1.20 + controller-manager).

    bash hack/bench.sh reconcile [--n 50 200] [--runs 3]
        [--only p1 p2 p5] [--p2-n 50] [--p5-stores 4] [--p5-rounds 2] [--profile DIR]

P1  throughput: N FeatureStores (provider local: in-cluster Redis + data volume, so every backend
    answers at once) created at once -> seconds until all are phase Ready, against the lower bound:
    the same objects (rendered in-process by the product's pure ``render``) written by a bare
    server-side-apply loop on the same API server, then waiting for the same workloads to become
    available. In both arms a kubelet stand-in (tests/support/kubelet.FakeKubelet, fed by a pod
    watch) marks pods ready as the real controllers create them. Arms alternate, each run in a
    fresh namespace that is deleted (and waited for) afterwards; figures are medians over --runs.
P2  steady state: N stores Ready, resync period 10 s; over three periods: reconcile passes, Kube
    API calls and writes of the operator (its Prometheus counters), every request it sent
    according to the API server's audit log, and the resourceVersions of the FeatureStores and of
    every owned object before/after.
P5  backend overhead: provider gcp with the Memorystore REST fake (no real Redis behind it) and an
    in-cluster offline store. Scenario "resize": Ready stores with ready pods get a new
    memorySizeGb; the fake's UpdateInstance operation finishes after --p5-op-delay seconds;
    measured: FeatureStore Ready minus (a) the first API answer that reported the operation done
    (operator overhead) and (b) the moment the operation finished (adds the poll interval).
    Scenario "create": the same for new stores, whose workloads can only start once Memorystore is
    READY (adds controllers + kubelet).

Prints figures and ratios; exits 0. Every process it starts is stopped; temp dirs are removed.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures as cf
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    CpuMeter,
    G,
    KubeletLoop,
    P,
    Profiler,
    Tracker,
    V,
    api_client,
    create_featurestores,
    create_namespace,
    delete_namespace,
    fmt_runs,
    fs_manifest,
    fs_tracker,
    machine,
    med,
    metric_sum,
    parse_metrics,
    rendered_children,
    rss_mib,
    ssa,
    start_control_plane,
    start_operator,
    workload_trackers,
)
from kubernetes import client  # noqa: E402

TIMEOUT = 900.0
MANAGED = "app.kubernetes.io/managed-by=featurestore-operator"


def log(msg: str) -> None:
    print(msg, flush=True)


# =========================================================================== P1


def _store_events(api: client.ApiClient, ns: str, settle: float = 2.0, timeout: float = 20.0) -> int:
    """Events on FeatureStores in ``ns``, once their number stopped growing (the operator posts
    them from a bounded queue, behind the passes that emitted them: runtime/events.py)."""

    def count() -> int:
        items = client.CoreV1Api(api).list_namespaced_event(ns, field_selector="involvedObject.kind=FeatureStore").items
        return sum(e.count or 1 for e in items)

    deadline, last = time.monotonic() + timeout, count()
    while time.monotonic() < deadline:
        time.sleep(settle)
        now = count()
        if now == last:
            break
        last = now
    return last


def p1_operator_run(
    cp: Any, api: client.ApiClient, n: int, tag: str, env: dict[str, str] | None = None, profile: Path | None = None
) -> dict[str, Any]:
    ns = f"p1-op-{n}-{tag}"
    create_namespace(api, ns)
    op = start_operator(cp, {"FSO_NAMESPACES": ns, "FSO_RESYNC_SECONDS": "300", **(env or {})})
    kubelet = KubeletLoop(api, ns).start()
    ready = fs_tracker(api, ns).start()
    try:
        time.sleep(1.0)  # watches established
        base = parse_metrics(op.metrics())
        spy = Profiler(op.proc.pid, profile).start()
        cpu = CpuMeter({**cp.pids(), "operator": op.proc.pid, "bench": os.getpid()}).start()
        t0 = time.monotonic()
        create_featurestores(api, [fs_manifest(f"store-{i}", ns) for i in range(n)])
        t_created = time.monotonic()
        t_ready = ready.wait(n, TIMEOUT)
        used = cpu.stop()
        spy.stop()
        after = parse_metrics(op.metrics())
        rss = rss_mib(op.proc.pid)
        times = sorted(t - t0 for t in ready.done_at.values())

        def delta(name: str, **labels: str) -> float:
            return metric_sum(after, name, **labels) - metric_sum(base, name, **labels)

        calls_by = collections.Counter()
        for key, value in after.items():
            if key.startswith("featurestore_kube_api_calls_total{"):
                res = key.split('resource="')[1].split('"')[0]
                calls_by[res] += value - base.get(key, 0.0)
        return {
            "ready": t_ready - t0,
            "created": t_created - t0,
            "first": times[0],
            "p50": times[len(times) // 2],
            "cpu": used,
            "rss": rss,
            "passes": delta("featurestore_reconciles_total"),
            "calls": delta("featurestore_kube_api_calls_total"),
            "writes": delta("featurestore_kube_api_writes_total"),
            "calls_by": dict(calls_by),
            "events": _store_events(api, ns),
            "pods": kubelet.marked,
        }
    finally:
        ready.stop()
        kubelet.stop()
        op.stop()
        delete_namespace(api, ns)


def p1_bare_run(cp: Any, api: client.ApiClient, n: int, tag: str, workers: int) -> dict[str, Any]:
    ns = f"p1-bare-{n}-{tag}"
    create_namespace(api, ns)
    kubelet = KubeletLoop(api, ns).start()
    deployments, statefulsets = workload_trackers(api, ns)
    deployments.start()
    statefulsets.start()
    crd = client.CustomObjectsApi(api)
    counts = collections.Counter()

    def one(i: int) -> None:
        body = crd.create_namespaced_custom_object(G, V, ns, P, fs_manifest(f"store-{i}", ns))
        for obj in rendered_children(body):
            ssa(api, obj)
            counts[obj["kind"]] += 1

    try:
        time.sleep(1.0)
        cpu = CpuMeter({**cp.pids(), "bench": os.getpid()}).start()
        t0 = time.monotonic()
        with cf.ThreadPoolExecutor(workers) as pool:
            list(pool.map(one, range(n)))
        t_written = time.monotonic()
        t_dep = deployments.wait(counts["Deployment"], TIMEOUT)
        t_sts = statefulsets.wait(counts["StatefulSet"], TIMEOUT)
        used = cpu.stop()
        return {
            "written": t_written - t0,
            "available": max(t_dep, t_sts, t_written) - t0,
            "cpu": used,
            "objects": sum(counts.values()),
            "pods": kubelet.marked,
        }
    finally:
        deployments.stop()
        statefulsets.stop()
        kubelet.stop()
        delete_namespace(api, ns)


def p1(args: argparse.Namespace) -> dict[str, Any]:
    log("\n== P1 reconcile throughput: N stores created at once -> all Ready, vs. a bare SSA loop")
    cp = start_control_plane()
    api = api_client(cp)
    out: dict[str, Any] = {}
    # Operator arms: this tree, plus --compare source trees (PYTHONPATH of the operator process).
    variants = {"operator": {}} | {
        f"operator@{Path(d).name or d}": {"PYTHONPATH": str(Path(d).resolve())} for d in args.compare
    }
    try:
        # Warm-up: first requests after start pay for caches in the apiserver (CRD handlers, RBAC).
        p1_bare_run(cp, api, 5, "warm", args.bare_workers)
        for n in args.n:
            results: dict[str, list[dict[str, Any]]] = {name: [] for name in [*variants, "bare"]}
            arms = [*variants, "bare"]
            for r in range(args.runs):
                order = arms[r % len(arms) :] + arms[: r % len(arms)]  # rotate: no arm always goes first
                for arm in order:
                    if arm != "bare":
                        tag = f"{r}-{len(results[arm])}-{arms.index(arm)}"
                        profile = (
                            (Path(args.profile) / f"{arm.replace('@', '-')}-{n}-{tag}.txt") if args.profile else None
                        )
                        res = p1_operator_run(cp, api, n, tag, variants[arm], profile)
                        if profile:
                            log(f"  py-spy profile of the operator (collapsed stacks): {profile}")
                        results[arm].append(res)
                        log(
                            f"  N={n} run {r} {arm}: all Ready {res['ready']:.2f}s (first {res['first']:.2f}s, "
                            f"median store {res['p50']:.2f}s); {res['calls'] / n:.1f} calls, "
                            f"{res['writes'] / n:.1f} writes, {res['events'] / n:.1f} Events, "
                            f"{res['passes'] / n:.1f} passes per store; RSS {res['rss']:.0f} MiB; "
                            f"CPU s: {_cpu_line(res['cpu'])}"
                        )
                    else:
                        res = p1_bare_run(cp, api, n, str(r), args.bare_workers)
                        results["bare"].append(res)
                        log(
                            f"  N={n} run {r} bare SSA loop ({args.bare_workers} threads, {res['objects']} objects): "
                            f"written {res['written']:.2f}s, workloads available {res['available']:.2f}s; "
                            f"CPU s: {_cpu_line(res['cpu'])}"
                        )
            bares = results["bare"]
            avail = [b["available"] for b in bares]
            written = [b["written"] for b in bares]
            out[n] = results
            log(f"  N={n} bare loop written:              {fmt_runs(written)}")
            log(f"  N={n} bare loop workloads available:  {fmt_runs(avail)}")
            api_bare = med(b["cpu"]["kube-apiserver"] for b in bares) / n * 1000
            for name in variants:
                ops = results[name]
                op_t = [o["ready"] for o in ops]
                paired = [o / b for o, b in zip(op_t, avail, strict=True)]  # one bare run per operator run
                calls_by: collections.Counter = collections.Counter()
                for o in ops:
                    calls_by.update(o["calls_by"])
                log(f"  N={n} {name} all Ready:           {fmt_runs(op_t)}")
                log(
                    f"  N={n} RATIO {name} / bare (available): {med(op_t) / med(avail):.2f}x of medians; paired runs "
                    f"{', '.join(f'{x:.2f}' for x in paired)} (median {med(paired):.2f}x)  [target <= 1.15x]"
                )
                log(f"  N={n} ratio {name} / bare (written only): {med(op_t) / med(written):.2f}x")
                if calls_by:
                    log(
                        f"  N={n} {name} requests per store: "
                        + ", ".join(f"{k} {v / (n * len(ops)):.2f}" for k, v in sorted(calls_by.items()))
                        + f"; Events {med(o['events'] for o in ops) / n:.1f}"
                    )
                api_op = med(o["cpu"]["kube-apiserver"] for o in ops) / n * 1000
                op_cpu = med(o["cpu"]["operator"] for o in ops) / n * 1000
                log(
                    f"  N={n} {name} CPU per store: operator process {op_cpu:.0f} ms;"
                    f" kube-apiserver {api_op:.0f} ms (operator arm) vs {api_bare:.0f} ms (bare arm)"
                )
                if n >= 200:
                    log(f"  N={n} {name} absolute: {med(op_t):.1f}s  [target <= 30 s for 200 stores on 2 cores]")
    finally:
        cp.stop()
    return out


def _cpu_line(used: dict[str, float]) -> str:
    short = {"kube-apiserver": "apiserver", "kube-controller-manager": "kcm"}
    return " ".join(f"{short.get(k, k)} {v:.1f}" for k, v in used.items())


# =========================================================================== P2


def _resource_versions(api: client.ApiClient, ns: str) -> dict[tuple[str, str], str]:
    """resourceVersion of every FeatureStore and every object the operator manages in ``ns``."""
    crd = client.CustomObjectsApi(api)
    out = {
        ("FeatureStore", o["metadata"]["name"]): o["metadata"]["resourceVersion"]
        for o in crd.list_namespaced_custom_object(G, V, ns, P)["items"]
    }
    core, apps, batch = client.CoreV1Api(api), client.AppsV1Api(api), client.BatchV1Api(api)
    lists = {
        "ServiceAccount": core.list_namespaced_service_account,
        "Secret": core.list_namespaced_secret,
        "ConfigMap": core.list_namespaced_config_map,
        "Service": core.list_namespaced_service,
        "PersistentVolumeClaim": core.list_namespaced_persistent_volume_claim,
        "Deployment": apps.list_namespaced_deployment,
        "StatefulSet": apps.list_namespaced_stateful_set,
        "Job": batch.list_namespaced_job,
    }
    for kind, fn in lists.items():
        for o in fn(ns, label_selector=MANAGED).items:
            out[(kind, o.metadata.name)] = o.metadata.resource_version
    for group, version, plural, kind in [
        ("batch", "v1beta1", "cronjobs", "CronJob"),
        ("kubeflow.org", "v1alpha1", "poddefaults", "PodDefault"),
        ("security.istio.io", "v1beta1", "authorizationpolicies", "AuthorizationPolicy"),
    ]:
        for o in crd.list_namespaced_custom_object(group, version, ns, plural, label_selector=MANAGED)["items"]:
            out[(kind, o["metadata"]["name"])] = o["metadata"]["resourceVersion"]
    return out


OPERATOR_AGENTS = ("python-httpx2", "kopf")


def _audit(path: Path, start: int, end: int) -> collections.Counter:
    """(client, verb, resource) -> count of completed requests of the operator process: its
    lightkube client (User-Agent python-httpx2/VERSION: every FeatureStore and child request) and
    kopf (kopf/VERSION: onboarding watches, webhook). The bench's own client and the controllers
    identify otherwise."""
    counts: collections.Counter = collections.Counter()
    with path.open("rb") as f:
        f.seek(start)
        data = f.read(end - start)
    for line in data.splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("stage") != "ResponseComplete":
            continue
        agent = (e.get("userAgent") or "").split("/")[0]
        if agent not in OPERATOR_AGENTS:
            continue
        ref = e.get("objectRef") or {}
        res = ref.get("resource", "") + ("/" + ref["subresource"] if ref.get("subresource") else "")
        counts[(agent, e["verb"], res or e.get("requestURI", "").split("?")[0])] += 1
    return counts


WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}


def p2(args: argparse.Namespace) -> dict[str, Any]:
    n, resync = args.p2_n, 10.0
    log(f"\n== P2 steady state: {n} Ready stores, resync every {resync:.0f} s, measured over {args.p2_periods} periods")
    tmp = Path(tempfile.mkdtemp(prefix="fso-bench-p2-"))
    audit = tmp / "audit.log"
    cp = start_control_plane(audit_log=audit)
    api = api_client(cp)
    ns = "p2"
    op = kubelet = ready = None
    try:
        create_namespace(api, ns)
        op = start_operator(cp, {"FSO_RESYNC_SECONDS": str(int(resync))})  # all namespaces, as deployed
        kubelet = KubeletLoop(api, ns).start()
        ready = fs_tracker(api, ns).start()
        time.sleep(1.0)
        create_featurestores(api, [fs_manifest(f"store-{i}", ns) for i in range(n)])
        ready.wait(n, TIMEOUT)
        # Quiet down: the last status writes and the controllers' last status updates.
        _settle(api, ns)
        before_rv = _resource_versions(api, ns)
        m0 = parse_metrics(op.metrics())
        a0 = audit.stat().st_size
        t0 = time.monotonic()
        time.sleep(args.p2_periods * resync + 1.0)
        a1 = audit.stat().st_size
        m1 = parse_metrics(op.metrics())
        window = time.monotonic() - t0
        after_rv = _resource_versions(api, ns)
        passes = metric_sum(m1, "featurestore_reconciles_total") - metric_sum(m0, "featurestore_reconciles_total")
        calls = metric_sum(m1, "featurestore_kube_api_calls_total") - metric_sum(
            m0, "featurestore_kube_api_calls_total"
        )
        writes = metric_sum(m1, "featurestore_kube_api_writes_total") - metric_sum(
            m0, "featurestore_kube_api_writes_total"
        )
        requests = _audit(audit, a0, a1)
        # the same filter over the set-up phase: proves it sees the operator's requests at all
        setup_requests = _audit(audit, 0, a0)
        changed = sorted(k for k in before_rv if after_rv.get(k) != before_rv[k])
        op_requests = {k: v for k, v in requests.items() if k[1] != "watch"}
        audited_writes = sum(v for k, v in op_requests.items() if k[1] in WRITE_VERBS)
        per_pass_calls = calls / passes if passes else float("nan")
        log(f"  window {window:.1f}s: {passes:.0f} reconcile passes = {passes / n:.2f} resyncs per store")
        log(
            f"  operator metrics: {calls:.0f} Kube API calls, {writes:.0f} writes -> "
            f"{per_pass_calls:.2f} calls and {writes / passes if passes else float('nan'):.2f} writes per store "
            f"per resync  [target 0 writes, <= 2 calls]"
        )
        log(
            f"  audit log (every request of the operator process except watches): "
            f"{sum(op_requests.values())} requests, {audited_writes} writes"
            + (
                "; " + ", ".join(f"{a} {v} {r}: {c}" for (a, v, r), c in sorted(op_requests.items()))
                if op_requests
                else ""
            )
        )
        by_agent = collections.Counter()
        for (agent, verb, res), c in setup_requests.items():
            if verb != "watch":
                by_agent[f"{agent} {verb} {res}"] += c
        per_store = {k: v for k, v in by_agent.items() if v >= n / 10}
        once = sum(v for k, v in by_agent.items() if k not in per_store)
        log(
            f"  set-up phase ({n} stores created -> Ready; same audit filter), requests per store: "
            + ", ".join(f"{k} {v / n:.2f}" for k, v in sorted(per_store.items()))
            + f"; plus {once} once per process (discovery, initial lists)"
        )
        watches = {k: v for k, v in requests.items() if k[1] == "watch"}
        if watches:
            log(f"  (watch reconnects in the window: {sum(watches.values())}, not per store)")
        log(
            f"  resourceVersions: {len(before_rv)} objects ({n} FeatureStores + owned), {len(changed)} changed"
            + (f": {changed[:10]}" if changed else "")
        )
        return {
            "passes": passes,
            "calls": calls,
            "writes": writes,
            "audit": dict(op_requests),
            "changed": changed,
            "objects": len(before_rv),
            "per_pass_calls": per_pass_calls,
        }
    finally:
        for x in (ready, kubelet):
            if x:
                x.stop()
        if op:
            op.stop()
        cp.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _settle(api: client.ApiClient, ns: str, quiet: float = 4.0, timeout: float = 120.0) -> None:
    """Wait until no FeatureStore or owned object changed for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    last = _resource_versions(api, ns)
    stable_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = _resource_versions(api, ns)
        if now != last:
            last, stable_since = now, time.monotonic()
        elif time.monotonic() - stable_since >= quiet:
            return


# =========================================================================== P5


def p5(args: argparse.Namespace) -> dict[str, Any]:
    from tests.support.memorystore_fake import MemorystoreFake

    k, rounds, delay = args.p5_stores, args.p5_rounds, args.p5_op_delay
    log(
        f"\n== P5 overhead: Memorystore operation done -> FeatureStore Ready ({k} stores x {rounds} rounds, "
        f"operations take {delay:.1f}s)"
    )
    cp = start_control_plane()
    api = api_client(cp)
    ns = "p5"
    op = kubelet = None
    trackers: list[Tracker] = []
    offset = time.time() - time.monotonic()  # fake records wall time; trackers monotonic
    with MemorystoreFake(op_delay=delay, real_redis=False) as ms:
        try:
            create_namespace(api, ns)
            op = start_operator(
                cp,
                {
                    "FSO_MEMORYSTORE_ENDPOINT": ms.endpoint,
                    "FSO_GCP_PROJECT": "bench-project",
                    "FSO_GCP_REGION": "us-central1",
                    "FSO_RESYNC_SECONDS": "300",
                },
            )
            kubelet = KubeletLoop(api, ns).start()
            crd = client.CustomObjectsApi(api)

            def manifest(name: str) -> dict[str, Any]:
                return fs_manifest(
                    name,
                    ns,
                    provider="gcp",
                    gcp={"project": "bench-project", "region": "us-central1"},
                    onlineStore={"memorystore": {"memorySizeGb": 1}},
                    offlineStore={"inCluster": {}},
                )

            def iids(names: list[str]) -> dict[str, str]:
                from featurestore_operator.api import parse_featurestore
                from featurestore_operator.backends.naming import memorystore_instance_id

                return {n: memorystore_instance_id(parse_featurestore(manifest(n))) for n in names}

            # -- scenario "create": workloads start only once Memorystore is READY
            created: list[dict[str, float]] = []
            for r in range(rounds):
                names = [f"c{r}-{i}" for i in range(k)]
                tr = Tracker(
                    crd.list_namespaced_custom_object,
                    (G, V, ns, P),
                    lambda o, names=set(names): (
                        o["metadata"]["name"] in names and (o.get("status") or {}).get("phase") == "Ready"
                    ),
                ).start()
                trackers.append(tr)
                time.sleep(0.5)
                mark = len(ms.calls())
                create_featurestores(api, [manifest(n) for n in names])
                tr.wait(k, TIMEOUT)
                created += _p5_samples(ms, mark, iids(names), tr, offset, "CreateInstance")
                tr.stop()
            _p5_report("create (pods start after READY)", created)

            # -- scenario "resize": Ready stores with ready pods; the backend goes through an update
            resized: list[dict[str, float]] = []
            names = [f"c0-{i}" for i in range(k)]
            for r in range(rounds):
                gens = {}
                for n in names:
                    gens[n] = crd.get_namespaced_custom_object(G, V, ns, P, n)["metadata"]["generation"] + 1
                tr = Tracker(
                    crd.list_namespaced_custom_object,
                    (G, V, ns, P),
                    lambda o, gens=gens: (
                        o["metadata"]["name"] in gens
                        and (o.get("status") or {}).get("observedGeneration") == gens[o["metadata"]["name"]]
                        and (o.get("status") or {}).get("phase") == "Ready"
                    ),
                ).start()
                trackers.append(tr)
                time.sleep(0.5)
                mark = len(ms.calls())
                for n in names:
                    crd.patch_namespaced_custom_object(
                        G, V, ns, P, n, {"spec": {"onlineStore": {"memorystore": {"memorySizeGb": 2 + r}}}}
                    )
                tr.wait(k, TIMEOUT)
                resized += _p5_samples(ms, mark, iids(names), tr, offset, "UpdateInstance")
                tr.stop()
            _p5_report("resize (pods already ready)", resized)
            return {"create": created, "resize": resized}
        finally:
            for t in trackers:
                t.stop()
            if kubelet:
                kubelet.stop()
            if op:
                op.stop()
            cp.stop()


def _p5_samples(
    ms: Any, mark: int, iids: dict[str, str], tr: Tracker, offset: float, rpc: str
) -> list[dict[str, float]]:
    """Per store: when its operation finished (fake's clock), when an answer first said so, when
    the FeatureStore became Ready."""
    calls = ms.calls()[mark:]
    out = []
    for name, iid in iids.items():
        started = [c for c in calls if c.rpc == rpc and c.status == 200 and iid in (c.path + json.dumps(c.query))]
        if not started:
            continue
        done = started[0].time + ms.op_delay
        # the first answer about this instance after the operation finished: GetOperation of its
        # operation or GetInstance of the instance (both say "done"/READY from then on)
        ops = {c.path for c in calls if c.rpc == "GetOperation"}
        reports = [
            c
            for c in calls
            if c.time >= done
            and c.status == 200
            and (
                (c.rpc == "GetInstance" and c.path.endswith("/" + iid))
                or (c.rpc == "GetOperation" and c.path in ops and _op_of(ms, c.path) == iid)
            )
        ]
        if not reports:
            continue
        ready = tr.done_at[name] + offset
        out.append(
            {
                "done_to_ready": ready - done,
                "report_to_ready": ready - reports[0].time,
                "poll_lag": reports[0].time - done,
            }
        )
    return out


def _op_of(ms: Any, path: str) -> str:
    op = ms._ops.get(path.removeprefix("/v1/"))
    if op is None:
        return ""
    from google.cloud import redis_v1

    md = redis_v1.OperationMetadata.pb()()
    op.pb.metadata.Unpack(md)
    return md.target.rsplit("/", 1)[-1]


def _p5_report(what: str, samples: list[dict[str, float]]) -> None:
    if not samples:
        log(f"  {what}: no samples")
        return
    log(f"  {what}: {len(samples)} samples")
    log(
        f"    backend answer 'done/READY' -> FeatureStore Ready: {fmt_runs([s['report_to_ready'] for s in samples])}  "
        f"[target <= 2 s]"
    )
    log(f"    operation finished -> first answer saying so (poll lag): {fmt_runs([s['poll_lag'] for s in samples])}")
    log(f"    operation finished -> FeatureStore Ready: {fmt_runs([s['done_to_ready'] for s in samples])}")


# =========================================================================== main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, nargs="+", default=[50, 200], help="P1 store counts")
    ap.add_argument("--runs", type=int, default=3, help="P1 runs per arm and N (medians)")
    ap.add_argument("--bare-workers", type=int, default=8, help="threads of the bare SSA loop")
    ap.add_argument(
        "--compare",
        nargs="*",
        default=[],
        metavar="DIR",
        help="P1: also run the operator from these source roots (DIR/featurestore_operator, e.g. the "
        "operator/ folder of a `git worktree` of another commit), interleaved with the others",
    )
    ap.add_argument(
        "--profile", metavar="DIR", help="P1: record the operator arm with py-spy (collapsed stacks) into DIR"
    )
    ap.add_argument("--p2-n", type=int, default=50)
    ap.add_argument("--p2-periods", type=int, default=3)
    ap.add_argument("--p5-stores", type=int, default=4)
    ap.add_argument("--p5-rounds", type=int, default=2)
    ap.add_argument("--p5-op-delay", type=float, default=3.0)
    ap.add_argument("--only", nargs="+", choices=["p1", "p2", "p5"], default=["p1", "p2", "p5"])
    args = ap.parse_args()
    log(f"machine: {machine()}")
    if "p1" in args.only:
        p1(args)
    if "p2" in args.only:
        p2(args)
    if "p5" in args.only:
        p5(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
