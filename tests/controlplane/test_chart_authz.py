"""`authz: kubernetes` under the Helm chart (authz.kubernetes.enabled, default on): the REAL operator runs
under the chart's ServiceAccount token. Its Roles/RoleBindings apply, and the one ClusterRoleBinding
``<release>-feast-token-reviewers`` holds exactly the ``<fs>-feast`` ServiceAccounts of stores with
authz kubernetes, so their servers' TokenReviews are allowed while they live and refused after.

Attacks: a namespace admin (a Kubeflow profile owner) cannot add a subject to that binding or create
any ClusterRoleBinding; the operator's own token cannot bind another ClusterRole, touch another
ClusterRoleBinding or create a RoleBinding to a role it does not hold (RBAC's escalation check).
"""

from __future__ import annotations

import time
import urllib.error
from typing import Any

import pytest
from kubernetes import client
from kubernetes import config as kube_config
from kubernetes.client.rest import ApiException

from tests.support.helm import (
    CHART,
    NO_WEBHOOK,
    SESSION_CRD,
    TOKEN_REVIEWER,
    TOKEN_REVIEWERS,
    chart_operator,
    explain,
    helm,
    installed,
)
from tests.support.kube import OWNER_LABEL, G, P, V
from tests.support.kubelet import FakeKubelet
from tests.support.rbac import can

RBAC_GROUP = "rbac.authorization.k8s.io"


def store(name: str, authz: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{G}/{V}",
        "kind": "FeatureStore",
        "metadata": {"name": name},
        "spec": {"project": name, "authz": {"type": authz}, "featureRepo": {"configMap": {"name": "repo"}}},
    }


def token_review(control_plane, token: str) -> int:
    """HTTP status of a real TokenReview (of its own token) made with ``token``."""
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
    try:
        answer = control_plane.request("POST", "/apis/authentication.k8s.io/v1/tokenreviews", body, token=token)
    except urllib.error.HTTPError as err:
        return err.code
    assert answer["status"]["authenticated"] is True
    return 201


def refused(call) -> int:
    with pytest.raises(ApiException) as exc:
        call()
    return exc.value.status


