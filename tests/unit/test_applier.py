"""The applier's observed cache: when an object counts as drifted (re-apply) and when not."""

from __future__ import annotations

import asyncio
import copy

from featurestore_operator.reconcile.applier import Applier
from featurestore_operator.render.names import OWNER_LABEL
from featurestore_operator.runtime.cache import ObservedCache, drift_key
from featurestore_operator.runtime.kube import FIELD_MANAGER

OURS = {
    "manager": FIELD_MANAGER,
    "operation": "Apply",
    "apiVersion": "v1",
    "time": "2026-11-25T10:00:00Z",
    "fieldsType": "FieldsV1",
    "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}}},
}


def sa(rv: str, *entries: dict, secrets: list | None = None) -> dict:
    obj = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": "s-feast",
            "namespace": "ns",
            "resourceVersion": rv,
            "labels": {"app": "feast"},
            "managedFields": [copy.deepcopy(e) for e in entries],
        },
    }
    if secrets:
        obj["secrets"] = secrets
    return obj


def desired() -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "s-feast", "namespace": "ns", "labels": {"app": "feast"}},
    }


class FakeKube:
    def __init__(self, answer: dict):
        self.answer = answer
        self.applied: list[dict] = []

    async def apply(self, obj: dict) -> dict:
        self.applied.append(obj)
        return copy.deepcopy(self.answer)


def test_writes_to_fields_we_do_not_set_are_not_drift():
    applied = sa("1", OURS)
    token_controller = {
        "manager": "kube-controller-manager",
        "operation": "Update",
        "apiVersion": "v1",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:secrets": {}},
    }
    later = sa("2", OURS, token_controller, secrets=[{"name": "s-feast-token-abc"}])
    assert drift_key(applied) == drift_key(later)


def test_an_edit_of_a_field_we_set_is_drift():
    applied = sa("1", OURS)
    # kubectl edit of our label: the field's ownership moves to the editor, our entry loses it
    taken = {**OURS, "fieldsV1": {"f:metadata": {"f:labels": {}}}}
    editor = {
        "manager": "kubectl-edit",
        "operation": "Update",
        "apiVersion": "v1",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}}},
    }
    assert drift_key(applied) != drift_key(sa("2", taken, editor))


def test_the_time_of_our_entry_alone_is_not_drift():
    assert drift_key(sa("1", OURS)) == drift_key(sa("2", {**OURS, "time": "2026-11-25T11:00:00Z"}))


def test_generation_counts_and_no_entry_falls_back_to_resource_version():
    dep = {"kind": "Deployment", "metadata": {"generation": 1, "resourceVersion": "5", "managedFields": [OURS]}}
    assert drift_key(dep) != drift_key({**dep, "metadata": {**dep["metadata"], "generation": 2}})
    assert drift_key(dep) == drift_key({**dep, "metadata": {**dep["metadata"], "resourceVersion": "6"}})
    bare = {"kind": "ConfigMap", "metadata": {"resourceVersion": "5"}}
    assert drift_key(bare) != drift_key({"kind": "ConfigMap", "metadata": {"resourceVersion": "6"}})


def test_apply_is_skipped_until_our_fields_move():
    cache = ObservedCache()
    kube = FakeKube(sa("1", OURS))
    applier = Applier(kube, cache)
    asyncio.run(applier.apply(desired()))
    assert len(kube.applied) == 1
    # the token controller's update arrives through the watch: not drift, no request
    token = {
        "manager": "kube-controller-manager",
        "operation": "Update",
        "apiVersion": "v1",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:secrets": {}},
    }
    assert cache.observe(sa("2", OURS, token, secrets=[{"name": "t"}])) is False
    asyncio.run(applier.apply(desired()))
    assert len(kube.applied) == 1
    # someone takes our label: drift, and the next pass applies again
    assert cache.observe(sa("3", {**OURS, "fieldsV1": {}}, token)) is True
    asyncio.run(applier.apply(desired()))
    assert len(kube.applied) == 2
    # a changed desired object is applied even without drift
    changed = desired()
    changed["metadata"]["labels"]["app"] = "feast2"
    asyncio.run(applier.apply(changed))
    assert len(kube.applied) == 3


