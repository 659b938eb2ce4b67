"""Red team (issue 25): ``status`` is the operator's record, never a tenant's input.

The operator deletes and revokes what ``status.cloud`` records (Memorystore instance, bucket,
Workload Identity grant). A namespace editor holds the chart's aggregated ``-edit`` ClusterRole
(kubeflow-edit, edit, admin): they may write ``featurestores`` but only read
``featurestores/status``, and the CRD's status subresource makes the API server drop any
``status`` sent with the main resource. Proven here on the real API server, as a ServiceAccount
bound to exactly the chart's role. (Defence in depth when a record is wrong anyway: every
deletion re-verifies at the cloud resource; tests/datapath/test_redteam_identity.py.)
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes import config as kube_config
from kubernetes.client.rest import ApiException

from tests.support.kube import G, P, V

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "featurestore-operator"

FORGED = {
    "cloud": {
        "memorystore": "projects/test-project/locations/us-central1/instances/n6-team-b-feast",
        "memorystoreDeletionPolicy": "Delete",
        "bucket": "team-b_feast",
        "bucketProject": "test-project",
        "bucketDeletionPolicy": "Delete",
        "bucketForce": True,
        "serviceAccount": "feast-team-b@test-project.iam.gserviceaccount.com",
        "workloadMember": "serviceAccount:test-project.svc.id.goog[team-b/feast-feast]",
    }
}


def _edit_role(helm_bin: str, name: str) -> dict[str, Any]:
    out = subprocess.run(
        [helm_bin, "template", "fso", str(CHART), "-n", "fso-system"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    [role] = [
        d
        for d in yaml.safe_load_all(out.stdout)
        if d and d["kind"] == "ClusterRole" and d["metadata"]["name"].endswith("-edit")
    ]
    labels = role["metadata"]["labels"]
    assert labels.get("rbac.authorization.kubeflow.org/aggregate-to-kubeflow-edit") == "true"
    return {**role, "metadata": {"name": name}}


@pytest.fixture
def tenant(control_plane, kube_api, helm_bin, featurestore_crd, namespace, tmp_path):
    """A CustomObjectsApi acting as a namespace editor (the chart's -edit role, bound in ``namespace``)."""
    rbac = client.RbacAuthorizationV1Api(kube_api)
    name = f"redteam-edit-{namespace}"[:63]
    rbac.create_cluster_role(_edit_role(helm_bin, name))
    client.CoreV1Api(kube_api).create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="alice"))
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "alice-edit"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": "alice", "namespace": namespace}],
        },
    )
    path = control_plane.service_account_kubeconfig(namespace, "alice", str(tmp_path / "alice"))
    api = kube_config.new_client_from_config(config_file=path)
    try:
        yield client.CustomObjectsApi(api)
    finally:
        api.close()
        rbac.delete_cluster_role(name)


def _store(namespace: str, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{G}/{V}",
        "kind": "FeatureStore",
        "metadata": {"name": "feast", "namespace": namespace},
        "spec": {"project": "demo"},
        **extra,
    }


def test_a_tenant_cannot_write_status(tenant, kube_api, namespace):
    admin = client.CustomObjectsApi(kube_api)
    # 1. created with a status: the API server drops it (status subresource)
    created = tenant.create_namespaced_custom_object(G, V, namespace, P, _store(namespace, status=FORGED))
    assert not (created.get("status") or {}).get("cloud")
    # 2. the main resource updated with a status: dropped again
    created["status"] = FORGED
    tenant.replace_namespaced_custom_object(G, V, namespace, P, "feast", created)
    tenant.patch_namespaced_custom_object(G, V, namespace, P, "feast", {"status": FORGED})
    assert not (admin.get_namespaced_custom_object(G, V, namespace, P, "feast").get("status") or {}).get("cloud")
    # 3. the status subresource itself: forbidden to the editor (readable only)
    assert tenant.get_namespaced_custom_object_status(G, V, namespace, P, "feast")["metadata"]["name"] == "feast"
    for write in (tenant.patch_namespaced_custom_object_status, tenant.replace_namespaced_custom_object_status):
        with pytest.raises(ApiException) as err:
            body = {"status": FORGED} if write is tenant.patch_namespaced_custom_object_status else {**created}
            write(G, V, namespace, P, "feast", body)
        assert err.value.status == 403, err.value.body
    assert not (admin.get_namespaced_custom_object(G, V, namespace, P, "feast").get("status") or {}).get("cloud")
