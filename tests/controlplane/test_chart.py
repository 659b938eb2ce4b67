"""The Helm chart (charts/featurestore-operator) against the real helm binary and the real control plane.

* `helm lint --strict` / `helm template` for several value sets; every rendered built-in object is
  validated with kubernetes-validate against a current Kubernetes schema, invalid values are
  refused by values.schema.json, and the pod/RBAC hardening the chart promises is asserted.
* `helm install` into the test control plane, then the REAL operator runs under the chart's
  ServiceAccount token (not admin) with the chart's own environment: it creates every child of
  a FeatureStore, writes status, posts Events, prunes, reaches Ready - without a single 403 in
  its log. That proves the RBAC is sufficient; SubjectAccessReviews and real requests prove it is
  least privilege (no nodes, pod reads beyond list, pods/exec, RBAC writes, impersonation, FeatureStore updates...).
* The same for the other RBAC shapes: leader election (two replicas, one Lease),
  Kubeflow profile onboarding, and watchNamespaces (Roles per namespace).
* The apiserver facts the rules rely on (server-side apply needs create+patch; blockOwnerDeletion
  needs update on featurestores/finalizers under OwnerReferencesPermissionEnforcement), recorded
  on a second control plane with that admission plugin.
"""

from __future__ import annotations

import json
import urllib.request
from contextlib import ExitStack
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes import client
from kubernetes import config as kube_config
from kubernetes.client.rest import ApiException

from tests.support import webhook as chart_webhook
from tests.support.chart_values import VALUE_SETS
from tests.support.helm import (
    CHART,
    NO_WEBHOOK,
    ROOT,
    SESSION_CRD,
    TOKEN_REVIEWER,
    TOKEN_REVIEWERS,
    chart_operator,
    deployment_env,
    explain,
    find,
    helm,
    installed,
    render,
)
from tests.support.kube import OWNER_LABEL, G, P, V, gone
from tests.support.kubelet import FakeKubelet
from tests.support.operator_process import OperatorProcess
from tests.support.rbac import can
from tests.support.waiting import wait_for

#: the newest Kubernetes schema kubernetes-validate ships (the chart targets 1.20 .. current)
K8S_SCHEMA = kubernetes_validate.utils.latest_version()


# --------------------------------------------------------------------------- helpers


