"""The control-plane tier's operator runs under the chart's RBAC (tests/support/chart_identity.py), not
the admin token: what every other test of the tier proves about the operator, it proves with exactly
the rules the chart grants. Here: that identity is the chart's ServiceAccount, and a leaked token of it
cannot read the cluster's Secrets in bulk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes import config as kube_config
from kubernetes.client.rest import ApiException

from tests.support import chart_identity
from tests.support.operator_process import OperatorProcess


def can(api: client.ApiClient, verb: str, resource: str, namespace: str | None = None, group: str = "") -> bool:
    attrs = {"verb": verb, "resource": resource, "group": group, **({"namespace": namespace} if namespace else {})}
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attrs},
    }
    return client.AuthorizationV1Api(api).create_self_subject_access_review(review).status.allowed


def test_the_tier_operator_is_the_charts_service_account(control_plane, namespace):
    op = OperatorProcess(control_plane.kubeconfig)
    assert op.kubeconfig != control_plane.kubeconfig
    token = json.loads(Path(op.kubeconfig).read_text())["users"][0]["user"]["token"]
    review = control_plane.request(
        "POST",
        "/apis/authentication.k8s.io/v1/tokenreviews",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}},
    )
    assert review["status"]["user"]["username"] == (
        f"system:serviceaccount:{chart_identity.NAMESPACE}:{chart_identity.RELEASE}-featurestore-operator"
    )
    api = kube_config.new_client_from_config(config_file=op.kubeconfig)
    try:
        # what the operator needs ...
        assert can(api, "get", "secrets", namespace) and can(api, "patch", "deployments", namespace, "apps")
        assert not can(api, "update", "deployments", namespace, "apps")
        # ... and no bulk read of Secrets, anywhere
        for verb in ("list", "watch"):
            assert not can(api, verb, "secrets"), f"{verb} secrets cluster-wide"
            assert not can(api, verb, "secrets", namespace), f"{verb} secrets in a namespace"
        with pytest.raises(ApiException) as refused:
            client.CoreV1Api(api).list_secret_for_all_namespaces()
        assert refused.value.status == 403
        with pytest.raises(ApiException) as refused:
            client.CoreV1Api(api).list_namespaced_secret(namespace)
        assert refused.value.status == 403
    finally:
        api.close()
    # a test that needs more says so: identity="admin" keeps the admin token
    assert OperatorProcess(control_plane.kubeconfig, identity="admin").kubeconfig == control_plane.kubeconfig
