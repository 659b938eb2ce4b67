"""P3: operator memory with many FeatureStores, against a real control plane.

    bash hack/bench.sh memory [--n 1000] [--steps 4] [--namespaces 10]

Starts etcd + kube-apiserver 1.20 + kube-controller-manager, the operator (all namespaces, as
deployed) and a kubelet stand-in that marks pods ready. Creates --n FeatureStores (provider local)
in --steps batches spread over --namespaces profile namespaces; after each batch waits until
every store is Ready and the cluster is quiet, then reads the operator's RSS (and USS) from /proc
(psutil). Then it lets one full resync of every store run and reads RSS again (steady state),
with the operator's CPU per unchanged reconcile pass.

Prints RSS per step, the per-store slope, and the figure at --n against the 150 MiB target.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    CpuMeter,
    G,
    KubeletLoop,
    P,
    Tracker,
    V,
    api_client,
    create_featurestores,
    create_namespace,
    fs_manifest,
    fs_ready,
    machine,
    metric_sum,
    parse_metrics,
    start_control_plane,
    start_operator,
)
from kubernetes import client  # noqa: E402


def log(msg: str) -> None:
    print(msg, flush=True)


def memory(pid: int) -> tuple[float, float]:
    import psutil

    info = psutil.Process(pid).memory_full_info()
    return info.rss / 2**20, info.uss / 2**20


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--namespaces", type=int, default=10)
    ap.add_argument("--resync", type=int, default=60, help="operator resync period (s) for the steady-state reading")
    ap.add_argument(
        "--src",
        metavar="DIR",
        help="run the operator from this source root instead (DIR/featurestore_operator, "
        "e.g. the operator/ folder of another commit: before/after figures)",
    )
    args = ap.parse_args()
    log(f"machine: {machine()}")
    log(
        f"\n== P3 memory: operator RSS with up to {args.n} FeatureStores ({args.namespaces} namespaces)"
        + (f", operator from {args.src}" if args.src else "")
    )
    cp = start_control_plane()
    api = api_client(cp, pool=64)
    op = kubelet = ready = None
    try:
        namespaces = [f"p3-{i}" for i in range(args.namespaces)]
        for ns in namespaces:
            create_namespace(api, ns)
        src = {"PYTHONPATH": str(Path(args.src).resolve())} if args.src else {}
        op = start_operator(cp, {"FSO_RESYNC_SECONDS": str(args.resync), **src})
        kubelet = KubeletLoop(api, None, workers=6).start()
        crd = client.CustomObjectsApi(api)
        ready = Tracker(crd.list_cluster_custom_object, (G, V, P), fs_ready).start()
        time.sleep(3.0)
        rss0, uss0 = memory(op.proc.pid)
        log(f"  0 stores (started, idle): RSS {rss0:.1f} MiB, USS {uss0:.1f} MiB")
        points = [(0, rss0)]
        created = 0
        per_step = -(-args.n // args.steps)
        t_start = time.monotonic()
        while created < args.n:
            batch = list(range(created, min(args.n, created + per_step)))
            manifests = [fs_manifest(f"store-{i}", namespaces[i % len(namespaces)]) for i in batch]
            t0 = time.monotonic()
            create_featurestores(api, manifests, workers=8)
            created += len(batch)
            ready.wait(created, 1800)
            took = time.monotonic() - t0
            time.sleep(5.0)  # last status writes, child events
            rss, uss = memory(op.proc.pid)
            points.append((created, rss))
            log(f"  {created} stores Ready (+{len(batch)} in {took:.0f}s): RSS {rss:.1f} MiB, USS {uss:.1f} MiB")
        log(f"  all {created} Ready after {time.monotonic() - t_start:.0f}s")

        # One full resync of every store (nothing changed): steady-state memory and CPU per pass.
        m0 = parse_metrics(op.metrics())
        cpu = CpuMeter({"operator": op.proc.pid}).start()
        passes0 = metric_sum(m0, "featurestore_reconciles_total")
        deadline = time.monotonic() + args.resync * 3
        while time.monotonic() < deadline:
            time.sleep(2.0)
            done = metric_sum(parse_metrics(op.metrics()), "featurestore_reconciles_total") - passes0
            if done >= 2 * created:
                break
        used = cpu.stop()
        m1 = parse_metrics(op.metrics())
        passes = metric_sum(m1, "featurestore_reconciles_total") - passes0
        calls = metric_sum(m1, "featurestore_kube_api_calls_total") - metric_sum(
            m0, "featurestore_kube_api_calls_total"
        )
        rss, uss = memory(op.proc.pid)
        log(
            f"  after {passes:.0f} resync passes ({passes / created:.1f} per store, {calls:.0f} Kube API calls): "
            f"RSS {rss:.1f} MiB, USS {uss:.1f} MiB; operator CPU {used['operator']:.1f}s over {used['wall']:.0f}s "
            f"= {used['operator'] / max(passes, 1) * 1000:.1f} ms per unchanged pass"
        )
        (n0, r0), (n1, r1) = points[0], points[-1]
        slope = (r1 - r0) / (n1 - n0) * 1000 if n1 > n0 else float("nan")
        steps = ", ".join(f"{n}: {r:.0f}" for n, r in points)
        log(f"  RSS by stores (MiB): {steps}; slope {slope:.0f} KiB per store")
        log(
            f"  RESULT: RSS with {created} stores {max(rss, r1):.1f} MiB (max of after-create and after-resync)  "
            f"[target <= 150 MiB]"
        )
        return 0
    finally:
        for x in (ready, kubelet):
            if x:
                x.stop()
        if op:
            op.stop()
        cp.stop()


if __name__ == "__main__":
    sys.exit(main())