def rules_of(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rules granted to the operator (not the user-facing aggregated roles)."""
    return [
        r
        for d in docs
        if d["kind"] in ("ClusterRole", "Role")
        and not d["metadata"]["name"].endswith(("-edit", "-view", TOKEN_REVIEWER))
        for r in d.get("rules", [])
    ]


def token_reviewer_rules(release: str = "fso") -> list[dict[str, Any]]:
    """The operator's rules on the token reviewers binding and its ClusterRole: exactly these names."""
    return [
        {
            "apiGroups": ["rbac.authorization.k8s.io"],
            "resources": ["clusterrolebindings"],
            "resourceNames": [release + TOKEN_REVIEWERS],
            "verbs": ["get", "patch"],
        },
        {
            "apiGroups": ["rbac.authorization.k8s.io"],
            "resources": ["clusterroles"],
            "resourceNames": [release + TOKEN_REVIEWER],
            "verbs": ["bind"],
        },
    ]


def verbs(rules: list[dict[str, Any]], group: str, resource: str) -> set[str]:
    return {v for r in rules if group in r["apiGroups"] and resource in r["resources"] for v in r["verbs"]}


# --------------------------------------------------------------------------- lint / template


def test_helm_lint(helm_bin):
    for name, values in VALUE_SETS.items():
        out = helm(helm_bin, "lint", "--strict", str(CHART), *values)
        assert "0 chart(s) failed" in out.stdout, (name, out.stdout)


def test_helm_rejects_invalid_values(helm_bin):
    for values, message in [
        (["--set", "defaultProvider=aws"], "defaultProvider"),
        (["--set", "replicaCount=0"], "replicaCount"),
        (["--set", "resyncSeconds=5"], "resyncSeconds"),
        (["--set", "watchNamespaces={Not_A_Namespace}"], "watchNamespaces"),
        (["--set", "gcp.network=default"], "network"),
        (["--set", "serviceAccount.gcpServiceAccount=not-an-email"], "gcpServiceAccount"),
    ]:
        out = helm(helm_bin, "template", "fso", str(CHART), *values, check=False)
        assert out.returncode != 0 and message in out.stderr, (values, out.stderr)


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_helm_template_is_valid_and_hardened(helm_bin, value_set):
    docs = render(helm_bin, *VALUE_SETS[value_set], crds=True)
    builtin = 0
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, K8S_SCHEMA, strict=True)
            builtin += 1
        except kubernetes_validate.utils.SchemaNotFoundError:
            assert doc["apiVersion"] == "cert-manager.io/v1", f"no schema for {doc['apiVersion']} {doc['kind']}"
        except kubernetes_validate.utils.ValidationError as err:
            pytest.fail(
                f"{doc['kind']}/{doc['metadata']['name']} invalid for Kubernetes {K8S_SCHEMA}: {err.message} "
                f"at {list(err.path)}",
                pytrace=False,
            )
    assert builtin >= 6
    crds = {d["metadata"]["name"] for d in find(docs, "CustomResourceDefinition")}
    assert crds == {"featurestores.featurestore.kubeflow.org"}

    [dep] = find(docs, "Deployment")
    spec = dep["spec"]
    pod = spec["template"]["spec"]
    [container] = pod["containers"]
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    ha = "replicaCount=2" in VALUE_SETS[value_set] or "leaderElection.enabled=true" in VALUE_SETS[value_set]
    # non-root, read-only root with a scratch /tmp, no capabilities, seccomp
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}} in pod["volumes"]
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    # probes and ports match the operator's configuration
    env = deployment_env(dep)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {
        "health": int(env["FSO_HEALTH_PORT"]),
        "metrics": int(env["FSO_METRICS_PORT"]),
        "webhook": int(env["FSO_WEBHOOK_PORT"]),
    }
    # the webhook: a Service the API server calls, the operator's admin policy from values
    [svc] = [d for d in find(docs, "Service") if d["metadata"]["name"].endswith("-webhook")]
    assert env["FSO_WEBHOOK_SERVICE"] == f"{svc['metadata']['namespace']}/{svc['metadata']['name']}"
    assert json.loads(env["FSO_POLICY"])["excludedNamespaces"] == ["kube-system", "kube-public", "kube-node-lease"]
    # the ValidatingWebhookConfiguration is the chart's (the operator never creates one): CREATE and
    # UPDATE of featurestores only (DELETE never reaches it), no side effects, at the chart's Service,
    # which selects every operator pod (leader or not)
    [vwc] = find(docs, "ValidatingWebhookConfiguration")
    [hook] = vwc["webhooks"]
    assert hook["failurePolicy"] == "Fail" and hook["sideEffects"] == "None" and hook["matchPolicy"] == "Equivalent"
    assert hook["rules"] == [
        {
            "apiGroups": [G],
            "apiVersions": ["*"],
            "operations": ["CREATE", "UPDATE"],
            "resources": ["featurestores"],
            "scope": "Namespaced",
        }
    ]
    assert hook["clientConfig"]["service"] == {
        "namespace": svc["metadata"]["namespace"],
        "name": svc["metadata"]["name"],
        "port": 443,
        "path": "/validate",
    }
    assert "caBundle" not in hook["clientConfig"]
    assert svc["spec"]["selector"] == spec["selector"]["matchLabels"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    webhook_rules = [
        r
        for r in rules_of(docs)
        if set(r["resources"]) & {"validatingwebhookconfigurations", "mutatingwebhookconfigurations"}
    ]
    if "webhook.certManager.enabled=true" in VALUE_SETS[value_set]:
        [cert] = find(docs, "Certificate")
        assert f"{svc['metadata']['name']}.{svc['metadata']['namespace']}.svc" in cert["spec"]["dnsNames"]
        assert env["FSO_WEBHOOK_CERT_DIR"] and cert["spec"]["secretName"] in json.dumps(pod["volumes"])
        assert chart_policy(env).max_replicas == 5
        # cert-manager's CA injector writes the caBundle: the operator gets no right on any configuration
        assert vwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == (
            f"{cert['metadata']['namespace']}/{cert['metadata']['name']}"
        )
        assert webhook_rules == [] and "FSO_WEBHOOK_CONFIGURATION" not in env
    else:
        # the operator writes the caBundle of that ONE configuration, and keeps its certificate in ONE Secret
        assert webhook_rules == [
            {
                "apiGroups": ["admissionregistration.k8s.io"],
                "resources": ["validatingwebhookconfigurations"],
                "resourceNames": [vwc["metadata"]["name"]],
                "verbs": ["get", "patch"],
            }
        ]
        assert env["FSO_WEBHOOK_CONFIGURATION"] == vwc["metadata"]["name"]
        [secret] = find(docs, "Secret")
        assert env["FSO_WEBHOOK_SECRET"] == f"{secret['metadata']['namespace']}/{secret['metadata']['name']}"
        [role] = [r for r in find(docs, "Role") if r["metadata"]["name"].endswith("-webhook-certificate")]
        assert role["metadata"]["namespace"] == secret["metadata"]["namespace"]
        assert role["rules"] == [
            {
                "apiGroups": [""],
                "resources": ["secrets"],
                "resourceNames": [secret["metadata"]["name"]],
                "verbs": ["get", "patch"],
            }
        ]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    # single replica: standalone + Recreate; HA: leader election on a Lease + RollingUpdate
    election_roles = [r for r in find(docs, "Role") if r["metadata"]["name"].endswith("-leader-election")]
    webhook_roles = [r for r in find(docs, "Role") if r["metadata"]["name"].endswith("-webhook-certificate")]
    # clean-up records (reconcile/records.py): in the release namespace, which tenants cannot write;
    # ConfigMaps list/create/delete there and nothing else
    [records_role] = [r for r in find(docs, "Role") if r["metadata"]["name"].endswith("-cleanup-records")]
    assert records_role["rules"] == [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list", "create", "delete"]}
    ]
    assert env["FSO_OPERATOR_NAMESPACE"] == records_role["metadata"]["namespace"] == svc["metadata"]["namespace"]
    if ha:
        assert container["args"] == ["--leader-election", dep["metadata"]["name"]]
        assert spec["strategy"]["type"] == "RollingUpdate"
        [role] = election_roles
        assert role["rules"] == [
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]}
        ]
        assert env["FSO_LEADER_ELECTION_SECONDS"] == str(values["leaderElection"]["leaseSeconds"])
    else:
        assert container["args"] == ["--standalone"] and spec["strategy"] == {"type": "Recreate"}
        assert not election_roles
    # every FSO_* variable the chart sets is a real operator setting (or the onboarding placeholder)
    from featurestore_operator.api import OperatorConfig

    fields = {f"FSO_{n.upper()}" for n in OperatorConfig.model_fields}
    assert {k for k in env if k.startswith("FSO_")} - fields <= {"FSO_ONBOARDING_ENABLED", "FSO_ONBOARDING_TEMPLATE"}
    OperatorConfig.model_validate(
        {k[4:].lower(): v for k, v in env.items() if k[4:].lower() in OperatorConfig.model_fields}
    )

    # RBAC: least privilege
    rules = rules_of(docs)
    never = {"pods/exec", "pods/log", "nodes", "clusterroles", "clusterrolebindings", "serviceaccounts/token"}
    # the one exception: the token reviewers binding and its ClusterRole, by name (authz kubernetes)
    token_rules = token_reviewer_rules()
    assert all(r in rules for r in token_rules)
    for r in (r for r in rules if r not in token_rules):
        assert "*" not in r["verbs"] and "*" not in r["resources"] and "*" not in r["apiGroups"], r
        assert not {"escalate", "bind", "impersonate", "deletecollection"} & set(r["verbs"]), r
        assert not never & set(r["resources"]), r
        if "pods" in r["resources"]:  # feature view freshness: the finished Job's pods, list only
            assert r["resources"] == ["pods"] and r["verbs"] == ["list"], r
        if "update" in r["verbs"]:
            assert r["resources"] in (["featurestores/finalizers"], ["leases"]), r
    # Roles/RoleBindings of spec.authz kubernetes (and onboarding): always written, no escalate/bind
    assert verbs(rules, "rbac.authorization.k8s.io", "roles") == {"list", "watch", "create", "patch", "delete"}
    [reviewer] = find(docs, "ClusterRole", "fso" + TOKEN_REVIEWER)
    assert reviewer["rules"] == [
        {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]}
    ]
    [binding] = find(docs, "ClusterRoleBinding", "fso" + TOKEN_REVIEWERS)
    assert "subjects" not in binding and binding["roleRef"]["name"] == "fso" + TOKEN_REVIEWER
    assert env["FSO_TOKEN_REVIEWERS_BINDING"] == "fso" + TOKEN_REVIEWERS
    assert verbs(rules, "apps", "deployments") == {"list", "watch", "create", "patch", "delete"}
    assert verbs(rules, "", "events") == {"create"}
    assert verbs(rules, G, "featurestores/status") == {"patch"}
    if "watchNamespaces={team-a,team-b}" in VALUE_SETS[value_set]:
        roles = [r for r in find(docs, "Role") if r not in [*election_roles, *webhook_roles, records_role]]
        assert {r["metadata"]["namespace"] for r in roles} == {"team-a", "team-b"}
        [cluster_role] = [d for d in find(docs, "ClusterRole") if d["metadata"]["name"] == dep["metadata"]["name"]]
        granted = {res for r in cluster_role["rules"] for res in r["resources"]}
        webhook_configs = ["validatingwebhookconfigurations"]
        assert granted == {
            "customresourcedefinitions",
            "namespaces",
            "serviceaccounts",  # get default-editor by name (the notebooks' GSA, backends/notebook_access.py)
            "clusterrolebindings",
            "clusterroles",
            *webhook_configs,
        }
        # namespaced mode: no cluster-wide writes but the caBundle of the webhook configuration (that
        # one name) and the token reviewers binding (by name)
        writes = [
            r for r in cluster_role["rules"] if set(r["verbs"]) - {"get", "list", "watch"} and r not in token_rules
        ]
        assert all(r["resources"] == webhook_configs for r in writes), writes
        assert [r.get("resourceNames") for r in writes] == [[vwc["metadata"]["name"]]]
        assert env["FSO_NAMESPACES"] == "team-a,team-b"
        [sa] = find(docs, "ServiceAccount")
        assert sa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"].startswith("featurestore-operator@")
        assert container["image"] == "featurestore-operator@sha256:" + "a" * 64