def test_an_apply_answer_overtaken_by_a_watch_event_does_not_bring_back_the_old_state():
    cache = ObservedCache()
    newer = sa("7", OURS, secrets=[{"name": "token"}])
    newer["metadata"]["labels"]["controller"] = "added"
    cache.record(newer)
    older = cache.record(sa("5", OURS), keep_data=True)
    assert older["metadata"]["resourceVersion"] == "7" and older["metadata"]["labels"]["controller"] == "added"
    assert cache.objects[("ServiceAccount", "ns", "s-feast")]["metadata"]["resourceVersion"] == "7"
    assert cache.record(sa("8", OURS))["metadata"]["resourceVersion"] == "8"
    assert cache.counts["ServiceAccount"] == 1


def test_cache_keeps_no_managed_fields():
    cache = ObservedCache()
    cache.applied[("ServiceAccount", "ns", "s-feast")] = ("h", drift_key(sa("1", OURS)))
    assert cache.observe(sa("1", OURS)) is False
    (obj,) = cache.objects.values()
    assert "managedFields" not in obj["metadata"]
    cache.forget(("ServiceAccount", "ns", "s-feast"))
    assert not cache.objects and not cache.drift


def test_slim_keeps_what_conditions_read():
    from featurestore_operator.reconcile import conditions as cond
    from featurestore_operator.runtime.cache import slim

    dep = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "d",
            "namespace": "ns",
            "generation": 3,
            "uid": "u1",
            "labels": {"a": "b"},
            "annotations": {"deployment.kubernetes.io/revision": "2"},
            "managedFields": [OURS],
            "ownerReferences": [
                {
                    "apiVersion": "x/v1",
                    "kind": "FeatureStore",
                    "name": "fs",
                    "uid": "fs-uid",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}},
        "status": {
            "observedGeneration": 3,
            "replicas": 2,
            "availableReplicas": 0,
            "unavailableReplicas": 2,
            "conditions": [
                {
                    "type": "Progressing",
                    "status": "False",
                    "reason": "ProgressDeadlineExceeded",
                    "message": "too slow",
                    "lastUpdateTime": "t",
                    "lastTransitionTime": "t",
                }
            ],
        },
    }
    small = slim(dep)
    assert cond.deployment_part(cond.T.FEATURE_SERVER, small, 2) == cond.deployment_part(cond.T.FEATURE_SERVER, dep, 2)
    assert "managedFields" not in small["metadata"] and "template" not in small["spec"]
    assert small["spec"]["replicas"] == 2
    assert small["metadata"]["ownerReferences"] == [{"kind": "FeatureStore", "uid": "fs-uid", "controller": True}]

    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "j",
            "namespace": "ns",
            "creationTimestamp": "2026-11-25T10:00:00Z",
            "ownerReferences": [{"kind": "CronJob", "uid": "c", "controller": True}],
        },
        "status": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True", "lastProbeTime": "t"}]},
    }
    cron = {
        "apiVersion": "batch/v1beta1",
        "kind": "CronJob",
        "metadata": {"name": "c", "namespace": "ns"},
        "spec": {"schedule": "@hourly", "jobTemplate": {"spec": {}}},
        "status": {"lastScheduleTime": "t1", "lastSuccessfulTime": "t2", "active": [{"name": "x"}]},
    }
    full = cond.materialization_part(cron, [job], True)
    assert cond.materialization_part(slim(cron), [slim(job)], True) == full
    assert cond.job_state(slim(job)) == "Succeeded"
    sts = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "r", "namespace": "ns"},
        "status": {"readyReplicas": 1, "currentRevision": "r-1"},
    }
    assert cond.statefulset_part(cond.T.ONLINE_STORE, slim(sts)) == cond.statefulset_part(cond.T.ONLINE_STORE, sts)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": "ns"},
        "type": "Opaque",
        "data": {"password": "cHc="},
    }
    # a Secret's data is kept only for Secrets the operator applied itself, never for one a user labels as ours
    assert "data" not in slim(secret) and "status" not in slim(secret)
    assert slim(secret, keep_data=True)["data"] == {"password": "cHc="}


def test_watched_secret_data_is_kept_only_when_we_applied_it():
    cache = ObservedCache()
    foreign = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "big", "namespace": "ns", "resourceVersion": "1"},
        "data": {"blob": "A" * 100_000},
    }
    cache.observe(foreign)
    assert "data" not in cache.objects[("Secret", "ns", "big")]
    cache.applied[("Secret", "ns", "big")] = ("h", "d")
    cache.observe(foreign)
    assert cache.objects[("Secret", "ns", "big")]["data"] == foreign["data"]


def _fake_kube():
    from tests.support.fake_kube import FakeKube as InMemoryKube

    return InMemoryKube()


