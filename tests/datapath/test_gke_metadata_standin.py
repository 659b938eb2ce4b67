"""The GKE metadata stand-in (tests/support/gke_metadata.py) mints tokens as GKE's Workload Identity
does (https://cloud.google.com/kubernetes-engine/docs/concepts/workload-identity): a pod whose KSA is
annotated with a GSA AND bound by roles/iam.workloadIdentityUser acts as that GSA; any other pod only
as its KSA's direct principal. Each token is random and the TokenBook says whose it is (what the
enforcing GCS stand-in checks)."""

from __future__ import annotations

import json
import threading
import urllib.request
from typing import Any

import pytest

from tests.support.gke_metadata import (
    WORKLOAD_IDENTITY_USER,
    GkeMetadataServer,
    TokenBook,
    WorkloadIdentity,
    principal,
)

POOL = "p.svc.id.goog"
GSA = "kf-team-a@p.iam.gserviceaccount.com"


class Iam:
    def __init__(self, bindings: dict[str, list[dict[str, Any]]]) -> None:
        self._bindings = bindings

    def bindings(self, gsa: str) -> list[dict[str, Any]]:
        return self._bindings.get(gsa, [])


def cluster(pods: dict[str, tuple[str, str]], annotations: dict[tuple[str, str], str]):
    """An API server's answers: pods by IP -> (namespace, ksa); KSA annotations."""

    def request(method: str, path: str) -> dict[str, Any]:
        if path.startswith("/api/v1/pods"):
            ip = path.split("status.podIP%3D")[-1]
            if ip not in pods:
                return {"items": []}
            ns, ksa = pods[ip]
            return {
                "items": [{"metadata": {"namespace": ns, "name": f"pod-{ksa}"}, "spec": {"serviceAccountName": ksa}}]
            }
        ns, ksa = path.split("/namespaces/")[1].split("/serviceaccounts/")
        gsa = annotations.get((ns, ksa))
        return {"metadata": {"annotations": {"iam.gke.io/gcp-service-account": gsa} if gsa else {}}}

    return request


def test_member_of_each_pod_follows_the_annotation_and_the_binding():
    granted = {GSA: [{"role": WORKLOAD_IDENTITY_USER, "members": [f"serviceAccount:{POOL}[team-a/default-editor]"]}]}
    request = cluster(
        {"10.0.0.1": ("team-a", "default-editor"), "10.0.0.2": ("team-b", "default-editor")},
        {("team-a", "default-editor"): GSA, ("team-b", "default-editor"): GSA},  # team-b claims team-a's GSA
    )
    wi = WorkloadIdentity(request, Iam(granted), "p", pod_wait=0.5)
    assert wi("10.0.0.1").member == f"serviceAccount:{GSA}"
    # annotated but not bound: only its own principal, never the GSA it names
    assert wi("10.0.0.2").member == principal(POOL, "team-b", "default-editor")
    assert wi("10.9.9.9").member == ""  # not a pod


def test_a_pod_whose_ip_is_reported_late_gets_its_identity():
    """A container may ask for a token before the kubelet has reported its pod's IP: the stand-in
    waits for the pod, as GKE's metadata server does, instead of answering with no identity."""
    granted = {GSA: [{"role": WORKLOAD_IDENTITY_USER, "members": [f"serviceAccount:{POOL}[team-a/default-editor]"]}]}
    pods: dict[str, tuple[str, str]] = {}
    request = cluster(pods, {("team-a", "default-editor"): GSA})
    threading.Timer(1.0, lambda: pods.update({"10.0.0.3": ("team-a", "default-editor")})).start()
    wi = WorkloadIdentity(request, Iam(granted), "p", pod_wait=10)
    assert wi("10.0.0.3").member == f"serviceAccount:{GSA}"


@pytest.mark.timeout(60)
def test_tokens_are_random_and_the_book_names_their_member():
    book = TokenBook()
    member = f"serviceAccount:{GSA}"
    from tests.support.gke_metadata import Identity

    with GkeMetadataServer(
        "127.0.0.1", 0, project="p", identity=lambda ip: Identity("ns/pod", GSA, member), book=book
    ) as md:
        url = f"http://127.0.0.1:{md.port}/computeMetadata/v1/instance/service-accounts/default/token"

        def token() -> str:
            req = urllib.request.Request(url, headers={"Metadata-Flavor": "Google"})
            with urllib.request.urlopen(req, timeout=10) as r:
                return json.load(r)["access_token"]

        first, second = token(), token()
    assert first != second and GSA not in first, "unguessable, not derived from the identity"
    assert book.member(first) == book.member(second) == member
    assert book.member("ya29.forged") is None
