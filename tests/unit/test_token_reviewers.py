"""The token reviewers binding's subjects (reconcile/token_reviewers.py): exactly the ServiceAccounts
of live stores with authz kubernetes that pass the admin policy; nothing a user writes adds others."""

from __future__ import annotations

import asyncio
import copy
from types import SimpleNamespace
from typing import Any

from featurestore_operator.api import OperatorConfig, parse_featurestore
from featurestore_operator.reconcile.token_reviewers import manual_grant_note, subjects

CONFIG = OperatorConfig()


def body(name: str, namespace: str = "team", authz: str | None = "kubernetes", **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"project": "p", **({"authz": {"type": authz}} if authz else {}), **extra.pop("spec", {})}
    meta = {"name": name, "namespace": namespace, "uid": f"uid-{name}", **extra}
    return {"apiVersion": "featurestore.kubeflow.org/v1alpha1", "kind": "FeatureStore", "metadata": meta, "spec": spec}


def sa(namespace: str, name: str) -> dict[str, str]:
    return {"kind": "ServiceAccount", "name": name, "namespace": namespace}


def test_subjects_are_the_authz_kubernetes_stores_service_accounts_sorted():
    bodies = [
        body("b", "team-b"),
        body("a", "team-b"),
        body("z", "team-a"),
        body("open", authz=None),
        body("oidc-less", authz="none"),
    ]
    assert subjects(bodies, CONFIG) == [sa("team-a", "z-feast"), sa("team-b", "a-feast"), sa("team-b", "b-feast")]


def test_no_store_no_subject_and_duplicates_collapse():
    assert subjects([], CONFIG) == []
    assert subjects([body("a"), body("a")], CONFIG) == [sa("team", "a-feast")]


def test_deleting_invalid_and_policy_violating_stores_add_nothing():
    deleting = body("gone", deletionTimestamp="2026-11-30T00:00:00Z")
    invalid = body("bad", spec={"featureServer": {"replicas": -3}})
    excluded = body("sys", "kube-system")  # the admin policy's excludedNamespaces
    too_big = body("big", spec={"featureServer": {"replicas": 100}})  # over maxReplicas
    assert subjects([deleting, invalid, excluded, too_big], CONFIG) == []


def test_user_fields_cannot_name_another_subject():
    """Only <name>-feast of the store's own namespace: labels, annotations, reader accounts and
    allowed namespaces never reach the binding."""
    hostile = body(
        "x",
        labels={"app.kubernetes.io/name": "kube-system"},
        annotations={"featurestore.kubeflow.org/service-account": "default"},
        spec={
            "authz": {"type": "kubernetes", "readerServiceAccounts": ["default", "admin"]},
            "kubeflow": {"allowedNamespaces": ["kube-system"]},
        },
    )
    assert subjects([hostile], CONFIG) == [sa("team", "x-feast")]


def test_manual_grant_note_names_the_chart_value_only_when_unmanaged():
    fs = parse_featurestore(body("a"))
    note = manual_grant_note(fs, managed=False)
    assert note and "authz.kubernetes.enabled" in note and "team/a-feast" in note
    assert manual_grant_note(fs, managed=True) is None
    assert manual_grant_note(parse_featurestore(body("n", authz=None)), managed=False) is None


