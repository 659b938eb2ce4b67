"""Red team (issue 25): the operator never adopts an object it did not create.

The operator server-side applies its children with ``force``, under names derived from the
FeatureStore's name. Before this, a namespace editor who named a store after an existing object
(``<store>-feast-reader``, ``<store>-feast-writer``, ...) made the operator take it over: its
rules/subjects overwritten, the operator's labels and a controller ownerReference added, so the
garbage collector deleted it with the store. A namespace editor cannot write Roles or
RoleBindings (Kubernetes/Kubeflow ``edit``), but the operator can: the editor used it as a deputy
against the namespace admin's RBAC objects (and any other object of theirs).

Now an object that exists and is not controlled by this FeatureStore (ownerReference with its uid)
is left as it is, and the store says which object is in the way.
"""

from __future__ import annotations

import pytest
from kubernetes import client

from tests.support.kube import G, P, V, fs_manifest, get_fs
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(240)

ADMIN_RULES = [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]


def _messages(fs: dict | None) -> str:
    return " ".join(c.get("message", "") for c in ((fs or {}).get("status") or {}).get("conditions") or [])


def test_a_store_named_after_an_admin_role_does_not_take_it_over(operator, kube_api, namespace):
    rbac = client.RbacAuthorizationV1Api(kube_api)
    # the namespace admin's own Role, which the store "demo" would render under the same name
    rbac.create_namespaced_role(
        namespace, {"metadata": {"name": "demo-feast-reader", "labels": {"team": "admin"}}, "rules": ADMIN_RULES}
    )
    manifest = fs_manifest("demo", authz={"type": "kubernetes"})
    client.CustomObjectsApi(kube_api).create_namespaced_custom_object(G, V, namespace, P, manifest)

    def writer_applied() -> bool:  # the store's other objects go on: only the one in the way is skipped
        return any(r.metadata.name == "demo-feast-writer" for r in rbac.list_namespaced_role(namespace).items)

    wait_for(writer_applied, timeout=120, what="the store's own Role demo-feast-writer")

    def settled() -> bool:  # taken over (before) or reported as in the way (after)
        role = rbac.read_namespaced_role("demo-feast-reader", namespace)
        return bool(role.metadata.owner_references) or "demo-feast-reader" in _messages(
            get_fs(kube_api, namespace, "demo")
        )

    wait_for(settled, timeout=120, what="the Role demo-feast-reader taken over or reported")
    role = rbac.read_namespaced_role("demo-feast-reader", namespace)
    assert len(role.rules) == 1 and role.rules[0].api_groups == [""]
    assert role.rules[0].resources == ["secrets"] and role.rules[0].verbs == ["get", "list"]
    assert not role.metadata.owner_references, role.metadata.owner_references
    assert role.metadata.labels == {"team": "admin"}
    assert "not created by" in _messages(get_fs(kube_api, namespace, "demo"))