# --------------------------------------------------------------------------- install + run under the SA


def chart_policy(env: dict[str, str]) -> Any:
    from featurestore_operator.api import OperatorConfig

    return OperatorConfig(policy=env["FSO_POLICY"]).policy


@pytest.mark.parametrize("release", [{"webhook": True}], indirect=True)
def test_install_and_operator_runs_under_chart_serviceaccount(
    control_plane, kube_api, release, store_namespace, tmp_path
):
    ns, docs, user = release.namespace, release.docs, release.user
    # The release really is in the cluster.
    client.AppsV1Api(kube_api).read_namespaced_deployment(release.name + "-featurestore-operator", ns)

    env = release.env(webhook=True)
    assert env["FSO_RESYNC_SECONDS"] == "10"

    # A feature repo ConfigMap (read with `get`), then the store: default provider (local).
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_config_map(
        store_namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="demo-repo"), data={"features.py": "# feature definitions\n"}
        ),
    )
    crd_api = client.CustomObjectsApi(kube_api)

    with chart_operator(release, tmp_path, env=env) as proc:
        # The chart's webhook, its caBundle written by the operator under the chart's RBAC (from the
        # certificate it keeps in the chart's Secret), refuses what the policy forbids.
        [vwc] = find(docs, "ValidatingWebhookConfiguration")
        chart_webhook.repoint(kube_api, vwc["metadata"]["name"], f"https://127.0.0.1:{env['FSO_WEBHOOK_PORT']}")
        explain(
            proc,
            lambda: chart_webhook.ca_bundle(kube_api, vwc["metadata"]["name"]),
            timeout=60,
            interval=0.5,
            what="the caBundle of the chart's ValidatingWebhookConfiguration",
        )
        with pytest.raises(ApiException) as refused:
            crd_api.create_namespaced_custom_object(
                G,
                V,
                store_namespace,
                P,
                {
                    "apiVersion": f"{G}/{V}",
                    "kind": "FeatureStore",
                    "metadata": {"name": "big"},
                    "spec": {"project": "demo", "featureServer": {"replicas": 100}},
                },
            )
        assert "maxReplicas" in str(refused.value.body)
        crd_api.create_namespaced_custom_object(
            G,
            V,
            store_namespace,
            P,
            {
                "apiVersion": f"{G}/{V}",
                "kind": "FeatureStore",
                "metadata": {"name": "demo"},
                "spec": {"project": "demo", "featureRepo": {"configMap": {"name": "demo-repo"}}},
            },
        )
        apps, batch = client.AppsV1Api(kube_api), client.BatchV1Api(kube_api)

        def children() -> bool:  # the servers come once the apply Job has succeeded (below)
            core.read_namespaced_config_map("demo-feast-config", store_namespace)
            core.read_namespaced_secret("demo-online-store", store_namespace)
            apps.read_namespaced_stateful_set("demo-redis", store_namespace)
            return bool(batch.list_namespaced_job(store_namespace, label_selector=f"{OWNER_LABEL}=demo").items)

        explain(proc, children, timeout=90, interval=0.5, what=f"children of demo (log: {proc.log_path})")
        # Optional CRDs are installed in the test cluster: PodDefault and AuthorizationPolicy too.
        custom = client.CustomObjectsApi(kube_api)
        assert custom.list_namespaced_custom_object("kubeflow.org", "v1alpha1", store_namespace, "poddefaults")["items"]
        assert custom.list_namespaced_custom_object(
            "security.istio.io", "v1beta1", store_namespace, "authorizationpolicies"
        )["items"]

        def status() -> dict[str, Any] | None:
            fs = crd_api.get_namespaced_custom_object(G, V, store_namespace, P, "demo")
            st = fs.get("status") or {}
            return st if st.get("observedGeneration") == fs["metadata"]["generation"] and st.get("phase") else None

        st = explain(proc, status, timeout=60, interval=0.5, what="status written by the operator")
        assert {c["type"] for c in st["conditions"]} >= {"Ready", "OnlineStore", "FeatureServer"}

        # Workloads run (fake kubelet): the operator sees their status through its watches and
        # reports Ready (the apply Job succeeds too).
        kubelet = FakeKubelet(kube_api)

        def ready() -> bool:
            kubelet.run(store_namespace, f"{OWNER_LABEL}=demo,app.kubernetes.io/component!=feature-repo")
            kubelet.run(
                store_namespace, f"{OWNER_LABEL}=demo,app.kubernetes.io/component=feature-repo", phase="Succeeded"
            )
            fs = crd_api.get_namespaced_custom_object(G, V, store_namespace, P, "demo")
            return (fs.get("status") or {}).get("phase") == "Ready"

        explain(proc, ready, timeout=90, interval=1, what=f"phase Ready (log: {proc.log_path})")
        apps.read_namespaced_deployment("demo-feature-server", store_namespace)
        apps.read_namespaced_deployment("demo-registry-server", store_namespace)

        # Events are posted under the SA (create events): the store's Ready, reported as the operator.
        def ready_event():
            return [
                e
                for e in core.list_namespaced_event(
                    store_namespace, field_selector="involvedObject.name=demo,involvedObject.kind=FeatureStore"
                ).items
                if (e.type, e.reason) == ("Normal", "Ready")
            ]

        explain(proc, lambda: len(ready_event()) == 1, timeout=60, what="one Ready Event on the FeatureStore")
        assert all(e.source.component == "featurestore-operator" for e in ready_event())

        # Pruning under the SA: turning the registry server off deletes its Deployment.
        crd_api.patch_namespaced_custom_object(
            G, V, store_namespace, P, "demo", {"spec": {"registry": {"server": {"enabled": False}}}}
        )

        explain(
            proc,
            gone(lambda: apps.read_namespaced_deployment("demo-registry-server", store_namespace)),
            timeout=90,
            interval=0.5,
            what="registry server pruned",
        )

        # Deletion: no cloud resources, so no finalizer; garbage collection removes the children.
        crd_api.delete_namespaced_custom_object(G, V, store_namespace, P, "demo")
        wait_for(
            (
                lambda: (
                    not apps.list_namespaced_deployment(store_namespace, label_selector=f"{OWNER_LABEL}=demo").items
                    and not core.list_namespaced_config_map(store_namespace, label_selector=f"{OWNER_LABEL}=demo").items
                )
            ),
            timeout=60,
            interval=0.5,
            what="children garbage-collected",
        )
        # the operator saw the deletion (it stopped counting the store) and is still running
        wait_for(lambda: proc.metric("featurestore_stores") == 0, timeout=60, what="the deletion processed")
        assert proc.alive(), "operator exited"
    assert "featurestore-operator started" in proc.log_text()

    # Least privilege: what the SA must NOT be able to do (SubjectAccessReview as admin) ...
    denied = [
        ("delete", "nodes", "", None, None),
        ("get", "nodes", "", None, None),
        ("create", "pods", "", store_namespace, "exec"),
        ("get", "pods", "", store_namespace, "exec"),
        ("get", "pods", "", store_namespace, "log"),
        ("create", "pods", "", store_namespace, None),
        # RoleBindings it may create (authz kubernetes), but RBAC's escalation check refuses any to a
        # role it does not hold (the cluster-admin request below); it binds no ClusterRole by itself
        ("bind", "clusterroles", "rbac.authorization.k8s.io", None, None),
        ("create", "clusterrolebindings", "rbac.authorization.k8s.io", None, None),
        ("patch", "clusterrolebindings", "rbac.authorization.k8s.io", None, None),
        ("create", "clusterroles", "rbac.authorization.k8s.io", None, None),
        ("escalate", "clusterroles", "rbac.authorization.k8s.io", None, None),
        ("impersonate", "users", "", None, None),
        ("delete", "namespaces", "", None, None),
        ("list", "namespaces", "", None, None),  # cluster-wide kopf does not need it
        ("update", "featurestores", G, store_namespace, None),
        ("delete", "featurestores", G, store_namespace, None),
        ("create", "featurestores", G, store_namespace, None),
        ("update", "deployments", "apps", store_namespace, None),
        ("update", "secrets", "", store_namespace, None),
        ("patch", "events", "", store_namespace, None),
        ("create", "customresourcedefinitions", "apiextensions.k8s.io", None, None),
        # the webhook configuration is the chart's: never created by the operator, mutating ones untouched
        ("create", "validatingwebhookconfigurations", "admissionregistration.k8s.io", None, None),
        ("create", "mutatingwebhookconfigurations", "admissionregistration.k8s.io", None, None),
        ("patch", "mutatingwebhookconfigurations", "admissionregistration.k8s.io", None, None),
        (
            "patch",
            "validatingwebhookconfigurations",
            "admissionregistration.k8s.io",
            None,
            None,
        ),  # only its own, by name
        ("update", "leases", "coordination.k8s.io", ns, None),  # single replica: no leader election rights
    ]
    allowed = [d for d in denied if can(kube_api, user, d[0], d[1], d[2], d[3], subresource=d[4])]
    assert not allowed, f"{user} may do more than it needs: {allowed}"
    for verb, resource, group, sub in [
        ("patch", "deployments", "apps", None),
        ("create", "deployments", "apps", None),
        ("update", "featurestores", G, "finalizers"),
        ("patch", "featurestores", G, "status"),
        ("get", "secrets", "", None),
        ("create", "events", "", None),
    ]:
        assert can(kube_api, user, verb, resource, group, store_namespace, subresource=sub), (verb, resource, sub)

    # ... and real requests with its token are refused by the apiserver.
    sa_api = kube_config.new_client_from_config(config_file=release.kubeconfig(tmp_path / "sa.kubeconfig"))
    try:
        for call in (
            lambda: client.CoreV1Api(sa_api).list_node(),
            lambda: client.CoreV1Api(sa_api).delete_node("any-node"),
            lambda: client.CoreV1Api(sa_api).read_namespaced_pod_log("any-pod", store_namespace),
            lambda: client.RbacAuthorizationV1Api(sa_api).create_namespaced_role_binding(
                store_namespace,
                {
                    "metadata": {"name": "steal"},
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "ClusterRole",
                        "name": "cluster-admin",
                    },
                    "subjects": [{"kind": "ServiceAccount", "name": release.service_account, "namespace": ns}],
                },
            ),
        ):
            with pytest.raises(ApiException) as exc:
                call()
            assert exc.value.status == 403
    finally:
        sa_api.close()


