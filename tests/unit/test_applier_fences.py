"""Fail closed: a policy the API server refuses holds back the workloads whose pods it selects."""

from __future__ import annotations

import asyncio
import copy

from featurestore_operator.api import OperatorConfig, parse_featurestore, resolve
from featurestore_operator.backends.planned import planned_endpoints
from featurestore_operator.reconcile.applier import Applier
from featurestore_operator.reconcile.conditions import synced_part
from featurestore_operator.render import ApiVersions, RepoSource, render
from featurestore_operator.runtime.cache import ObservedCache
from featurestore_operator.runtime.kube import ApiError

CONFIG = OperatorConfig(gcp_project="my-gcp-project", gcp_region="us-central1", compute_enabled=True)
ALL = ApiVersions(optional_kinds=frozenset({"PodDefault", "AuthorizationPolicy", "RayCluster"}))


class RefusingKube:
    """Answers applies like the API server, refusing the objects named in ``refuse`` with a 422."""

    def __init__(self, refuse: set[tuple[str, str]]):
        self.refuse = refuse
        self.applied: list[tuple[str, str]] = []

    async def find(self, kind: str, api_version: str, namespace: str | None, name: str) -> dict | None:
        return None  # nothing exists yet: every object is the store's to create

    async def apply(self, obj: dict) -> dict:
        k = (obj["kind"], obj["metadata"]["name"])
        if k in self.refuse:
            raise ApiError(422, "Invalid", f"{k[0]} {k[1]} is invalid")
        self.applied.append(k)
        out = copy.deepcopy(obj)
        out["metadata"]["resourceVersion"] = str(len(self.applied))
        return out


def _objects():
    doc = {
        "apiVersion": "featurestore.kubeflow.org/v1alpha1",
        "kind": "FeatureStore",
        "metadata": {"name": "s", "namespace": "team-a", "uid": "u-1"},
        "spec": {
            "project": "p",
            "provider": "local",
            "featureRepo": {"configMap": {"name": "repo"}},
            "compute": {"engine": "ray", "ray": {"kubeRay": {}}},
        },
    }
    fs = parse_featurestore(doc)
    fs = fs.model_copy(update={"spec": resolve(fs.spec, CONFIG)})
    return render(fs, planned_endpoints(fs), CONFIG, ALL, RepoSource("r1")).objects


def _run(objects, refuse):
    kube = RefusingKube(refuse)
    failures = asyncio.run(Applier(kube, ObservedCache()).apply_all(objects))  # type: ignore[arg-type]
    return kube, failures


def test_a_refused_store_fence_holds_back_every_workload_ray_included():
    objects = _objects()
    workloads = {
        (o["kind"], o["metadata"]["name"])
        for o in objects
        if o["kind"] in {"Deployment", "StatefulSet", "Job", "CronJob", "RayCluster"}
    }
    assert ("RayCluster", "s-ray") in workloads
    kube, failures = _run(objects, {("NetworkPolicy", "s-feast-pods")})
    ray = {("RayCluster", "s-ray")}  # its pods are fenced by s-ray-pods instead (kubeRay: the Jobs API port only)
    assert not set(kube.applied) & (workloads - ray), "a workload went in without its fence"
    assert {(f.key[0], f.key[2]) for f in failures if f.held_by} == workloads - ray
    assert ("ConfigMap", "s-feast-config") in kube.applied, "what no policy fences still goes in"
    part = synced_part(failures, [], [])
    assert part.status == "False" and "held back" in part.message and "s-feast-pods" in part.message
    kube, failures = _run(objects, {("NetworkPolicy", "s-ray-pods")})
    assert not set(kube.applied) & ray, "the RayCluster went in without its fence"
    assert {(f.key[0], f.key[2]) for f in failures if f.held_by} == ray


def test_a_refused_component_policy_holds_back_only_what_it_fences():
    objects = _objects()
    kube, failures = _run(objects, {("AuthorizationPolicy", "s-feature-server")})
    held = {(f.key[0], f.key[2]) for f in failures if f.held_by}
    assert held == {("Deployment", "s-feature-server")}, held
    assert ("StatefulSet", "s-redis") in kube.applied and ("RayCluster", "s-ray") in kube.applied


def test_nothing_refused_nothing_held():
    kube, failures = _run(_objects(), set())
    assert failures == []


def test_a_refused_role_is_never_bound():
    """A Role refused (e.g. an admin's Role of that name that the operator will not take over) holds back
    the RoleBinding to it: the operator grants nothing through a Role it does not own."""
    meta = {"namespace": "team-a", "labels": {"app.kubernetes.io/instance": "s"}}
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {**meta, "name": "s-feast-reader"},
        "rules": [],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {**meta, "name": "s-feast-reader"},
        "subjects": [],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "s-feast-reader"},
    }
    other = {**binding, "metadata": {**meta, "name": "s-other"}, "roleRef": {**binding["roleRef"], "name": "s-other"}}
    kube, failures = _run([binding, other, role], {("Role", "s-feast-reader")})
    assert ("RoleBinding", "s-feast-reader") not in kube.applied, "a binding to the refused Role went in"
    assert ("RoleBinding", "s-other") in kube.applied, "a binding to another Role is not held back"
    [held] = [f for f in failures if f.held_by]
    assert held.key == ("RoleBinding", "team-a", "s-feast-reader") and held.held_by == (
        "Role",
        "team-a",
        "s-feast-reader",
    )
    assert "which it binds" in held.describe()
