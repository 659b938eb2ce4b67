"""spec.compute as a namespace editor would attack it: the Ray address, the pods the engines run,
and the config the engines copy into ConfigMaps (issue 25)."""

from __future__ import annotations

import pytest
from featurestore_operator.api import OperatorConfig, SpecError, parse_featurestore, resolve

CONFIG = OperatorConfig(gcp_project="my-gcp-project", gcp_region="us-central1", compute_enabled=True)


def _ray_store(address: str, namespace: str = "team-a"):
    doc = {
        "apiVersion": "featurestore.kubeflow.org/v1alpha1",
        "kind": "FeatureStore",
        "metadata": {"name": "s", "namespace": namespace, "uid": "u-1"},
        "spec": {"project": "p", "provider": "local", "compute": {"engine": "ray", "ray": {"address": address}}},
    }
    fs = parse_featurestore(doc)
    return fs.model_copy(update={"spec": resolve(fs.spec, CONFIG)})


@pytest.mark.parametrize(
    "address",
    [
        "ray-head.team-a.svc.cluster.local:6379",
        "ray-head.team-a.svc:6379",
        "ray://ray-head.team-a.svc.cluster.local:10001",
    ],
)
def test_ray_address_may_name_a_service_of_the_stores_own_namespace(address):
    assert _ray_store(address).spec.compute.ray.address == address


@pytest.mark.parametrize(
    "address",
    [
        "ray-head.kube-system.svc.cluster.local:6379",  # another namespace
        "ray-head.team-b.svc:6379",
        "ray://ray-head.team-b.svc.cluster.local:10001",
        "ray-head.team-b:6379",  # namespace without .svc (resolved through the search path)
        "10.0.0.7:6379",  # pod / node IP
        "169.254.169.254:80",  # metadata server
        "[::1]:6379",  # IPv6 literal
        "::1:6379",
        "evil.example.com:6379",  # outside the cluster
        "ray-head.team-a.svc.cluster.local.evil.com:6379",
        "user@ray-head:6379",  # userinfo
        "ray://team-a@evil.example.com:10001",
        "ray-head.team-a.svc.cluster.local:6379@evil.example.com:6379",
        "ray-head:6379",  # a bare name falls through the resolver's search path to the node's domains
        "metadata:80",  # ... e.g. metadata.google.internal on GKE
        "ray://ray-head:10001",
        "ray-head:6379/../x",
        "ray-head:0",
        "ray-head:65536",
        "ray-head:99999",
        "ray-head.team-a.svc.cluster.localx:6379",
        "http://ray-head:8265",
        "RAY-HEAD:6379",
        "ray-head:6379 ",
        "ray-head:6379\n",
        "0x0a000001:6379",
        "localhost:6379",
        "kubernetes.default.svc:443",
    ],
)
def test_ray_address_outside_the_stores_namespace_is_refused_naming_the_field(address):
    with pytest.raises(SpecError) as err:
        _ray_store(address)
    assert "spec.compute.ray.address" in str(err.value), str(err.value)
