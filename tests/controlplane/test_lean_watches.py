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
SIZE = 100 * 1024
OURS = {"app.kubernetes.io/managed-by": "featurestore-operator", "featurestore.kubeflow.org/name": "victim"}


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def watched(op: OperatorProcess, kind: str) -> float:
    return sum(s.value for f in text_string_to_metric_families(op.metrics()) for s in f.samples
               if s.name == "featurestore_watched_objects" and s.labels.get("kind") == kind)


def test_labelled_secrets_do_not_grow_the_operator(control_plane, featurestore_crd, kube_api, namespace):
    core = client.CoreV1Api(kube_api)
    with OperatorProcess(control_plane.kubeconfig) as op:
        wait_for(lambda: op.metrics() and True, what="metrics")
        # a baseline once the operator has listed everything and settled
        wait_for(lambda: watched(op, "Secret") >= 0, what="the Secret watch")
        before = rss_kib(op.pid)
        blob = base64.b64encode(os.urandom(SIZE * 3 // 4)).decode()

        def create(i: int) -> None:
            core.create_namespaced_secret(namespace, {"metadata": {"name": f"bait-{i}", "labels": OURS},
                                                      "data": {"blob": blob}})

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(create, range(SECRETS)))
        # positive signal first: the operator has received every one of them
        wait_for(lambda: watched(op, "Secret") >= SECRETS, timeout=300, interval=2,
                 what=f"the operator's watch holding {SECRETS} Secrets")
        after = rss_kib(op.pid)
        grown = (after - before) / 1024
        print(f"operator RSS {before / 1024:.1f} MiB -> {after / 1024:.1f} MiB (+{grown:.1f} MiB) "
              f"for {SECRETS} labelled Secrets of {SIZE // 1024} KiB ({SECRETS * SIZE / 2**20:.0f} MiB of data)")
        assert grown < 10, f"operator RSS grew by {grown:.1f} MiB"
        assert op.alive()
