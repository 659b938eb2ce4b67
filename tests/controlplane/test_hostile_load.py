"""Hostile load (issue 25, item 8): a namespace editor floods the cluster with maximal FeatureStores
(~0.7 MB each, under the API server's 1.5 MB request limit) while the admission webhook is off (or
fails open), so every one is stored. Each spec is a free-form field (affinity, whose schema preserves
unknown fields) holding a list of {"a": {}}: two dicts per 9 bytes, about the most memory per byte
JSON can cost a Python process (~25-30x) for the fewest elements the API server must decode. Before
the fix one such spec cost the operator ~12 MiB and about 40 of them took it past its chart's
512Mi limit (OOMKilled, and with failurePolicy Fail every tenant's writes were refused meanwhile).

The operator must drop an oversized spec as it reads it (list, watch, workers) and refuse the store
with a Spec condition naming maxSpecBytes; its RSS stays far under 512Mi with 40 of them present,
whether they arrive in its first list (created while it was down) or through its watch."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from kubernetes import client

from tests.support.kube import G, P, V
from tests.support.operator_process import OperatorProcess
from tests.support.waiting import wait_for

STORES = 40
#: the chart's memory limit of the operator (values.yaml resources.limits.memory)
CHART_LIMIT_MIB = 512
#: what the test accepts: half the limit (the operator idles at ~60-80 MiB)
MAX_RSS_MIB = CHART_LIMIT_MIB // 2


def maximal_spec(target_bytes: int = 700_000) -> dict:
    """A spec of about ``target_bytes`` serialised, made of the most memory-hungry JSON there is."""
    n = (target_bytes - 200) // 9
    return {"project": "flood", "featureServer": {"pod": {"affinity": {"nodeAffinity": {"x": [{"a": {}}] * n}}}}}


def manifest(name: str, spec: dict) -> dict:
    return {"apiVersion": f"{G}/{V}", "kind": "FeatureStore", "metadata": {"name": name}, "spec": spec}


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def refusals(core: client.CoreV1Api, namespace: str) -> set[str]:
    """Stores the operator refused for their size, from its Warning Events (small objects: listing
    the stores themselves would move 0.7 MB each)."""
    events = core.list_namespaced_event(namespace, field_selector="involvedObject.kind=FeatureStore").items
    return {e.involved_object.name for e in events if "maxSpecBytes" in (e.message or "")}


@pytest.mark.timeout(1800)  # 40 objects of 0.7 MB through a 1.20 API server on a loaded 2-core machine
def test_forty_maximal_specs_do_not_take_the_operator_near_its_limit(
    control_plane, featurestore_crd, kube_api, namespace
):
    custom, core = client.CustomObjectsApi(kube_api), client.CoreV1Api(kube_api)
    spec = maximal_spec()
    size = len(json.dumps(spec, separators=(",", ":")))
    assert 600_000 < size < 1_500_000

    def create(i: int) -> None:
        custom.create_namespaced_custom_object(G, V, namespace, P, manifest(f"flood-{i:02d}", spec))

    def failed(op: OperatorProcess) -> float:
        return op.metric("featurestore_stores", phase="Failed")

    with ThreadPoolExecutor(2) as pool:  # a loaded API server takes seconds per 0.7 MB object
        list(pool.map(create, range(STORES // 2)))  # present before the operator starts: its first list
        # the webhook is off (OperatorProcess does not enable it): every one is stored
        with OperatorProcess(control_plane.kubeconfig, args=["--namespace", namespace]) as op:
            wait_for(
                lambda: failed(op) >= STORES // 2,
                timeout=600,
                interval=3,
                what="the listed stores refused (phase Failed)",
            )
            after_list = rss_mib(op.pid)
            list(pool.map(create, range(STORES // 2, STORES)))  # through its watch
            wait_for(lambda: failed(op) >= STORES, timeout=600, interval=3, what="every store refused (phase Failed)")
            peak = rss_mib(op.pid)
            print(
                f"\n[hostile-load] {STORES} specs of {size / 1e6:.2f} MB: operator RSS {after_list:.0f} MiB after "
                f"the first {STORES // 2} (list), {peak:.0f} MiB with all {STORES} (limit {CHART_LIMIT_MIB} MiB)"
            )
            assert peak < MAX_RSS_MIB, f"operator RSS {peak:.0f} MiB with {STORES} maximal specs"
            assert op.process is not None and op.process.alive()
            # refused for their size, each by name (the Spec condition's message is the Event's)
            wait_for(
                lambda: len(refusals(core, namespace)) >= STORES,
                timeout=120,
                interval=3,
                what="a Warning naming maxSpecBytes for every store",
            )
            assert refusals(core, namespace) == {f"flood-{i:02d}" for i in range(STORES)}