# --------------------------------------------------------------------------- leader election under the SA


def test_leader_election_under_chart_serviceaccount(
    control_plane, kube_api, helm_bin, namespace, store_namespace, tmp_path
):
    """replicaCount=2: two replicas under the chart's SA elect one with the chart's Lease RBAC
    (get/create/update in the release namespace suffice); only the leader reconciles; a clean exit
    hands the Lease over at once, so the stand-by takes over without waiting for it to expire."""
    values = ["--set", "replicaCount=2", *SESSION_CRD, *NO_WEBHOOK, "--set", "resyncSeconds=10"]
    values += ["--set", "leaderElection.leaseSeconds=60"]
    with installed(control_plane, helm_bin, namespace, *values, prefix="fso-ha") as rel, ExitStack() as operators:
        name, docs = rel.name, rel.docs
        [dep] = find(docs, "Deployment")
        args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
        lease = dep["metadata"]["name"]
        assert args == ["--leader-election", lease] and dep["spec"]["replicas"] == 2
        # the PodDisruptionBudget follows the served API (policy/v1 only from 1.21 on)
        [pdb] = find(docs, "PodDisruptionBudget")
        assert pdb["apiVersion"] == ("policy/v1beta1" if 0 < control_plane.minor < 21 else "policy/v1")
        coordination = client.CoordinationV1Api(kube_api)
        custom = client.CustomObjectsApi(kube_api)

        def holder() -> str | None:
            try:
                return coordination.read_namespaced_lease(lease, namespace).spec.holder_identity or None
            except ApiException as err:
                if err.status == 404:
                    return None
                raise

        identities = [f"{name}-replica-{i}" for i in range(2)]
        procs: list[OperatorProcess] = []
        for identity in identities:  # like the Deployment's POD_NAME/POD_NAMESPACE (downward API)
            env = {**rel.env(), "POD_NAME": identity, "POD_NAMESPACE": namespace}
            procs.append(operators.enter_context(chart_operator(rel, tmp_path, env, args=args, standalone=False)))
            wait_for(lambda: holder() is not None, timeout=30, what="a Lease holder")
        assert holder() == identities[0], "the first replica leads"
        custom.create_namespaced_custom_object(
            G,
            V,
            store_namespace,
            P,
            {"apiVersion": f"{G}/{V}", "kind": "FeatureStore", "metadata": {"name": "ha"}, "spec": {"project": "ha"}},
        )
        wait_for(
            lambda: (custom.get_namespaced_custom_object(G, V, store_namespace, P, "ha").get("status") or {}).get(
                "phase"
            ),
            timeout=60,
            interval=0.5,
            what="status written by the leader",
        )
        with urllib.request.urlopen(f"http://127.0.0.1:{procs[1].health_port}/healthz", timeout=5) as r:
            assert json.loads(r.read())["leading"] is False, "the stand-by is healthy and not acting"
        procs[0].stop()
        wait_for(lambda: holder() == identities[1], timeout=30, what="the stand-by leading (Lease handed over)")
        custom.patch_namespaced_custom_object(
            G, V, store_namespace, P, "ha", {"spec": {"featureServer": {"replicas": 2}}}
        )
        wait_for(
            lambda: (
                (f := custom.get_namespaced_custom_object(G, V, store_namespace, P, "ha"))["status"].get(
                    "observedGeneration"
                )
                == f["metadata"]["generation"]
            ),
            timeout=60,
            interval=0.5,
            what="a change reconciled by the new leader",
        )


