"""Lean watches, as an attacker sees them: a namespace editor labels 500 Secrets of 100 KiB each as
the operator's own, in a namespace with no FeatureStore. The operator never lists or watches Secrets
(it holds no such right: runtime/kinds.py), so it receives none of them and its memory does not grow
with their size. Labelled ConfigMaps it does watch (server-side label selection): kept as slim copies.
ConfigMaps without the label, however many, are never sent to it: it holds exactly the labelled ones."""

from __future__ import annotations

import base64
import os
from concurrent.futures import ThreadPoolExecutor

from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from tests.support.operator_process import OperatorProcess
from tests.support.waiting import wait_for

SECRETS = 500
#: ConfigMaps without the operator's label, created before it starts: a watch without the server-side
#: selector would receive (and cache) every one of them in its first listing
UNLABELLED = 200
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
    return sum(
        s.value
        for f in text_string_to_metric_families(op.metrics())
        for s in f.samples
        if s.name == "featurestore_watched_objects" and s.labels.get("kind") == kind
    )


def test_labelled_secrets_do_not_grow_the_operator(control_plane, featurestore_crd, kube_api, namespace):
    core = client.CoreV1Api(kube_api)
    blob = base64.b64encode(os.urandom(SIZE * 3 // 4)).decode()

    def create(i: int) -> None:
        core.create_namespaced_secret(
            namespace, {"metadata": {"name": f"bait-{i}", "labels": OURS}, "data": {"blob": blob}}
        )

    def unlabelled(i: int) -> None:
        core.create_namespaced_config_map(namespace, {"metadata": {"name": f"plain-{i}"}, "data": {"blob": blob}})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(unlabelled, range(UNLABELLED)))
    # positive signal: a labelled ConfigMap of the same namespace reaches the operator's watch
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "bait-config", "labels": OURS}})
    # the operator watches this namespace only: its count of watched ConfigMaps is then exactly the bait
    with (
        OperatorProcess(control_plane.kubeconfig, env=PINNED_MALLOC, args=["--namespace", namespace]) as op,
        ThreadPoolExecutor(8) as pool,
    ):
        list(pool.map(create, range(WARMUP)))
        wait_for(lambda: watched(op, "ConfigMap") >= 1, timeout=120, interval=1, what="the bait ConfigMap watched")
        assert watched(op, "ConfigMap") == 1, f"the operator received ConfigMaps without its label ({UNLABELLED})"
        before = rss_kib(op.pid)
        list(pool.map(create, range(WARMUP, WARMUP + SECRETS)))
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "bait-config-2", "labels": OURS}})
        wait_for(lambda: watched(op, "ConfigMap") >= 2, timeout=120, interval=1, what="the second ConfigMap watched")
        after = rss_kib(op.pid)
        grown = (after - before) / 1024
        print(
            f"operator RSS {before / 1024:.1f} MiB -> {after / 1024:.1f} MiB (+{grown:.1f} MiB) "
            f"for {SECRETS} labelled Secrets of {SIZE // 1024} KiB ({SECRETS * SIZE / 2**20:.0f} MiB of data)"
        )
        assert watched(op, "Secret") == 0, "the operator received Secrets"
        assert watched(op, "ConfigMap") == 2, "the operator received ConfigMaps without its label"
        assert grown < 10, f"operator RSS grew by {grown:.1f} MiB"
        assert op.alive()