def test_authz_kubernetes_under_chart_serviceaccount(
    control_plane, kube_api, helm_bin, release, store_namespace, tmp_path
):
    ns, name, operator_user = release.namespace, release.name, release.user
    binding_name, role_name = name + TOKEN_REVIEWERS, name + TOKEN_REVIEWER
    env = release.env()
    assert env["FSO_TOKEN_REVIEWERS_BINDING"] == binding_name
    rbac, core = client.RbacAuthorizationV1Api(kube_api), client.CoreV1Api(kube_api)
    custom = client.CustomObjectsApi(kube_api)

    def subjects() -> list[tuple[str, str]]:
        b = rbac.read_cluster_role_binding(binding_name)
        return [(s.namespace, s.name) for s in b.subjects or []]

    def may_review(account: str) -> bool:
        return can(
            kube_api,
            f"system:serviceaccount:{store_namespace}:{account}",
            "create",
            "tokenreviews",
            "authentication.k8s.io",
        )

    # Installed with no subjects: nobody's tokens may be reviewed yet.
    assert subjects() == [] and not may_review("guarded-feast")

    core.create_namespaced_config_map(
        store_namespace,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="repo"), data={"features.py": "# feature definitions\n"}),
    )
    custom.create_namespaced_custom_object(G, V, store_namespace, P, store("guarded", "kubernetes"))
    custom.create_namespaced_custom_object(G, V, store_namespace, P, store("open", "none"))
    with chart_operator(release, tmp_path, env) as proc:
        # Its Roles and RoleBindings are applied under the chart's RBAC, and the store gets Ready.
        explain(
            proc,
            lambda: (
                {
                    r.metadata.name
                    for r in rbac.list_namespaced_role(store_namespace, label_selector=f"{OWNER_LABEL}=guarded").items
                }
                == {"guarded-feast-reader", "guarded-feast-writer", "guarded-feast-role-lookup"}
            ),
            timeout=120,
            interval=0.5,
            what=f"authz Roles of guarded (log: {proc.log_path})",
        )
        kubelet = FakeKubelet(kube_api)

        def ready(fs: str) -> bool:
            kubelet.run(store_namespace, f"{OWNER_LABEL}={fs},app.kubernetes.io/component!=feature-repo")
            kubelet.run(
                store_namespace, f"{OWNER_LABEL}={fs},app.kubernetes.io/component=feature-repo", phase="Succeeded"
            )
            body = custom.get_namespaced_custom_object(G, V, store_namespace, P, fs)
            return (body.get("status") or {}).get("phase") == "Ready"

        explain(proc, lambda: ready("guarded"), timeout=120, interval=1, what=f"guarded Ready (log: {proc.log_path})")
        fs = custom.get_namespaced_custom_object(G, V, store_namespace, P, "guarded")
        synced = {c["type"]: c for c in fs["status"]["conditions"]}["Synced"]
        assert synced["status"] == "True", synced
        assert (
            len(rbac.list_namespaced_role_binding(store_namespace, label_selector=f"{OWNER_LABEL}=guarded").items) == 3
        )

        # The binding: guarded's ServiceAccount only (open has authz none).
        explain(
            proc,
            lambda: subjects() == [(store_namespace, "guarded-feast")],
            timeout=30,
            interval=0.2,
            what="guarded-feast in the token reviewers binding",
        )
        assert may_review("guarded-feast") and not may_review("open-feast")
        token = control_plane.service_account_token(store_namespace, "guarded-feast")
        assert token_review(control_plane, token) == 201  # a real TokenReview with its real token
        open_token = control_plane.service_account_token(store_namespace, "open-feast")
        assert token_review(control_plane, open_token) == 403

        # `helm upgrade` leaves the subjects alone (the template never sets them).
        helm(
            helm_bin,
            "upgrade",
            name,
            str(CHART),
            "-n",
            ns,
            *release.values,
            "--set",
            "resyncSeconds=11",
            kubeconfig=control_plane.kubeconfig,
        )
        assert subjects() == [(store_namespace, "guarded-feast")]

        # A namespace admin (Kubeflow profile owner) cannot add itself, nor bind anything cluster-wide.
        core.create_namespaced_service_account(
            store_namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="owner"))
        )
        me = [{"kind": "ServiceAccount", "name": "owner", "namespace": store_namespace}]
        rbac.create_namespaced_role_binding(
            store_namespace,
            {
                "metadata": {"name": "owner-admin"},
                "subjects": me,
                "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": "admin"},
            },
        )
        owner = control_plane.service_account_kubeconfig(store_namespace, "owner", str(tmp_path / "owner.kubeconfig"))
        owner_api = kube_config.new_client_from_config(config_file=owner)
        try:
            owner_rbac = client.RbacAuthorizationV1Api(owner_api)
            assert refused(lambda: owner_rbac.patch_cluster_role_binding(binding_name, {"subjects": me})) == 403
            assert (
                refused(
                    lambda: owner_rbac.create_cluster_role_binding(
                        {
                            "metadata": {"name": f"{store_namespace}-review"},
                            "subjects": me,
                            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role_name},
                        }
                    )
                )
                == 403
            )
            # its own namespace: the store's Roles are not a way to the token reviewer ClusterRole either
            assert (
                refused(
                    lambda: owner_rbac.create_namespaced_role_binding(
                        store_namespace,
                        {
                            "metadata": {"name": "review"},
                            "subjects": me,
                            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role_name},
                        },
                    )
                )
                == 403
            )
        finally:
            owner_api.close()
        assert subjects() == [(store_namespace, "guarded-feast")]

        # The operator's own token: this one binding and ClusterRole, nothing else.
        for verb, resource, allowed in [
            ("bind", "cluster-admin", False),
            ("bind", "admin", False),
            ("bind", role_name, True),
            ("escalate", role_name, False),
        ]:
            assert can(kube_api, operator_user, verb, "clusterroles", RBAC_GROUP, name=resource) is allowed, (
                verb,
                resource,
            )
        for verb, resource, allowed in [
            ("patch", binding_name, True),
            ("get", binding_name, True),
            ("patch", f"{name}-featurestore-operator", False),
            ("update", binding_name, False),
            ("delete", binding_name, False),
            ("create", "", False),
        ]:
            assert can(kube_api, operator_user, verb, "clusterrolebindings", RBAC_GROUP, name=resource) is allowed, (
                verb,
                resource,
            )
        op_api = kube_config.new_client_from_config(config_file=release.kubeconfig(tmp_path / "sa.kubeconfig"))
        try:
            op_rbac = client.RbacAuthorizationV1Api(op_api)
            assert (
                refused(lambda: op_rbac.patch_cluster_role_binding(f"{name}-featurestore-operator", {"subjects": me}))
                == 403
            )
            assert (
                refused(
                    lambda: op_rbac.create_cluster_role_binding(
                        {
                            "metadata": {"name": f"{store_namespace}-steal"},
                            "subjects": me,
                            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": "view"},
                        }
                    )
                )
                == 403
            )
            # it may write RoleBindings now, but not to a role it does not hold (escalation check)
            for role in ("view", "edit", "cluster-admin"):
                steal = {
                    "metadata": {"name": f"steal-{role}"},
                    "subjects": me,
                    "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
                }
                assert refused(lambda b=steal: op_rbac.create_namespaced_role_binding(store_namespace, b)) == 403, role
        finally:
            op_api.close()

        # open switches to kubernetes: its account joins (sorted); guarded deleted: its account leaves.
        custom.patch_namespaced_custom_object(
            G, V, store_namespace, P, "open", {"spec": {"authz": {"type": "kubernetes"}}}
        )
        started = time.monotonic()
        # woken by the FeatureStore watch: well before the periodic look (resyncSeconds=10)
        explain(
            proc,
            lambda: subjects() == [(store_namespace, "guarded-feast"), (store_namespace, "open-feast")],
            timeout=8,
            interval=0.1,
            what="open-feast joins the binding",
        )
        joined = time.monotonic() - started
        custom.delete_namespaced_custom_object(G, V, store_namespace, P, "guarded")
        started = time.monotonic()
        explain(
            proc,
            lambda: subjects() == [(store_namespace, "open-feast")],
            timeout=30,
            interval=0.1,
            what="guarded-feast leaves the binding",
        )
        left = time.monotonic() - started
        assert not may_review("guarded-feast") and may_review("open-feast")
        custom.delete_namespaced_custom_object(G, V, store_namespace, P, "open")
        explain(proc, lambda: subjects() == [], timeout=30, interval=0.1, what="the binding emptied")
        print(f"binding updated {joined:.2f}s after a store switched to authz kubernetes, {left:.2f}s after a deletion")

        # A hand-added subject is removed at the next store event (the operator owns the subjects).
        rbac.patch_cluster_role_binding(binding_name, {"subjects": me})
        custom.create_namespaced_custom_object(G, V, store_namespace, P, store("later", "none"))
        explain(proc, lambda: subjects() == [], timeout=30, interval=0.1, what="a foreign subject removed")
        assert proc.alive(), "operator exited"


