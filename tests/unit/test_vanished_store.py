"""A FeatureStore deleted past its finalizer while a pass is creating its cloud resources (the
kube-apiserver DELETE race in reconcile/finalize.py, or a finalizer removed by hand): the worker
must still delete what the pass created. Driven through runtime.workers against the in-memory API
(tests/support/fake_kube.py) with a recording cloud backend, so the interleaving is exact: the
finalizer is added, the create is requested, then the object is gone and the status write is a 404.
The same outcome on the real API server: tests/controlplane/test_reliability.py
::test_a_store_deleted_past_its_finalizer_has_its_cloud_resources_deleted."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from featurestore_operator.api import FINALIZER, ConditionType, FeatureStore, OperatorConfig
from featurestore_operator.api.status import Operations
from featurestore_operator.backends.base import BackendContext, Deleted, Pending, StatusUpdate
from featurestore_operator.backends.registry import DefaultBackends
from featurestore_operator.reconcile import core, versions
from featurestore_operator.reconcile.controller import FeatureStoreController
from featurestore_operator.runtime.cache import ObservedCache
from featurestore_operator.runtime.workers import Workers

from tests.support.fake_kube import FakeKube

NS = "team-a"
UID = "6f1c2a8e-0b7d-4c39-9a52-3e4f5a6b7c8d"  # the API server assigns UUIDs; records accept nothing else


class Cloud:
    """A cloud backend that needs clean-up: records creates and deletes by owner uid. ``on_create``
    runs right after a create is requested (the moment the race removes the store)."""

    def __init__(self, kube: FakeKube):
        self.kube = kube
        self.created: list[str] = []
        self.deleted: list[str] = []
        self.on_create = lambda: None

    async def ensure(self, fs: FeatureStore, ctx: BackendContext) -> Pending:
        assert FINALIZER in (self.kube.objects[("FeatureStore", NS, "demo")]["metadata"].get("finalizers") or [])
        self.created.append(fs.metadata.uid or "")
        self.on_create()
        return Pending(
            "Creating", "instance being created", status=StatusUpdate(operations=Operations(memorystore="op-1"))
        )

    async def delete(self, fs: FeatureStore, ctx: BackendContext) -> Deleted:
        self.deleted.append(fs.metadata.uid or "")
        return Deleted(True, "deleted")

    def needs_cleanup(self, fs: FeatureStore) -> bool:
        return True


class Backends(DefaultBackends):
    def __init__(self, config: OperatorConfig, cloud: Cloud):
        super().__init__(config)
        self.cloud = cloud

    def online(self, fs: FeatureStore) -> Any:
        return self.cloud

    def extra(self, fs: FeatureStore) -> list[tuple[ConditionType, Any]]:
        return []


def body(uid: str = UID) -> dict[str, Any]:
    return {
        "apiVersion": "featurestore.kubeflow.org/v1alpha1",
        "kind": "FeatureStore",
        "metadata": {"name": "demo", "namespace": NS, "uid": uid, "generation": 1},
        "spec": {"project": "demo", "provider": "local"},
    }


def run(remove_during_create: bool) -> Cloud:
    kube = FakeKube()
    config = OperatorConfig(istio=False)
    cloud = Cloud(kube)
    deps = core.Deps(
        kube=kube,
        cache=ObservedCache(),
        discovery=versions.discovery(kube),
        config=config,  # type: ignore[arg-type]
        backends=Backends(config, cloud),
    )

    async def scenario() -> None:
        workers = Workers(FeatureStoreController(kube, lambda _: deps), resync=30, concurrency=1)
        if remove_during_create:

            def vanish() -> None:  # the API server deletes the store although the finalizer was added
                gone = kube.objects.pop(("FeatureStore", NS, "demo"))
                workers.observe("DELETED", gone)

            cloud.on_create = vanish
        workers.observe("ADDED", kube.put(body()))
        for _ in range(200):
            await asyncio.sleep(0.01)
            if cloud.deleted or (cloud.created and not remove_during_create):
                break
        await workers.stop()

    asyncio.run(scenario())
    return cloud


def test_a_store_gone_right_after_its_cloud_create_has_the_resource_deleted():
    cloud = run(remove_during_create=True)
    assert cloud.created == [UID]
    assert cloud.deleted == [UID], "the resource created for the vanished store was never deleted"


def test_a_live_store_is_not_cleaned_up():
    cloud = run(remove_during_create=False)
    assert cloud.created and not cloud.deleted


def test_a_clean_up_record_is_the_operators_own_and_names_one_store():
    """Records live in the operator's namespace, named from the store's namespace/name/uid; one
    anywhere else, altered, or naming anything but a valid namespace, name and UUID is refused."""
    from featurestore_operator.reconcile import records

    record = records.record_for(body(), "fso-system")
    assert record["metadata"]["namespace"] == "fso-system"
    assert record["metadata"]["name"] == records.record_name(NS, "demo", UID)
    assert records.read(record, "fso-system")["metadata"] == {"name": "demo", "namespace": NS, "uid": UID}
    moved = {**record, "metadata": {**record["metadata"], "namespace": NS}}
    with pytest.raises(records.Refused, match="outside the operator's namespace"):
        records.read(moved, "fso-system")
    other = json.loads(record["data"]["featurestore.json"])
    other["metadata"]["namespace"] = "victim"
    altered = {**record, "data": {"featurestore.json": json.dumps(other)}}
    with pytest.raises(records.Refused, match="does not match"):
        records.read(altered, "fso-system")
    for meta in (
        {"name": "demo"},
        {"name": "../x", "namespace": NS, "uid": UID},
        {"name": "demo", "namespace": NS, "uid": "/../../../victim/secrets/s"},
        {"name": "demo", "namespace": "../kube-system", "uid": UID},
        {"name": "demo", "namespace": NS, "uid": 7},
    ):
        for data in (
            {},
            {"featurestore.json": "not json"},
            {"featurestore.json": "[]"},
            {"featurestore.json": json.dumps({"metadata": meta})},
        ):
            with pytest.raises(records.Refused):
                records.read({**record, "data": data}, "fso-system")
