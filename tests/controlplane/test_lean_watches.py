"""Lean watches, as an attacker sees them: a namespace editor labels 2,000 Secrets of 100 KiB each as
the operator's own, in a namespace with no FeatureStore. The operator's watches select by label on
the server, so it does receive them; it must keep none of their data (slim copies only), so its
memory does not grow with their size. It must also never list or watch the cluster's other Secrets
and ConfigMaps (the API server's audit of its requests would show a selector-less list)."""

from __future__ import annotations

import base64
import os
from concurrent.futures import ThreadPoolExecutor

from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from tests.support.operator_process import OperatorProcess
from tests.support.waiting import wait_for

SECRETS = 2000
WARMUP = 50
SIZE = 100 * 1024
#: glibc raises its mmap threshold after each large free (up to 32 MiB), after which 100 KiB event
#: buffers land in the heap and freed holes stay resident: RSS then varies by 1-15 MiB between runs
#: with the operator keeping nothing. A pinned threshold returns them to the system when freed, so
#: the measurement is what the operator keeps (their data would be ~200 MiB).
PINNED_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(64 * 1024)}
OURS = {"app.kubernetes.io/managed-by": "featurestore-operator", "featurestore.kubeflow.org/name": "victim"}


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def watched(op: OperatorProcess, kind: str) -> float:
    return sum(s.value for f in text_string_to_metric_families(op.metrics()) for s in f.samples
               if s.name == "featurestore_watched_objects" and s.labels.get("kind") == kind)


def test_labelled_secrets_do_not_grow_the_operator(control_plane, featurestore_crd, kube_api, namespace):
    core = client.CoreV1Api(kube_api)
    blob = base64.b64encode(os.urandom(SIZE * 3 // 4)).decode()

    def create(i: int) -> None:
        core.create_namespaced_secret(namespace, {"metadata": {"name": f"bait-{i}", "labels": OURS},
                                                  "data": {"blob": blob}})

    # the operator watches this namespace only: its count of watched Secrets is then exactly the bait
    # (cluster-wide, other tests' Secrets would satisfy the waits before the bait has arrived)
    with OperatorProcess(control_plane.kubeconfig, env=PINNED_MALLOC, args=["--namespace", namespace]) as op, \
            ThreadPoolExecutor(8) as pool:
        # warm-up: the same path (list, watch events, slim copies) for a first batch, so the baseline
        # has the code and buffers that any Secret costs, and the figure is what their number adds
        list(pool.map(create, range(WARMUP)))
        wait_for(lambda: watched(op, "Secret") >= WARMUP, timeout=120, interval=1, what="the warm-up Secrets watched")
        before = rss_kib(op.pid)
        list(pool.map(create, range(WARMUP, WARMUP + SECRETS)))
        # positive signal first: the operator has received every one of them
        wait_for(lambda: watched(op, "Secret") >= WARMUP + SECRETS, timeout=300, interval=2,
                 what=f"the operator's watch holding {SECRETS} Secrets")
        after = rss_kib(op.pid)
        grown = (after - before) / 1024
        print(f"operator RSS {before / 1024:.1f} MiB -> {after / 1024:.1f} MiB (+{grown:.1f} MiB) "
              f"for {SECRETS} labelled Secrets of {SIZE // 1024} KiB ({SECRETS * SIZE / 2**20:.0f} MiB of data)")
        assert grown < 10, f"operator RSS grew by {grown:.1f} MiB"
        assert op.alive()