def test_authz_kubernetes_with_the_grant_left_to_the_admin(
    control_plane, kube_api, helm_bin, namespace, store_namespace, tmp_path
):
    """authz.kubernetes.enabled=false: no token reviewer ClusterRole/binding and no right on them; the
    store's Roles still apply under the chart's RBAC, and its FeatureServer condition names the value."""
    values = ["--set", "resyncSeconds=10", "--set", "authz.kubernetes.enabled=false", *SESSION_CRD, *NO_WEBHOOK]
    with installed(control_plane, helm_bin, namespace, *values, prefix="fso-nr") as rel:
        name, docs, user = rel.name, rel.docs, rel.user
        assert not [d for d in docs if TOKEN_REVIEWER in d["metadata"]["name"]]
        assert "FSO_TOKEN_REVIEWERS_BINDING" not in rel.env()
        assert not can(kube_api, user, "bind", "clusterroles", RBAC_GROUP, name=name + TOKEN_REVIEWER)
        assert not can(kube_api, user, "patch", "clusterrolebindings", RBAC_GROUP, name=name + TOKEN_REVIEWERS)
        client.CoreV1Api(kube_api).create_namespaced_config_map(
            store_namespace,
            client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name="repo"), data={"features.py": "# feature definitions\n"}
            ),
        )
        custom = client.CustomObjectsApi(kube_api)
        custom.create_namespaced_custom_object(G, V, store_namespace, P, store("manual", "kubernetes"))
        with chart_operator(rel, tmp_path) as proc:
            kubelet = FakeKubelet(kube_api)

            def server_condition() -> dict[str, Any] | None:
                kubelet.run(store_namespace, f"{OWNER_LABEL}=manual,app.kubernetes.io/component!=feature-repo")
                # the servers come once the apply Job has succeeded
                kubelet.run(
                    store_namespace, f"{OWNER_LABEL}=manual,app.kubernetes.io/component=feature-repo", phase="Succeeded"
                )
                fs = custom.get_namespaced_custom_object(G, V, store_namespace, P, "manual")
                conds = {c["type"]: c for c in (fs.get("status") or {}).get("conditions", [])}
                return conds.get("FeatureServer") if conds.get("FeatureServer", {}).get("status") == "True" else None

            cond = explain(
                proc, server_condition, timeout=120, interval=1, what=f"FeatureServer True (log: {proc.log_path})"
            )
            assert (
                "authz.kubernetes.enabled" in cond["message"] and f"{store_namespace}/manual-feast" in cond["message"]
            )
            assert {
                r.metadata.name
                for r in client.RbacAuthorizationV1Api(kube_api)
                .list_namespaced_role(store_namespace, label_selector=f"{OWNER_LABEL}=manual")
                .items
            } >= {"manual-feast-writer"}
