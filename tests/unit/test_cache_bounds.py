"""Hostile load through the watches (issue 25, the class of the spec flood): a namespace editor labels
their own objects as the operator's (``app.kubernetes.io/managed-by=featurestore-operator``), so the
watches send them and the observed cache holds them. ConfigMap data is never kept
(tests/controlplane/test_lean_watches.py), but labels and ownerReferences were, whole: a ConfigMap
with 5000 labels (~0.6 MB, well under the object size limit) cost ~1.5 MB in the cache, and a few
hundred such objects would take the operator past its memory limit. The operator's own objects carry
a handful of labels and owners; what the cache keeps of an object is bounded whatever it carries."""

from __future__ import annotations

import json
import sys

from featurestore_operator.runtime.cache import MAX_LABELS, MAX_OWNERS, ObservedCache, slim


def deep_size(obj: object) -> int:
    seen: set[int] = set()

    def size(o: object) -> int:
        if id(o) in seen:
            return 0
        seen.add(id(o))
        n = sys.getsizeof(o)
        if isinstance(o, dict):
            n += sum(size(k) + size(v) for k, v in o.items())
        elif isinstance(o, list):
            n += sum(size(v) for v in o)
        return n

    return size(obj)


def hostile(i: int) -> dict:
    labels = {f"featurestore.kubeflow.org/k{j:05d}": f"{i:04d}" + "v" * 59 for j in range(5000)}
    labels |= {"app.kubernetes.io/managed-by": "featurestore-operator", "featurestore.kubeflow.org/name": "victim"}
    owners = [{"apiVersion": "v1", "kind": "ConfigMap", "name": f"o{j}", "uid": f"uid-{i}-{j}"} for j in range(2000)]
    meta = {"name": f"cm{i}", "namespace": "team-a", "uid": f"u{i}", "resourceVersion": "1", "labels": labels}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {**meta, "ownerReferences": owners}}


def test_a_hostile_labelled_object_costs_the_cache_a_bounded_size():
    obj = hostile(0)
    assert len(json.dumps(obj)) > 500_000
    small = slim(obj)
    assert len(small["metadata"]["labels"]) <= MAX_LABELS
    assert len(small["metadata"]["ownerReferences"]) <= MAX_OWNERS
    assert deep_size(small) < 16 * 1024, deep_size(small)
    cache = ObservedCache()
    for i in range(50):
        cache.observe(hostile(i))
    assert deep_size(cache.objects) < 50 * 16 * 1024


def test_the_operators_own_objects_keep_every_label_and_owner():
    labels = {
        "app.kubernetes.io/name": "feast",
        "app.kubernetes.io/instance": "demo",
        "app.kubernetes.io/component": "feature-server",
        "app.kubernetes.io/managed-by": "featurestore-operator",
        "app.kubernetes.io/part-of": "feast",
        "featurestore.kubeflow.org/name": "demo",
        "featurestore.kubeflow.org/repo-revision": "abc",
        "job-name": "demo-apply",
        "controller-uid": "x",
    }
    owners = [{"apiVersion": "v1", "kind": "FeatureStore", "name": "demo", "uid": "u", "controller": True}]
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "a", "labels": labels}}
    obj["metadata"]["ownerReferences"] = owners
    small = slim(obj)
    assert small["metadata"]["labels"] == labels
    assert small["metadata"]["ownerReferences"] == [{"kind": "FeatureStore", "uid": "u", "controller": True}]