def _obj(kind: str, name: str, api_version: str = "v1", **spec) -> dict:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": "ns"}, "spec": spec}


def test_apply_all_applies_policies_first_and_keeps_going_after_a_refusal():
    kube = _fake_kube()
    kube.denied[("ConfigMap", "refused")] = (
        400,
        'admission webhook "quota.example.com" denied the request: too many ConfigMaps',
    )
    applier = Applier(kube, ObservedCache())
    objects = [
        _obj("Deployment", "d", "apps/v1", replicas=1),
        _obj("ConfigMap", "refused"),
        _obj("Service", "s"),
        _obj("NetworkPolicy", "p", "networking.k8s.io/v1"),
    ]
    failures = asyncio.run(applier.apply_all(objects))
    assert [k for _, k in kube.calls] == ["NetworkPolicy", "ConfigMap", "Service", "Deployment"]
    assert [f.key for f in failures] == [("ConfigMap", "ns", "refused")]
    assert "ConfigMap refused: admission webhook" in failures[0].describe()
    assert ("Deployment", "ns", "d") in kube.objects and ("Service", "ns", "s") in kube.objects
    # the same refused object is not sent again (nor reported as new) until it or the live one changes
    calls = len(kube.calls)
    again = asyncio.run(applier.apply_all(objects))
    assert again == failures and len(kube.calls) == calls
    kube.denied.clear()
    fixed = [*objects[:1], {**_obj("ConfigMap", "refused"), "data": {"k": "v"}}, *objects[2:]]
    assert asyncio.run(applier.apply_all(fixed)) == []
    assert ("ConfigMap", "ns", "refused") in kube.objects


def test_a_changed_immutable_field_is_a_failure_marked_immutable():
    kube = _fake_kube()
    applier = Applier(kube, ObservedCache())
    claim = _obj("PersistentVolumeClaim", "data", storageClassName="standard")
    assert asyncio.run(applier.apply_all([claim])) == []
    (failure,) = asyncio.run(applier.apply_all([_obj("PersistentVolumeClaim", "data", storageClassName="fast")]))
    assert failure.immutable and "spec.storageClassName" in failure.describe()


def _secret(name: str, password: str = "cw==") -> dict:
    meta = {
        "name": name,
        "namespace": "ns",
        "labels": {OWNER_LABEL: "demo"},
        "ownerReferences": [{"kind": "FeatureStore", "uid": "fs-uid", "controller": True, "name": "demo"}],
    }
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque", "data": {"password": password}}


def test_unwatched_secrets_are_read_by_name_each_pass():
    """Secrets are not watched (no list/watch right): refresh() reads the store's Secrets by name, so a
    deleted one is re-applied, an edited one restored, and a leftover one (a restarted operator, a
    spec that no longer asks for it) pruned."""
    kube = _fake_kube()
    applier = Applier(kube, ObservedCache())
    wanted = _secret("demo-online-store")
    names = {"demo-online-store", "demo-feast-tls"}
    asyncio.run(applier.apply_all([wanted]))
    # deleted behind the operator's back: the next pass sees it and applies it again
    del kube.objects[("Secret", "ns", "demo-online-store")]
    asyncio.run(applier.refresh("Secret", "v1", "ns", names))
    asyncio.run(applier.apply_all([wanted]))
    assert kube.objects[("Secret", "ns", "demo-online-store")]["data"] == {"password": "cw=="}
    # edited: restored
    kube.put({**wanted, "data": {"password": "aGlqYWNrZWQ="}})
    asyncio.run(applier.refresh("Secret", "v1", "ns", names))
    asyncio.run(applier.apply_all([wanted]))
    assert kube.objects[("Secret", "ns", "demo-online-store")]["data"] == {"password": "cw=="}
    # a Secret an earlier process wrote (this cache never saw it) that the spec no longer wants
    kube.put(_secret("demo-feast-tls"))
    fresh = Applier(kube, ObservedCache())
    asyncio.run(fresh.refresh("Secret", "v1", "ns", names))
    assert asyncio.run(fresh.prune("ns", "demo", "fs-uid", {("Secret", "ns", "demo-online-store")})) == [
        ("Secret", "ns", "demo-feast-tls")
    ]
    assert ("Secret", "ns", "demo-feast-tls") not in kube.objects
    # only GETs by name: never a list of Secrets
    assert ("GET", "Secret") in kube.calls and not [c for c in kube.calls if c[0] == "LIST"]
