"""Red team (issue 25): the applier never takes over an object its FeatureStore does not control.
(The attack on the real API server: tests/controlplane/test_redteam_adoption.py.)"""

from __future__ import annotations

import asyncio

import pytest
from featurestore_operator.reconcile.applier import Applier
from featurestore_operator.runtime.cache import ObservedCache
from featurestore_operator.runtime.kube import ApiError

from tests.support.fake_kube import FakeKube

OWNER = {"apiVersion": "featurestore.kubeflow.org/v1alpha1", "kind": "FeatureStore", "name": "demo", "uid": "u-1"}


def role(rules: list[str], owner: dict | None = OWNER) -> dict:
    meta: dict = {"name": "demo-feast-reader", "namespace": "ns"}
    if owner is not None:
        meta["ownerReferences"] = [{**owner, "controller": True}]
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": meta,
        "rules": [{"apiGroups": [""], "resources": rules, "verbs": ["get"]}],
    }


def apply(kube: FakeKube, obj: dict) -> dict:
    return asyncio.run(Applier(kube, ObservedCache()).apply(obj))


@pytest.mark.parametrize(
    "existing_owner",
    [
        pytest.param(None, id="nobody's"),
        pytest.param({**OWNER, "name": "other", "uid": "u-2"}, id="another-store's"),
        pytest.param({**OWNER, "kind": "Profile", "uid": "u-3"}, id="same-name-other-kind"),
    ],
)
def test_an_object_not_controlled_by_the_store_is_never_taken_over(existing_owner):
    kube = FakeKube()
    kube.put(role(["secrets"], existing_owner))
    with pytest.raises(ApiError) as err:
        apply(kube, role(["configmaps"]))
    assert err.value.status == 409 and "not created by FeatureStore demo" in err.value.message
    assert kube.objects[("Role", "ns", "demo-feast-reader")]["rules"][0]["resources"] == ["secrets"]
    assert kube.writes == []


@pytest.mark.parametrize(
    "existing_owner",
    [
        pytest.param(OWNER, id="this-store"),
        pytest.param({**OWNER, "uid": "u-old"}, id="predecessor-of-the-same-name"),
    ],
)
def test_the_stores_own_objects_are_applied(existing_owner):
    kube = FakeKube()
    kube.put(role(["secrets"], existing_owner))
    apply(kube, role(["configmaps"]))
    assert kube.objects[("Role", "ns", "demo-feast-reader")]["rules"][0]["resources"] == ["configmaps"]


def test_absent_objects_are_created_and_asked_about_once():
    kube = FakeKube()
    applier = Applier(kube, ObservedCache())
    asyncio.run(applier.apply(role(["configmaps"])))
    asyncio.run(applier.apply(role(["configmaps", "secrets"])))  # changed: applied again, no second look-up
    assert [c[0] for c in kube.calls] == ["GET", "PATCH", "PATCH"]


@pytest.mark.parametrize("name", ["a,metadata.namespace=kube-system", "a=b", "../x", "A", "", "a" * 254])
def test_find_refuses_names_that_would_add_selectors(name):
    from featurestore_operator.runtime.kube import Kube, UnsafeRequest

    with pytest.raises(UnsafeRequest, match="not a Kubernetes object name"):
        asyncio.run(Kube(client=None).find("Role", "rbac.authorization.k8s.io/v1", "ns", name))  # type: ignore[arg-type]