class FakeKube:
    """The token reviewers binding as the API server keeps it: get, and a guarded merge patch."""

    def __init__(self) -> None:
        self.binding: dict[str, Any] = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "rev", "resourceVersion": "1"},
        }
        self.patches: list[list[dict[str, str]]] = []
        self.patched = asyncio.Event()

    async def get(self, kind: str, api_version: str, namespace: str | None, name: str) -> dict[str, Any]:
        return copy.deepcopy(self.binding)

    async def patch_guarded(self, obj: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
        self.patches.append(patch["subjects"])
        self.binding["subjects"] = patch["subjects"]
        self.patched.set()
        return self.binding


def test_no_sync_before_every_watched_namespace_has_listed(monkeypatch):
    """A restarted operator watching namespaces a and b must not drop b's accounts because a listed
    first: the first write already holds both."""
    from featurestore_operator.handlers import token_reviewers as handler

    monkeypatch.setattr(handler, "DEBOUNCE", 0)

    async def scenario() -> list[list[dict[str, str]]]:
        kube = FakeKube()
        rt = SimpleNamespace(config=CONFIG, kube=kube, workers=SimpleNamespace(bodies={}))
        reviewers = handler.TokenReviewers(scopes=2)
        task = asyncio.create_task(reviewers.run(rt, "rev"))  # type: ignore[arg-type]
        rt.workers.bodies[("a", "x")] = body("x", "a")
        reviewers.scope_listed("a")
        for _ in range(20):  # let the task wake, debounce and decide
            await asyncio.sleep(0)
        rt.workers.bodies[("b", "y")] = body("y", "b")
        reviewers.scope_listed("b")
        await asyncio.wait_for(kube.patched.wait(), 5)
        task.cancel()
        return kube.patches

    assert asyncio.run(scenario()) == [[sa("a", "x-feast"), sa("b", "y-feast")]]


def test_status_writes_neither_wake_the_sync_nor_parse_the_store_again(monkeypatch):
    """Every pass writes status (a watch event): only a new store, a spec change (generation), a
    deletion or a DELETED event may wake the sync, and unchanged stores are not parsed again."""
    from featurestore_operator.handlers import token_reviewers as handler

    reviewers = handler.TokenReviewers(scopes=1)
    first = body("x", "a", generation=1)
    reviewers.observe("ADDED", first)
    assert reviewers.changed.is_set(), "a new store wakes the sync"
    assert reviewers.subjects({("a", "x"): first}, CONFIG) == [sa("a", "x-feast")]
    reviewers.changed.clear()
    status_write = copy.deepcopy(first) | {"status": {"phase": "Ready"}}
    reviewers.observe("MODIFIED", status_write)
    assert not reviewers.changed.is_set(), "a status write woke the sync"
    parsed: list[dict[str, Any]] = []
    real = handler.account

    def spy(b: dict[str, Any], config: OperatorConfig) -> tuple[str, str] | None:
        parsed.append(b)
        return real(b, config)  # the real verdict: the spy only records that it ran

    monkeypatch.setattr(handler, "account", spy)
    assert reviewers.subjects({("a", "x"): status_write}, CONFIG) == [sa("a", "x-feast")] and not parsed
    opened = body("x", "a", authz="none", generation=2)
    reviewers.observe("MODIFIED", opened)
    assert reviewers.changed.is_set(), "a spec change did not wake the sync"
    assert reviewers.subjects({("a", "x"): opened}, CONFIG) == [], "authz none: the store's account leaves"
    assert parsed == [opened], "the changed store was parsed again, once"
    reopened = body("x", "a", generation=3)
    reviewers.observe("MODIFIED", reopened)
    assert reviewers.subjects({("a", "x"): reopened}, CONFIG) == [sa("a", "x-feast")], "authz kubernetes again"
    reviewers.changed.clear()
    reviewers.observe("DELETED", opened)
    assert reviewers.changed.is_set(), "a deletion did not wake the sync"


def test_the_binding_and_its_memory_stay_bounded_under_churn():
    """A tenant creating and deleting stores (names reused, new uids, some switched to authz none,
    some stuck deleting) for a long time: after every step the subjects are exactly one per live
    store with authz kubernetes, and the handler remembers nothing about stores that are gone."""
    import random

    from featurestore_operator.handlers import token_reviewers as handler

    reviewers = handler.TokenReviewers(scopes=1)
    rng = random.Random(25)
    live: dict[tuple[str, str], dict[str, Any]] = {}
    for step in range(600):
        key = (f"team-{rng.randrange(3)}", f"s{rng.randrange(15)}")
        roll = rng.random()
        if roll < 0.4:
            live.pop(key, None)
        elif roll < 0.5 and key in live:
            live[key] = copy.deepcopy(live[key])
            live[key]["metadata"]["deletionTimestamp"] = "2026-12-07T00:00:00Z"
        else:
            authz = "kubernetes" if roll < 0.85 else "none"
            live[key] = body(key[1], key[0], authz=authz, generation=1)
            live[key]["metadata"]["uid"] = f"uid-{step}"
        want = sorted(
            (ns, f"{name}-feast")
            for (ns, name), b in live.items()
            if b["spec"]["authz"]["type"] == "kubernetes" and not b["metadata"].get("deletionTimestamp")
        )
        got = reviewers.subjects(live, CONFIG)
        assert [(s["namespace"], s["name"]) for s in got] == want, step
        assert set(reviewers.accounts) == set(live), "the handler keeps state of stores that are gone"