# --------------------------------------------------------------------------- onboarding under the SA


def test_onboarding_under_chart_serviceaccount(control_plane, kube_api, helm_bin, namespace, make_namespace, tmp_path):
    """kubeflow.onboarding.enabled adds exactly the RBAC profile onboarding needs: under the SA the
    operator watches namespaces, creates the template's FeatureStore in a profile namespace, writes
    the marker ConfigMap and the client-config reader Role/RoleBinding (RBAC's escalation check
    passes: the operator holds what that Role grants)."""
    values = tmp_path / "values.yaml"
    values.write_text(
        yaml.safe_dump(
            {"resyncSeconds": 10, "kubeflow": {"onboarding": {"enabled": True, "template": {"project": "{namespace}"}}}}
        )
    )
    core = client.CoreV1Api(kube_api)
    values_file = ["-f", str(values), *SESSION_CRD, *NO_WEBHOOK]
    with (
        installed(control_plane, helm_bin, namespace, *values_file, prefix="fso-kf") as rel,
        chart_operator(rel, tmp_path) as proc,
    ):
        assert rel.env()["FSO_ONBOARDING_ENABLED"] == "true"
        profile_ns = make_namespace("kubeflow-user", labels={"app.kubernetes.io/part-of": "kubeflow-profile"})
        custom = client.CustomObjectsApi(kube_api)

        def onboarded() -> bool:
            try:
                fs = custom.get_namespaced_custom_object(G, V, profile_ns, P, "feast")
                core.read_namespaced_config_map("featurestore-onboarding", profile_ns)
            except ApiException as exc:
                if exc.status == 404:
                    return False
                raise
            return fs["spec"]["project"] == profile_ns.replace("-", "_")

        explain(proc, onboarded, timeout=60, interval=0.5, what="profile namespace onboarded")
        rbac = client.RbacAuthorizationV1Api(kube_api)
        explain(
            proc,
            lambda: (
                rbac.list_namespaced_role(profile_ns, label_selector=f"{OWNER_LABEL}=feast").items
                and rbac.list_namespaced_role_binding(profile_ns, label_selector=f"{OWNER_LABEL}=feast").items
            ),
            timeout=60,
            interval=0.5,
            what="client-config reader Role and RoleBinding",
        )


