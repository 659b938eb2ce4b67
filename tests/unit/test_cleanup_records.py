"""Which clean-up records the operator acts on at start and after every relist
(handlers/featurestore.py ``_clean_up_recorded``): only its own (in its namespace, matching the store
they name), only for stores that are gone and in the namespaces it watches. Everything else is a log
line. The same on the real API server, with the operator process and forged records:
tests/controlplane/test_forged_records.py."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from types import SimpleNamespace
from typing import Any

from featurestore_operator.api import OperatorConfig
from featurestore_operator.handlers.featurestore import _clean_up_recorded
from featurestore_operator.reconcile import records

from tests.support.fake_kube import FakeKube

HOME = "fso-system"


def store(ns: str, name: str, uid: str | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "featurestore.kubeflow.org/v1alpha1",
        "kind": "FeatureStore",
        "metadata": {"namespace": ns, "name": name, "uid": uid or str(uuid.uuid4())},
        "spec": {"project": "p"},
    }


class Workers:
    def __init__(self, live: list[dict[str, Any]]):
        self.bodies = {(b["metadata"]["namespace"], b["metadata"]["name"]): b for b in live}
        self.cleaned: list[tuple[str, str, str]] = []

    def clean_up(self, key: tuple[str, str], body: dict[str, Any]) -> None:
        self.cleaned.append((*key, body["metadata"]["uid"]))


def run(kube: FakeKube, namespace: str | None, live: list[dict[str, Any]], listed: set[str | None]) -> Workers:
    workers = Workers(live)
    rt = SimpleNamespace(
        kube=kube, workers=workers, ignored_records=set(), config=OperatorConfig(operator_namespace=HOME)
    )
    asyncio.run(_clean_up_recorded(rt, namespace, listed))  # type: ignore[arg-type]
    return workers


def test_only_the_operators_own_records_of_gone_stores_in_scope_are_acted_on(caplog):
    kube = FakeKube()
    gone, live, elsewhere = store("team-a", "gone"), store("team-a", "live"), store("team-b", "gone")
    known = store("team-a", "known")  # live, known to a worker but not in this listing
    for s in (gone, live, elsewhere, known):
        kube.put(records.record_for(s, HOME))
    # a record claiming team-a's namespace in its labels but team-b's store in its data
    moved = records.record_for(store("team-b", "other"), HOME)
    moved["metadata"]["labels"][records.STORE_NAMESPACE] = "team-a"
    kube.put(moved)
    # an old-style record (and a forgery) in the tenant's namespace, naming a live store of team-b
    forged = records.record_for(elsewhere, HOME)
    forged["metadata"] = {
        "namespace": "team-a",
        "name": "featurestore-cleanup-x",
        "uid": "f1",
        "labels": {records.CLEANUP_RECORD: "true"},
    }
    forged["data"]["featurestore.json"] = json.dumps({"metadata": {"name": "x", "uid": "/../../../team-b/secrets/s"}})
    kube.put(forged)

    with caplog.at_level(logging.WARNING):
        workers = run(kube, "team-a", [known], {live["metadata"]["uid"]})
    assert workers.cleaned == [("team-a", "gone", gone["metadata"]["uid"])]
    assert "ignoring clean-up record ConfigMap team-a/featurestore-cleanup-x" in caplog.text
    assert f"ignoring clean-up record ConfigMap {HOME}/{moved['metadata']['name']}" in caplog.text
    assert not kube.writes, "records are never deleted or changed by a listing"

    # cluster-wide: every gone store's record, still none of the others
    workers = run(kube, None, [known], {live["metadata"]["uid"]})
    assert sorted(workers.cleaned) == sorted(
        [("team-a", "gone", gone["metadata"]["uid"]), ("team-b", "gone", elsewhere["metadata"]["uid"])]
    )


def test_a_record_of_a_live_store_does_nothing_whatever_key_it_is_under():
    kube = FakeKube()
    victim = store("team-b", "victim")
    kube.put(records.record_for(victim, HOME))
    assert not run(kube, None, [], {victim["metadata"]["uid"]}).cleaned
    assert not run(kube, None, [victim], set()).cleaned
