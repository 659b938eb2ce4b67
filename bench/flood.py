"""P6: operator memory under a flood of maximal FeatureStores (issue 25, hostile load).

    bash hack/bench.sh flood [--n 40] [--mb 0.7] [--before DIR]

Starts etcd + kube-apiserver 1.20 + kube-controller-manager and the operator watching one fresh
namespace, with the admission webhook off (as when it is disabled or fails open), reads its RSS
idle, then creates --n FeatureStores whose spec is --mb MB of free-form affinity made of
``{"a": {}}`` items (about the most memory per JSON byte a Python process can be made to spend),
waits until the operator has written a status on every one and reads its RSS again (and the
highest RSS sampled meanwhile). ``--before DIR`` runs the same against the operator found in DIR
(e.g. the operator/ folder of a checkout of an earlier commit) and prints both side by side.

The chart's memory limit of the operator is 512 MiB.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import G, P, V, api_client, create_namespace, machine, start_control_plane, start_operator  # noqa: E402
from kubernetes import client  # noqa: E402

LIMIT_MIB = 512


def log(msg: str) -> None:
    print(msg, flush=True)


def rss_mib(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def spec(mb: float) -> dict:
    n = int(mb * 1e6 - 200) // 9
    return {"project": "flood", "featureServer": {"pod": {"affinity": {"nodeAffinity": {"x": [{"a": {}}] * n}}}}}


class Peak:
    """The highest RSS of a process, sampled every 0.5 s in a thread."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            try:
                self.peak = max(self.peak, rss_mib(self.pid))
            except Exception:  # noqa: BLE001 - the process may be gone (OOM): keep the figure
                return

    def __enter__(self) -> Peak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run(cp, api, label: str, ns: str, n: int, mb: float, src: str | None) -> dict[str, float]:
    create_namespace(api, ns)
    env = {"FSO_NAMESPACES": ns, "FSO_RESYNC_SECONDS": "300"}
    if src:
        env["PYTHONPATH"] = str(Path(src).resolve())
    op = start_operator(cp, env)
    crd = client.CustomObjectsApi(api)
    try:
        time.sleep(3.0)
        idle = rss_mib(op.proc.pid)
        body = spec(mb)
        t0 = time.monotonic()
        with Peak(op.proc.pid) as peak, ThreadPoolExecutor(2) as pool:
            list(
                pool.map(
                    lambda i: crd.create_namespaced_custom_object(
                        G,
                        V,
                        ns,
                        P,
                        {
                            "apiVersion": f"{G}/{V}",
                            "kind": "FeatureStore",
                            "metadata": {"name": f"flood-{i:02d}"},
                            "spec": body,
                        },
                    ),
                    range(n),
                )
            )
            created = time.monotonic() - t0
            deadline = time.monotonic() + 900
            while time.monotonic() < deadline and op.proc.poll() is None:
                seen = 0
                token = None
                while True:
                    page = crd.list_namespaced_custom_object(
                        G, V, ns, P, limit=5, **({"_continue": token} if token else {})
                    )
                    seen += sum(1 for o in page["items"] if (o.get("status") or {}).get("conditions"))
                    token = page["metadata"].get("continue")
                    if not token:
                        break
                if seen >= n:
                    break
                time.sleep(3.0)
            time.sleep(5.0)
            after = rss_mib(op.proc.pid) if op.proc.poll() is None else float("nan")
        log(
            f"  {label}: RSS idle {idle:.0f} MiB, with {n} specs {after:.0f} MiB (peak {peak.peak:.0f} MiB); "
            f"created in {created:.0f}s, statuses after {time.monotonic() - t0:.0f}s"
        )
        return {"idle": idle, "after": after, "peak": peak.peak}
    finally:
        op.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--mb", type=float, default=0.7, help="serialised size of each spec (MB; API server limit 1.5)")
    ap.add_argument("--before", metavar="DIR", help="also run the operator from this source root (before/after)")
    args = ap.parse_args()
    log(f"machine: {machine()}")
    log(f"\n== P5 flood: operator RSS with {args.n} FeatureStores of {args.mb} MB (webhook off)")
    cp = start_control_plane()
    api = api_client(cp, pool=8)
    try:
        results = {"this tree": run(cp, api, "this tree", "p5-after", args.n, args.mb, None)}
        if args.before:
            results["before"] = run(cp, api, f"before ({args.before})", "p5-before", args.n, args.mb, args.before)
        log(f"\n  {'operator':<12} {'idle MiB':>9} {f'{args.n} specs MiB':>15} {'peak MiB':>9} {'peak/limit':>11}")
        for label, r in results.items():
            log(f"  {label:<12} {r['idle']:>9.0f} {r['after']:>15.0f} {r['peak']:>9.0f} {r['peak'] / LIMIT_MIB:>10.0%}")
        if "before" in results:
            a, b = results["this tree"], results["before"]
            log(
                f"  growth with {args.n} specs: before {b['peak'] - b['idle']:.0f} MiB, this tree "
                f"{a['peak'] - a['idle']:.0f} MiB ({(b['peak'] - b['idle']) / max(a['peak'] - a['idle'], 1):.0f}x less)"
            )
        log(
            f"  RESULT: peak RSS {results['this tree']['peak']:.0f} MiB with {args.n} maximal specs  "
            f"[limit {LIMIT_MIB} MiB]"
        )
        return 0
    finally:
        cp.stop()


if __name__ == "__main__":
    sys.exit(main())
