"""``authz: kubernetes`` on the real API server: a notebook pod as the PodDefault webhook makes it
(the rendered projected token volume) is accepted, and the token such a volume holds is what the
servers' TokenReview accepts while the API server itself refuses it; the pod's ordinary token is
the opposite. The servers' side end to end: tests/datapath/test_authz_tls.py."""

from __future__ import annotations

import base64
import urllib.error

from featurestore_operator.api import OperatorConfig, parse_featurestore, resolve
from featurestore_operator.backends.planned import planned_endpoints
from featurestore_operator.render import ApiVersions, RepoSource, authz, render

from tests.support.waiting import wait_for

V120 = ApiVersions(
    cronjob="batch/v1beta1",
    pdb="policy/v1beta1",
    hpa="autoscaling/v2beta2",
    cronjob_time_zone=False,
    optional_kinds=frozenset({"PodDefault"}),
)


def _store(namespace: str):
    doc = {
        "apiVersion": "featurestore.kubeflow.org/v1alpha1",
        "kind": "FeatureStore",
        "metadata": {"name": "guarded", "namespace": namespace, "uid": "0b5e9a52-8c1e-4a43-9b2e-5c0d7f6b1a11"},
        "spec": {"project": "p", "provider": "local", "authz": {"type": "kubernetes"}},
    }
    fs = parse_featurestore(doc)
    return fs.model_copy(update={"spec": resolve(fs.spec, OperatorConfig())})


def _review(cp, token: str, audiences: list[str]) -> dict:
    body = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": {"token": token, "audiences": audiences},
    }
    return cp.request("POST", "/apis/authentication.k8s.io/v1/tokenreviews", body)["status"]


def _api_status(cp, token: str, namespace: str) -> int:
    try:
        cp.request("GET", f"/api/v1/namespaces/{namespace}/configmaps", token=token)
    except urllib.error.HTTPError as err:
        return err.code
    return 200


def test_notebook_token_for_the_store_is_accepted_by_the_store_and_refused_by_the_api(control_plane, namespace):
    fs = _store(namespace)
    out = render(fs, planned_endpoints(fs), OperatorConfig(), versions=V120, repo=RepoSource("r"))
    pd = next(o for o in out.objects if o["kind"] == "PodDefault")["spec"]
    audience = authz.token_audience(fs)
    wait_for(
        lambda: control_plane.request("GET", f"/api/v1/namespaces/{namespace}/serviceaccounts/default"),
        timeout=30,
        what="the namespace's default ServiceAccount",
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "notebook", "labels": pd["selector"]["matchLabels"]},
        "spec": {
            "containers": [{"name": "nb", "image": "jupyter", "env": pd["env"], "volumeMounts": pd["volumeMounts"]}],
            "volumes": pd["volumes"],
        },
    }
    # Kubernetes 1.20's ServiceAccount admission answers 500 "retry after the token is automatically
    # created" until the tokens controller has made the account's token Secret
    created = wait_for(
        lambda: control_plane.request("POST", f"/api/v1/namespaces/{namespace}/pods", pod),
        timeout=30,
        what="the notebook pod admitted",
    )
    [projected] = [v["projected"] for v in created["spec"]["volumes"] if v["name"] == "feast-guarded-token"]
    assert projected["sources"][0]["serviceAccountToken"]["audience"] == audience

    # what the kubelet puts in that volume: a TokenRequest for the pod's account and the store's audience
    body = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"audiences": [audience], "expirationSeconds": 600},
    }
    bound = control_plane.request("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/default/token", body)[
        "status"
    ]["token"]
    review = _review(control_plane, bound, [audience])
    assert review["authenticated"] and review["audiences"] == [audience]
    assert review["user"]["username"] == f"system:serviceaccount:{namespace}:default"
    assert _api_status(control_plane, bound, namespace) == 401, "a store token must be useless at the API server"
    other = _review(control_plane, bound, [f"featurestore.kubeflow.org/{namespace}/other"])
    assert not other.get("authenticated")

    # the pod's ordinary tokens: fine at the API server, not for the store
    ordinary = control_plane.service_account_token(namespace, "default")
    legacy = wait_for(
        lambda: next(
            base64.b64decode(s["data"]["token"]).decode()
            for s in control_plane.request("GET", f"/api/v1/namespaces/{namespace}/secrets")["items"]
            if s["type"] == "kubernetes.io/service-account-token"
        ),
        timeout=30,
        what="the default token Secret",
    )
    for token in (ordinary, legacy):
        assert _api_status(control_plane, token, namespace) != 401
        review = _review(control_plane, token, [audience])
        assert not review.get("authenticated") or audience not in (review.get("audiences") or [])
