"""The chart's RBAC for the operator, derived from the one table of kinds (runtime/kinds.py KINDS):
every (API group, resource, verb) the chart grants the operator's ServiceAccount is one the table
names, or one of the few subresource/by-name rules below, each with its reason. A rule added to
_rbac.tpl without a use in the code fails here; so does a verb the table lists that the chart does not
grant (with every feature on). Secrets are never listed or watched, in any value set.

The run-time proof is the whole control-plane tier: its operator processes run under a token bound
only to these rendered rules (tests/support/chart_identity.py)."""

from __future__ import annotations

from typing import Any

import pytest
from featurestore_operator.runtime.kinds import KINDS

from tests.support.chart_values import EVERYTHING, VALUE_SETS
from tests.support.helm import render

Rule = tuple[str, str, str]  # (apiGroup, resource, verb)
G, RBAC, ADM = "featurestore.kubeflow.org", "rbac.authorization.k8s.io", "admissionregistration.k8s.io"

#: Rules the table cannot express (subresources, verbs on kinds the operator does not own), and why.
EXTRA: dict[Rule, str] = {
    (G, "featurestores/status", "patch"): "status is written with a merge patch (reconcile/core.py)",
    (G, "featurestores/finalizers", "update"): "blockOwnerDeletion under OwnerReferencesPermissionEnforcement",
    (G, "featurestores", "create"): "profile onboarding creates the template's FeatureStore (create-if-absent)",
    (RBAC, "clusterroles", "bind"): "by name: the two compute ClusterRoles and the token reviewer ClusterRole",
    (ADM, "validatingwebhookconfigurations", "create"): "kopf creates its webhook configuration",
    (ADM, "validatingwebhookconfigurations", "patch"): "by name: kopf keeps its webhooks (caBundle) in sync",
    (ADM, "mutatingwebhookconfigurations", "create"): "kopf manages an (empty) mutating configuration too",
    (ADM, "mutatingwebhookconfigurations", "patch"): "by name, as above",
    ("", "serviceaccounts", "get"): "by name: default-editor's Workload Identity GSA (backends/notebook_access.py)",
}
#: Rules that must name their objects (resourceNames): a broader grant would be a cluster-wide right.
BY_NAME: set[Rule] = {
    (RBAC, "clusterroles", "bind"),
    (RBAC, "clusterrolebindings", "get"),
    (RBAC, "clusterrolebindings", "patch"),
    # ("", "namespaces", "get") is cluster-wide when the operator watches every namespace: the
    # Kubeflow condition reads each store namespace's labels (by name under watchNamespaces)
    ("", "serviceaccounts", "get"),
    (ADM, "validatingwebhookconfigurations", "patch"),
    (ADM, "mutatingwebhookconfigurations", "patch"),
}
SETS = {
    **VALUE_SETS,
    "everything": EVERYTHING,
    "everything-namespaced": [*EVERYTHING, "--set", "watchNamespaces={a,b}"],
}


def table() -> set[Rule]:
    return {(k.group, k.plural, v) for k in KINDS.values() for v in k.verbs}


def operator_rules(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rules of every Role/ClusterRole bound to the chart's operator ServiceAccount."""
    [sa] = [d for d in docs if d["kind"] == "ServiceAccount"]
    me = {"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": sa["metadata"]["namespace"]}
    roles = {
        (d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): d
        for d in docs
        if d["kind"] in ("Role", "ClusterRole")
    }
    rules = []
    for b in (d for d in docs if d["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        if me in (b.get("subjects") or []):
            ref = b["roleRef"]
            ns = b["metadata"].get("namespace") if ref["kind"] == "Role" else None
            rules += roles[(ref["kind"], ns, ref["name"])]["rules"]
    assert rules, "no role bound to the operator's ServiceAccount"
    return rules


def triples(rules: list[dict[str, Any]]) -> dict[Rule, list[list[str] | None]]:
    out: dict[Rule, list[list[str] | None]] = {}
    for r in rules:
        for g in r["apiGroups"]:
            for res in r["resources"]:
                for v in r["verbs"]:
                    out.setdefault((g, res, v), []).append(r.get("resourceNames"))
    return out


@pytest.mark.parametrize("value_set", sorted(SETS))
def test_the_chart_grants_no_more_than_the_table_needs(helm_bin, value_set):
    granted = triples(operator_rules(render(helm_bin, *SETS[value_set])))
    allowed = table() | EXTRA.keys()
    extra = sorted(set(granted) - allowed)
    assert not extra, f"the chart grants the operator rules no code needs (runtime/kinds.py, EXTRA): {extra}"
    assert not [t for t in granted if "*" in t], "wildcards"
    for rule in BY_NAME & granted.keys():
        assert all(granted[rule]), f"{rule} must name its objects (resourceNames): {granted[rule]}"
    # no cluster-wide (nor namespaced) read of every Secret: get needs the Secret's name
    assert not {("", "secrets", "list"), ("", "secrets", "watch")} & granted.keys()


def test_with_every_feature_on_the_chart_grants_what_the_table_needs(helm_bin):
    granted = triples(operator_rules(render(helm_bin, *EVERYTHING)))
    missing = sorted(table() - set(granted))
    assert not missing, f"runtime/kinds.py needs rules the chart does not grant: {missing}"
    assert KINDS["Secret"].verbs == ("get", "create", "patch", "delete") and not KINDS["Secret"].watched