# --------------------------------------------------------------------------- the RBAC facts the rules rely on


def test_rbac_facts_behind_the_rules(control_plane, helm_bin):
    """Recorded against the real kube-apiserver, with OwnerReferencesPermissionEnforcement enabled
    (OpenShift and hardened clusters run it; a second control plane, because the session's does not):

    * server-side apply that CREATES an object needs `create` besides `patch` (403 with an empty
      reason otherwise); re-applying an existing object needs `patch` only;
    * an ownerReference with blockOwnerDeletion: true needs `update` on the owner's finalizers
      subresource - `patch` there is not enough;
    * the chart's ClusterRole satisfies both.
    """
    import urllib.error

    from tests.support.controlplane import ControlPlane

    cp = ControlPlane(
        control_plane.binaries,
        with_controller_manager=False,
        apiserver_args=["--enable-admission-plugins=OwnerReferencesPermissionEnforcement"],
    )
    cp.start()
    try:
        cp.install_crds([ROOT / "crds" / "featurestores.featurestore.kubeflow.org.yaml"])
        [chart_role] = [
            d
            for d in render(helm_bin)
            if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "fso-featurestore-operator"
        ]
        cp.request("POST", "/api/v1/namespaces", {"metadata": {"name": "t"}})
        cp.request("POST", "/api/v1/namespaces/t/serviceaccounts", {"metadata": {"name": "op"}})
        rbac = "/apis/rbac.authorization.k8s.io/v1"
        cp.request(
            "POST",
            f"{rbac}/clusterrolebindings",
            {
                "metadata": {"name": "op"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "op"},
                "subjects": [{"kind": "ServiceAccount", "name": "op", "namespace": "t"}],
            },
        )
        token = cp.service_account_token("t", "op")
        owner = cp.request(
            "POST",
            f"/apis/{G}/{V}/namespaces/t/{P}",
            {
                "apiVersion": f"{G}/{V}",
                "kind": "FeatureStore",
                "metadata": {"name": "demo"},
                "spec": {"project": "demo"},
            },
        )

        generation = iter(range(1000))

        def grant(rules: list[dict[str, Any]]) -> None:
            """Replace the SA's rules; wait until the authorizer sees them (a sentinel rule per call)."""
            sentinel = f"sentinel-{next(generation)}"
            try:
                cp.request("DELETE", f"{rbac}/clusterroles/op")
            except urllib.error.HTTPError:
                pass
            cp.request(
                "POST",
                f"{rbac}/clusterroles",
                {
                    "metadata": {"name": "op"},
                    "rules": rules
                    + [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [sentinel], "verbs": ["get"]}],
                },
            )
            review = {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": {
                    "user": "system:serviceaccount:t:op",
                    "groups": ["system:serviceaccounts"],
                    "resourceAttributes": {"verb": "get", "resource": "configmaps", "namespace": "t", "name": sentinel},
                },
            }
            wait_for(
                lambda: cp.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", review)["status"].get(
                    "allowed"
                ),
                timeout=60,
                interval=0.1,
                what="RBAC change visible to the authorizer",
            )

        def ssa(name: str, block: bool | None = None) -> int:
            body: dict[str, Any] = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name},
                "data": {"k": "v"},
            }
            if block is not None:
                body["metadata"]["ownerReferences"] = [
                    {
                        "apiVersion": f"{G}/{V}",
                        "kind": "FeatureStore",
                        "name": "demo",
                        "uid": owner["metadata"]["uid"],
                        "controller": True,
                        "blockOwnerDeletion": block,
                    }
                ]
            try:
                cp.request(
                    "PATCH",
                    f"/api/v1/namespaces/t/configmaps/{name}?fieldManager=featurestore-operator&force=true",
                    body,
                    token=token,
                    content_type="application/apply-patch+yaml",
                )
                return 200
            except urllib.error.HTTPError as err:
                return err.code

        patch_only = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["patch"]}]
        patch_create = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["patch", "create"]}]
        finalizers = {"apiGroups": [G], "resources": ["featurestores/finalizers"]}
        grant(patch_only)
        assert ssa("a") == 403, "SSA creating an object needs `create`"
        grant(patch_create)
        assert ssa("a") == 200
        grant(patch_only)
        assert ssa("a") == 200, "re-applying an existing object needs `patch` only"
        grant(patch_create)
        assert ssa("b", block=False) == 200
        assert ssa("c", block=True) == 403, "blockOwnerDeletion needs rights on the owner's finalizers"
        grant(patch_create + [{**finalizers, "verbs": ["patch"]}])
        assert ssa("c", block=True) == 403, "`patch` on finalizers is not enough"
        grant(patch_create + [{**finalizers, "verbs": ["update"]}])
        assert ssa("c", block=True) == 200
        grant(chart_role["rules"])
        assert ssa("d", block=True) == 200, "the chart's ClusterRole covers both"
    finally:
        cp.stop()


