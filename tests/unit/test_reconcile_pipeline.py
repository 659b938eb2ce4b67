"""reconcile() (and run_pass(), its boundary with the raw object) and its steps against an in-memory
API (tests/support/fake_kube.py) with the real
in-cluster backends: what each pass writes, the conditions it reports, and the wedge cases
(immutable fields, refused objects) that used to stop a store from converging."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt

import pytest
from featurestore_operator.api import FeatureStoreStatus, OperatorConfig
from featurestore_operator.backends import policy
from featurestore_operator.backends.registry import DefaultBackends
from featurestore_operator.reconcile import core, versions
from featurestore_operator.reconcile.desired import desired
from featurestore_operator.reconcile.observe import RepoMissing, RepoNotConfigured, RepoRevision, observe_repo
from featurestore_operator.reconcile.outcomes import BackendResults
from featurestore_operator.runtime.cache import ObservedCache
from featurestore_operator.runtime.events import Event

from tests.support.fake_kube import FakeKube

NS = "team-a"
NOW = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)


def store(**spec) -> dict:
    return {
        "apiVersion": "featurestore.kubeflow.org/v1alpha1",
        "kind": "FeatureStore",
        "metadata": {"name": "demo", "namespace": NS, "uid": "fs-uid", "generation": 1},
        "spec": {"project": "demo", "provider": "local", **spec},
    }


class World:
    """The fake API server with one FeatureStore in it, and a way to run passes like a worker does."""

    def __init__(self, body: dict):
        self.kube = FakeKube()
        self.config = OperatorConfig(istio=False)
        self.cache = ObservedCache()
        self.events: list[Event] = []
        self.deps = core.Deps(
            kube=self.kube,
            cache=self.cache,
            discovery=versions.discovery(self.kube),
            config=self.config,  # type: ignore[arg-type]
            backends=DefaultBackends(self.config),
            emit=self.events.append,
            now=lambda: NOW,
        )
        self.kube.put(body)

    @property
    def body(self) -> dict:
        return copy.deepcopy(self.kube.objects[("FeatureStore", NS, "demo")])

    def reconcile(self) -> core.Result:
        result = asyncio.run(core.run_pass(self.deps, self.body))
        self.watch()
        return result

    def watch(self) -> None:
        """What the watches would deliver."""
        for obj in self.kube.objects.values():
            if obj["kind"] != "FeatureStore":
                self.cache.observe(copy.deepcopy(obj))

    def status(self) -> FeatureStoreStatus:
        return FeatureStoreStatus.model_validate(self.body.get("status") or {})

    def condition(self, type_: str) -> tuple[str, str, str]:
        c = self.status().condition(type_)
        assert c is not None, f"no {type_} condition"
        return c.status, c.reason, c.message

    def edit_spec(self, **spec) -> None:
        obj = self.kube.objects[("FeatureStore", NS, "demo")]
        obj["spec"].update(spec)
        obj["metadata"]["generation"] += 1

    def workloads_run(self) -> None:
        """The kubelet and controllers did their part: pods ready, Jobs complete."""
        for (kind, ns, name), obj in list(self.kube.objects.items()):
            if kind == "Deployment":
                self.kube.set_status(
                    kind,
                    ns,
                    name,
                    {"observedGeneration": obj["metadata"]["generation"], "replicas": 1, "availableReplicas": 1},
                )
            elif kind == "StatefulSet":
                self.kube.set_status(kind, ns, name, {"readyReplicas": 1})
            elif kind == "Job":
                self.kube.set_status(
                    kind, ns, name, {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
                )
        self.watch()


def repo_configmap(content: str = "x = 1\n") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "repo", "namespace": NS},
        "data": {"features.py": content},
    }


def test_a_new_store_converges_to_ready_and_a_resync_writes_nothing():
    w = World(store())
    w.reconcile()
    assert w.condition("FeatureServer")[:2] == ("False", "Unavailable")
    assert w.condition("Synced")[:2] == ("True", "Synced")
    kinds = [k for m, k in w.kube.writes if m == "PATCH" and not k.endswith("/status")]
    assert kinds.index("NetworkPolicy") < kinds.index("Deployment")  # policies before the workloads they fence
    w.workloads_run()
    w.reconcile()
    assert w.condition("Ready")[:2] == ("True", "Ready")
    assert w.status().endpoints.feature_server == f"http://demo-feature-server.{NS}.svc.cluster.local:6566"
    assert [e.reason for e in w.events] == ["Ready"]
    writes = len(w.kube.writes)
    w.reconcile()
    assert len(w.kube.writes) == writes, w.kube.writes[writes:]


def test_the_feature_server_url_is_published_only_once_it_serves():
    w = World(store())
    w.reconcile()
    assert w.status().endpoints.feature_server is None


def test_a_config_change_on_a_store_with_a_feature_repo_rolls_a_new_apply_job():
    """The wedge: the apply Job's template carries the config hash, so a config change used to be
    refused (422) on every pass, status stopped updating and later objects were never applied."""
    w = World(store(featureRepo={"configMap": {"name": "repo"}}))
    w.kube.put(repo_configmap())
    w.reconcile()
    w.workloads_run()  # the apply Job
    w.reconcile()
    w.workloads_run()  # the servers, created once it succeeded
    w.reconcile()
    first_job = w.status().feature_repo.job
    assert w.condition("FeatureRepo")[:2] == ("True", "Applied") and w.condition("Ready")[0] == "True"
    w.edit_spec(registry={"cacheTtlSeconds": 5})
    w.reconcile()
    status = w.status()
    assert status.observed_generation == 2
    assert status.feature_repo.job != first_job and ("Job", NS, status.feature_repo.job) in w.kube.objects
    assert w.condition("Synced")[:2] == ("True", "Synced")
    w.workloads_run()
    w.reconcile()
    assert w.condition("Ready")[:2] == ("True", "Ready")
    assert ("Job", NS, first_job) not in w.kube.objects  # the old revision's Job is pruned


def test_the_servers_start_only_once_the_first_feast_apply_succeeded():
    """A server started before the first apply cached the empty registry for cacheTtlSeconds: right
    after Ready every feature view was "not found" (found on real pods, tests/e2e/scenario-gcp.sh)."""
    w = World(store(featureRepo={"configMap": {"name": "repo"}}, registry={"server": {"enabled": True}}))
    w.kube.put(repo_configmap())
    w.reconcile()
    job = w.status().feature_repo.job
    assert job and ("Job", NS, job) in w.kube.objects
    readers = [k for k in w.kube.objects if k[0] in ("Deployment", "HorizontalPodAutoscaler")]
    assert readers == [], f"no server before the first apply: {readers}"
    assert w.condition("FeatureServer")[:2] == ("False", "WaitingForFeatureRepo")
    assert job in w.condition("FeatureServer")[2] and w.condition("Ready")[0] == "False"
    w.workloads_run()  # the apply Job succeeds
    w.reconcile()
    assert ("Deployment", NS, "demo-feature-server") in w.kube.objects
    assert w.condition("Ready")[0] == "False", "Ready waits for the servers created in this pass"
    w.workloads_run()
    w.reconcile()
    assert w.condition("Ready")[:2] == ("True", "Ready")
    # a later repo revision whose apply fails keeps the servers (they serve the applied one)
    w.kube.put(repo_configmap("broken = 1\n"))
    w.reconcile()
    assert ("Deployment", NS, "demo-feature-server") in w.kube.objects


def test_a_serving_store_given_a_feature_repo_keeps_its_servers_while_the_first_apply_runs():
    w = World(store())
    w.reconcile()
    w.workloads_run()
    w.reconcile()
    assert w.condition("Ready")[0] == "True"
    w.kube.put(repo_configmap())
    w.edit_spec(featureRepo={"configMap": {"name": "repo"}})
    w.reconcile()
    assert w.condition("FeatureRepo")[:2] == ("False", "Applying")
    assert ("Deployment", NS, "demo-feature-server") in w.kube.objects, "a running server is never held back"
    assert w.condition("FeatureServer")[:2] == ("True", "Available")


def test_a_refused_object_is_a_condition_naming_it_and_the_rest_is_applied():
    w = World(store())
    w.kube.denied[("ConfigMap", "demo-feast-client")] = (
        400,
        'admission webhook "policy.example.com" denied the request: label team is required',
    )
    w.reconcile()
    status, reason, message = w.condition("Synced")
    assert (status, reason) == ("False", "ApplyFailed")
    assert "ConfigMap demo-feast-client" in message and "label team is required" in message
    assert ("Deployment", NS, "demo-feature-server") in w.kube.objects
    w.reconcile()
    warnings = [e for e in w.events if e.type == "Warning" and "ApplyFailed" in e.reason]
    assert len(warnings) == 1, w.events  # once per distinct failure, not every pass
    w.kube.denied.clear()  # the webhook's policy changed: the refused object is tried again after a while
    w.deps.applier.retry_refused = 0.0
    w.workloads_run()
    w.reconcile()
    w.workloads_run()
    w.reconcile()
    assert w.condition("Synced")[:2] == ("True", "Synced") and w.condition("Ready")[0] == "True"


def test_an_immutable_change_is_declined_and_the_store_keeps_serving():
    w = World(store(offlineStore={"inCluster": {"storage": {"storageClassName": "standard"}}}))
    w.reconcile()
    w.workloads_run()
    w.reconcile()
    assert w.condition("Ready")[0] == "True"
    w.edit_spec(offlineStore={"inCluster": {"storage": {"storageClassName": "fast"}}})
    w.reconcile()
    assert w.condition("Synced")[:2] == ("False", "ImmutableFieldChanged")
    assert "storageClassName" in w.condition("Synced")[2]
    ready = w.condition("Ready")
    assert ready[0] == "True" and "not in effect" in ready[2]
    assert w.status().observed_generation == 2


def test_an_invalid_spec_is_a_condition_naming_the_field():
    w = World(store(featureServer={"replicas": "many"}))
    result = w.reconcile()
    assert result.phase == "Failed"
    status, reason, message = w.condition("Spec")
    assert (status, reason) == ("False", "InvalidSpec") and "spec.featureServer.replicas" in message
    assert not [k for m, k in w.kube.writes if not k.startswith("FeatureStore")]


def test_a_missing_feature_repo_configmap_is_reported_and_the_store_still_serves():
    w = World(store(featureRepo={"configMap": {"name": "absent"}}))
    w.reconcile()
    w.workloads_run()
    w.reconcile()
    status, reason, message = w.condition("FeatureRepo")
    assert (status, reason) == ("False", "ConfigMapNotFound") and "spec.featureRepo.configMap.name" in message
    assert ("Deployment", NS, "demo-feature-server") in w.kube.objects


def test_a_missing_or_failed_feature_repo_keeps_the_store_not_ready():
    """The repo is one of Ready's parts: a store whose feature repo is missing or whose apply failed
    serves, but is not Ready, and Ready names the repo's reason (issue 29: dropping FeatureRepo from
    the Ready parts went unnoticed)."""
    w = World(store(featureRepo={"configMap": {"name": "absent"}}))
    w.reconcile()
    w.workloads_run()
    w.reconcile()
    assert w.condition("FeatureServer")[0] == "True"
    assert w.condition("Ready")[:2] == ("False", "ConfigMapNotFound")
    assert w.status().phase.value != "Ready"

    w = World(store(featureRepo={"configMap": {"name": "repo"}}))
    w.kube.put(repo_configmap())
    for _ in range(3):
        w.reconcile()
        w.workloads_run()
    w.reconcile()
    assert w.condition("Ready")[:2] == ("True", "Ready")
    w.kube.put(repo_configmap("raise RuntimeError('broken')\n"))
    w.reconcile()
    job = w.status().feature_repo.job
    w.kube.set_status("Job", NS, job, {"failed": 1, "conditions": [{"type": "Failed", "status": "True"}]})
    w.watch()
    w.reconcile()
    assert w.condition("FeatureRepo")[:2] == ("False", "ApplyFailed")
    assert w.condition("FeatureServer")[0] == "True"  # the applied revision keeps serving
    ready = w.condition("Ready")
    assert ready[:2] == ("False", "ApplyFailed") and job in ready[2], ready


def test_reconcile_takes_the_typed_store_and_returns_the_status_for_the_caller_to_write():
    w = World(store())
    w.reconcile()
    w.workloads_run()
    before = w.body
    fs = core.parse(before, w.config)
    fs = fs.model_copy(update={"status": FeatureStoreStatus.model_validate(before["status"])})
    writes = len(w.kube.writes)

    async def persist(status: FeatureStoreStatus) -> None:
        raise AssertionError("no backend recorded anything mid-pass here")

    done = asyncio.run(core.reconcile(w.deps, fs, policy.verdict(fs, w.config), persist))
    assert w.body == before and not [k for _, k in w.kube.writes[writes:] if k.startswith("FeatureStore")]
    assert done.status.condition("Ready").status == "True" and done.result.phase == "Ready"
    assert done.status.observed_generation == 1 and done.status != fs.status
    w.reconcile()  # the boundary (run_pass) writes what reconcile returned
    assert w.status().condition("Ready").status == "True"


def test_observe_repo_tells_the_three_cases_apart():
    kube = FakeKube()
    parse = World(store()).deps

    def repo_state(**spec):
        fs = core.parse(store(**spec), parse.config)
        return asyncio.run(observe_repo(kube, fs))  # type: ignore[arg-type]

    assert repo_state() == RepoNotConfigured()
    assert isinstance(repo_state(featureRepo={"configMap": {"name": "repo"}}), RepoMissing)
    kube.put(repo_configmap("a"))
    first = repo_state(featureRepo={"configMap": {"name": "repo"}})
    kube.put(repo_configmap("b"))
    second = repo_state(featureRepo={"configMap": {"name": "repo"}})
    assert isinstance(first, RepoRevision) and isinstance(second, RepoRevision) and first != second
    missing = repo_state(featureRepo={"git": {"url": "https://example.com/r.git", "secretRef": {"name": "cred"}}})
    assert isinstance(missing, RepoMissing) and missing.kind == "Secret"


@pytest.mark.parametrize("served_before", [True, False])
def test_desired_holds_a_serving_store_while_a_backend_is_in_transition(served_before):
    from featurestore_operator.api import ConditionType as T
    from featurestore_operator.backends.base import Pending, Ready
    from featurestore_operator.render import ApiVersions, OfflineEndpoint

    w = World(store())
    fs = core.parse(store(), w.config)
    previous = FeatureStoreStatus.model_validate(
        {"configHash": "abc", "endpoints": {"onlineStore": "redis:6379"}} if served_before else {}
    )
    backends = BackendResults(
        {T.ONLINE_STORE: Pending("Maintenance", "in maintenance"), T.OFFLINE_STORE: Ready(OfflineEndpoint(claim="c"))},
        previous,
    )
    want = desired(fs, backends, RepoNotConfigured(), w.config, ApiVersions(), previous)
    assert want.hold is served_before
    assert (want.objects == []) is served_before
    if served_before:
        assert want.config_hash == "abc"