# --------------------------------------------------------------------------- namespaced mode under the SA


def test_watch_namespaces_under_chart_serviceaccount(
    control_plane, kube_api, helm_bin, namespace, store_namespace, tmp_path
):
    """watchNamespaces: Roles in the watched namespaces plus a read-only ClusterRole (CRDs,
    namespaces) are enough for a namespaced kopf operator, and it has no rights elsewhere."""
    values = [*SESSION_CRD, "--set", f"watchNamespaces={{{store_namespace}}}", *NO_WEBHOOK]
    values += ["--set", "resyncSeconds=10"]
    with (
        installed(control_plane, helm_bin, namespace, *values, prefix="fso-ns") as rel,
        chart_operator(rel, tmp_path) as proc,
    ):
        name, docs, user = rel.name, rel.docs, rel.user
        assert rel.env()["FSO_NAMESPACES"] == store_namespace
        custom = client.CustomObjectsApi(kube_api)
        custom.create_namespaced_custom_object(
            G,
            V,
            store_namespace,
            P,
            {
                "apiVersion": f"{G}/{V}",
                "kind": "FeatureStore",
                "metadata": {"name": "scoped"},
                "spec": {"project": "scoped"},
            },
        )

        def reconciled() -> bool:
            st = custom.get_namespaced_custom_object(G, V, store_namespace, P, "scoped").get("status") or {}
            client.AppsV1Api(kube_api).read_namespaced_deployment("scoped-feature-server", store_namespace)
            return bool(st.get("phase"))

        def quiet() -> bool:
            try:
                return reconciled()
            except ApiException as exc:
                if exc.status == 404:
                    return False
                raise

        explain(proc, quiet, timeout=60, interval=0.5, what="FeatureStore reconciled in the watched namespace")
        # rights inside the watched namespace only (the operator's own namespace is not watched)
        assert can(kube_api, user, "patch", "deployments", "apps", store_namespace)
        # clean-up records: ConfigMaps list/create/delete in its own (release) namespace, nothing more there
        assert all(can(kube_api, user, verb, "configmaps", "", namespace) for verb in ("list", "create", "delete"))
        for verb, resource, group, ns in [
            ("patch", "deployments", "apps", namespace),
            ("get", "secrets", "", namespace),
            ("get", "configmaps", "", namespace),
            ("patch", "configmaps", "", namespace),
            ("watch", "configmaps", "", namespace),
            ("list", "featurestores", G, None),
            ("list", "secrets", "", None),
        ]:
            assert not can(kube_api, user, verb, resource, group, ns), (verb, resource, ns or "all namespaces")
    [cluster_role] = [d for d in find(docs, "ClusterRole") if d["metadata"]["name"] == f"{name}-featurestore-operator"]
    # namespaced: cluster-wide reads only, but for the caBundle of the chart's webhook configuration
    # (get/patch by name; never create) and the cluster identity (get namespaces/kube-system by name)
    # and the token reviewers binding and its ClusterRole (by name)
    assert all(r in cluster_role["rules"] for r in token_reviewer_rules(name))
    # the cluster identity (kube-system); the watched namespaces' labels (is it a Kubeflow profile:
    # render.kubeflow); each namespace's default-editor (the notebooks' GSA: backends/notebook_access.py)
    named = {
        ("get", "namespaces"): (["kube-system"], [store_namespace]),
        ("get", "serviceaccounts"): (["default-editor"],),
    }
    for r in cluster_role["rules"]:
        extra = set(r["verbs"]) - {"list", "watch"}
        if not extra or r in token_reviewer_rules(name):
            continue
        assert "create" not in extra, r
        [verb] = extra
        assert r.get("resourceNames") in named[(verb, r["resources"][0])], r
