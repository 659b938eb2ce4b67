"""Profile onboarding and the Kubeflow pieces without a cluster: the template model and operator
config, the onboarding decision, the onboarding steps against an in-memory API, the watch join,
the rendered Role/NetworkPolicy, and the Kubeflow condition when optional CRDs are absent."""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from featurestore_operator.api import OperatorConfig, parse_featurestore, resolve
from featurestore_operator.api.onboarding import ONBOARDED_FROM_ANNOTATION, OnboardingTemplate, feast_project_name
from featurestore_operator.backends.planned import planned_endpoints
from featurestore_operator.reconcile.conditions import kubeflow_part
from featurestore_operator.reconcile.observe import NotebookFacts
from featurestore_operator.reconcile.onboarding import (
    MARKER,
    RECORD_LABEL,
    SHARED_COPY_LABEL,
    Onboarder,
    decide,
    onboard,
    sync_shared_secrets,
)
from featurestore_operator.render import ApiVersions, render
from featurestore_operator.runtime.kube import ApiError

ROOT = Path(__file__).resolve().parents[2]
PROFILE = {"app.kubernetes.io/part-of": "kubeflow-profile"}
ON = OperatorConfig(onboarding_enabled=True)


PROFILE_UID = "0b5f8a4e-4c1d-4b8e-9a57-3f1e2d9c6b70"
OWNER = {"spec": {"owner": {"kind": "User", "name": "alice@example.com"}}}
#: what Kubeflow's profile controller writes on the namespaces it makes or accepts
OWNED = {"owner": "alice@example.com"}


def profile_obj(name: str) -> dict:
    return {"metadata": {"name": name, "uid": PROFILE_UID}, **OWNER}


def profile_ref(uid: str = PROFILE_UID) -> dict:
    return {"apiVersion": "kubeflow.org/v1", "kind": "Profile", "name": "a", "uid": uid, "controller": True}


def ns_obj(
    name: str, labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None, **extra: Any
) -> dict:
    return {
        "metadata": {"name": name, "labels": labels or {}, "annotations": annotations or {}, **extra},
        "status": {"phase": "Active"},
    }


# ------------------------------------------------------------------------------ template / config


def test_template_defaults_substitution_and_sanitized_project():
    t = OnboardingTemplate.model_validate(
        {
            "spec": {
                "provider": "local",
                "gcp": {"serviceAccount": None},
                "kubeflow": {"allowedNamespaces": ["{namespace}-serving"]},
            }
        }
    )
    m = t.manifest("kubeflow-user-alice")
    assert m["metadata"]["name"] == "feast" and m["metadata"]["namespace"] == "kubeflow-user-alice"
    assert m["metadata"]["annotations"] == {ONBOARDED_FROM_ANNOTATION: t.hash}
    assert m["spec"]["project"] == "kubeflow_user_alice"  # default "{namespace}", sanitized
    assert m["spec"]["kubeflow"]["allowedNamespaces"] == ["kubeflow-user-alice-serving"]  # raw elsewhere
    assert parse_featurestore(m).spec.project == "kubeflow_user_alice"


def test_bare_spec_form_of_the_helm_chart_and_empty_template():
    assert OnboardingTemplate.model_validate({"project": "default"}).spec == {"project": "default"}
    assert OnboardingTemplate.model_validate({}).manifest("a-b")["spec"] == {"project": "a_b"}
    full = OnboardingTemplate.model_validate({"name": "fs", "spec": {"project": "x_{namespace}"}})
    assert full.manifest("n")["spec"]["project"] == "x_n" and full.name == "fs"


def test_long_project_names_stay_valid_and_distinct():
    a, b = "x" * 63, "x" * 62 + "y"
    pa, pb = feast_project_name("team_" + a), feast_project_name("team_" + b)
    assert len(pa) == len(pb) == 63 and pa != pb
    assert feast_project_name("-lead") == "p_lead"


@pytest.mark.parametrize(
    "raw, fragment",
    [
        ({"spec": {"project": "p", "bogus": 1}}, "spec.bogus"),
        ({"spec": {"featureServer": {"replicas": -1}}}, "spec.featureServer.replicas"),
        ({"name": "Feast_1"}, "name"),
        (
            {"sharedOnlineStore": {"secretRef": {"namespace": "s", "name": "r"}}, "spec": {"project": "shared"}},
            "must contain {namespace}",
        ),
        (
            {
                "sharedOnlineStore": {"secretRef": {"namespace": "s", "name": "r"}},
                "spec": {"onlineStore": {"inCluster": {}}},
            },
            "either sharedOnlineStore or spec.onlineStore",
        ),
    ],
)
def test_invalid_templates_are_refused_with_the_field(raw, fragment):
    with pytest.raises(Exception) as info:
        OnboardingTemplate.model_validate(raw)
    assert fragment in str(info.value)


def test_operator_config_reads_template_from_env_json_yaml_and_file(monkeypatch, tmp_path):
    monkeypatch.setenv("FSO_ONBOARDING_ENABLED", "true")
    monkeypatch.setenv("FSO_ONBOARDING_TEMPLATE", json.dumps({"project": "default", "provider": "local"}))
    cfg = OperatorConfig()
    assert cfg.onboarding_enabled and cfg.onboarding_template.spec == {"project": "default", "provider": "local"}
    monkeypatch.setenv("FSO_ONBOARDING_TEMPLATE", "name: fs\nspec:\n  featureServer: {replicas: 2}\n")
    assert OperatorConfig().onboarding_template.name == "fs"
    monkeypatch.delenv("FSO_ONBOARDING_TEMPLATE")
    path = tmp_path / "template.yaml"
    path.write_text("spec: {provider: local}\n")
    monkeypatch.setenv("FSO_ONBOARDING_TEMPLATE_FILE", str(path))
    assert OperatorConfig().onboarding_template.spec == {"provider": "local"}
    monkeypatch.setenv("FSO_ONBOARDING_TEMPLATE_FILE", str(tmp_path / "missing.yaml"))
    with pytest.raises(Exception, match="cannot read onboarding_template_file"):
        OperatorConfig()
    monkeypatch.delenv("FSO_ONBOARDING_TEMPLATE_FILE")
    monkeypatch.setenv("FSO_ONBOARDING_TEMPLATE", "{project: [")
    with pytest.raises(Exception, match="not valid JSON/YAML"):
        OperatorConfig()


def test_helm_chart_env_validates():
    """The chart passes FSO_ONBOARDING_TEMPLATE as JSON of kubeflow.onboarding.template (default {})."""
    cfg = OperatorConfig.model_validate({"onboarding_enabled": "true", "onboarding_template": "{}"})
    assert cfg.onboarding_template.name == "feast"


ONBOARDING_EXAMPLES = sorted((ROOT / "examples" / "onboarding").glob("*.yaml"))


def test_onboarding_examples_exist():
    assert ONBOARDING_EXAMPLES, "examples/onboarding/ holds no example"


@pytest.mark.parametrize("path", ONBOARDING_EXAMPLES, ids=lambda p: p.stem)
def test_onboarding_example_is_a_valid_template(path):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    [template] = [d for d in docs if "kind" not in d]
    parsed = OnboardingTemplate.model_validate(template)
    # what a profile namespace would get is a valid FeatureStore
    fs = parse_featurestore(parsed.manifest("kubeflow-user-alice"))
    assert fs.spec.project == "kubeflow_user_alice"
    assert fs.metadata.name == parsed.name


# ------------------------------------------------------------------------------ decision


@pytest.mark.parametrize(
    "config, namespace, profile, onboard_, why",
    [
        (OperatorConfig(), ns_obj("a", PROFILE), None, False, "disabled"),
        (ON, None, {"metadata": {"name": "a"}}, False, "does not exist"),
        (ON, ns_obj("a"), None, False, "neither labelled"),
        (ON, ns_obj("a", PROFILE), None, True, "labelled"),
        (ON, ns_obj("a", annotations=OWNED), profile_obj("a"), True, "Profile"),
        (ON, ns_obj("a", ownerReferences=[profile_ref()]), profile_obj("a"), True, "Profile"),
        (ON, ns_obj("a", {**PROFILE, "featurestore.kubeflow.org/onboarding": "disabled"}), None, False, "opted out"),
        (ON, ns_obj("a", PROFILE, {"featurestore.kubeflow.org/onboarding": "False"}), None, False, "opted out"),
        (ON, ns_obj("a", PROFILE, {"featurestore.kubeflow.org/onboarding": "enabled"}), None, True, "labelled"),
        (
            ON,
            ns_obj("a", annotations=OWNED),
            {"metadata": {"name": "a", "annotations": {"featurestore.kubeflow.org/onboarding": "disabled"}}, **OWNER},
            False,
            "on the Profile",
        ),
        (ON, ns_obj("a", PROFILE, deletionTimestamp="2024-01-01T00:00:00Z"), None, False, "terminating"),
        (
            OperatorConfig(onboarding_enabled=True, namespaces=["b"]),
            ns_obj("a", PROFILE),
            None,
            False,
            "FSO_NAMESPACES",
        ),
        (
            OperatorConfig(onboarding_enabled=True, onboarding_namespace_label="team=ml"),
            ns_obj("a", {"team": "ml"}),
            None,
            True,
            "labelled",
        ),
        (
            OperatorConfig(onboarding_enabled=True, onboarding_namespace_label="team=ml"),
            ns_obj("a", PROFILE),
            None,
            False,
            "neither",
        ),
    ],
)
def test_decide(config, namespace, profile, onboard_, why):
    verdict = decide(config, namespace, profile)
    assert verdict.onboard is onboard_ and why in verdict.reason


@pytest.mark.parametrize(
    "namespace",
    [
        ns_obj("a"),  # an existing namespace no Profile made (another team's, the operator's, default)
        ns_obj("a", annotations={"owner": "victim@example.com"}),
        ns_obj("a", ownerReferences=[profile_ref(uid="another-profile-uid")]),
        ns_obj("a", ownerReferences=[{**profile_ref(), "controller": False}]),
        ns_obj("a", ownerReferences=[{**profile_ref(), "kind": "ConfigMap"}]),
    ],
)
@pytest.mark.parametrize("profile", [profile_obj("a"), {"metadata": {"name": "a", "uid": PROFILE_UID}}])
def test_a_profile_named_after_a_namespace_it_does_not_own_onboards_nothing(namespace, profile):
    """Attack: where the dashboard's registration flow is on, any user can make a Profile named as they
    like; one named after an existing namespace must not make the operator create a FeatureStore (and
    copy the shared online store's Secret) there. Kubeflow's profile controller refuses that namespace too."""
    verdict = decide(ON, namespace, profile)
    assert not verdict.onboard
    assert "does not own the namespace" in verdict.reason and "spec.owner.name" in verdict.reason


# ------------------------------------------------------------------------------ onboarding steps


class FakeKube:
    """In-memory objects keyed (kind, namespace, name); records writes; can fail on demand."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str | None, str], dict[str, Any]] = {}
        self.writes: list[tuple[str, str, str]] = []
        self.fail: dict[str, ApiError] = {}
        self.uid = 0

    def _check(self, op: str) -> None:
        if op in self.fail:
            raise self.fail[op]

    async def get(self, kind, api_version, namespace, name):
        self._check("get")
        obj = self.objects.get((kind, namespace, name))
        return copy.deepcopy(obj) if obj else None

    async def create(self, obj):
        self._check("create")
        k = (obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"])
        if k in self.objects:
            return None
        self.uid += 1
        stored = copy.deepcopy(obj)
        stored["metadata"]["uid"] = f"uid-{self.uid}"
        self.objects[k] = stored
        self.writes.append(("create", *k[::2]))
        return copy.deepcopy(stored)

    async def apply(self, obj, *, force=True):
        self._check("apply")
        k = (obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"])
        self.objects[k] = copy.deepcopy(obj)
        self.writes.append(("apply", obj["kind"], obj["metadata"]["name"]))
        return copy.deepcopy(obj)

    async def delete(self, kind, api_version, namespace, name):
        self.writes.append(("delete", kind, name))
        return self.objects.pop((kind, namespace, name), None) is not None

    async def list(self, kind, api_version, namespace, labels=None):
        return [copy.deepcopy(o) for (k, ns, _), o in self.objects.items() if k == kind and namespace in (None, ns)]


def run(coro):
    return asyncio.run(coro)


def test_onboard_creates_once_and_records_a_marker():
    kube = FakeKube()
    out = run(onboard(kube, ON, "alice"))
    assert out.result == "Created" and out.featurestore["metadata"]["uid"]
    fs = kube.objects[("FeatureStore", "alice", "feast")]
    assert fs["spec"] == {"project": "alice"}
    marker = kube.objects[("ConfigMap", "alice", MARKER)]
    assert marker["data"]["result"] == "Created" and marker["data"]["templateHash"] == ON.onboarding_template.hash
    # Again (resume): the marker says done; nothing is written.
    kube.writes.clear()
    assert run(onboard(kube, ON, "alice")).result == "AlreadyOnboarded"
    assert kube.writes == []


def test_onboard_never_touches_an_existing_featurestore():
    kube = FakeKube()
    mine = {
        "apiVersion": "featurestore.kubeflow.org/v1alpha1",
        "kind": "FeatureStore",
        "metadata": {"name": "feast", "namespace": "bob", "uid": "u"},
        "spec": {"project": "mine", "provider": "gcp"},
    }
    kube.objects[("FeatureStore", "bob", "feast")] = copy.deepcopy(mine)
    out = run(onboard(kube, ON, "bob"))
    assert out.result == "Existed"
    assert kube.objects[("FeatureStore", "bob", "feast")] == mine
    assert not [w for w in kube.writes if w[1] == "FeatureStore"]
    assert kube.objects[("ConfigMap", "bob", MARKER)]["data"]["result"] == "Existed"


def test_onboard_after_a_crash_between_create_and_marker():
    kube = FakeKube()
    run(kube.create(ON.onboarding_template.manifest("carol")))  # created, then the operator died
    out = run(onboard(kube, ON, "carol"))
    assert out.result == "Created" and kube.objects[("ConfigMap", "carol", MARKER)]["data"]["result"] == "Created"


def test_onboard_skips_a_terminating_namespace_and_raises_other_errors():
    kube = FakeKube()
    kube.fail["get"] = ApiError(
        403,
        "Forbidden",
        'configmaps "x" is forbidden: unable to create new content in namespace gone because it is being terminated',
        [{"reason": "NamespaceTerminating"}],
    )
    assert run(onboard(kube, ON, "gone")).result == "Skipped"
    kube.fail["get"] = ApiError(500, "InternalError", "etcd is down")
    with pytest.raises(ApiError):
        run(onboard(kube, ON, "gone"))


SHARED = OperatorConfig(
    onboarding_enabled=True,
    onboarding_template=OnboardingTemplate.model_validate(
        {
            "spec": {"project": "{namespace}"},
            "sharedOnlineStore": {"secretRef": {"namespace": "feast-system", "name": "redis"}, "tls": True},
        }
    ),
)


def _source(password: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "redis", "namespace": "feast-system"},
        "data": {"host": "MTAuMC4wLjM=", "port": "NjM3OA==", "password": password},
    }


def test_shared_online_store_copies_the_secret_owned_by_the_featurestore():
    kube = FakeKube()
    kube.objects[("Secret", "feast-system", "redis")] = _source("b25l")
    out = run(onboard(kube, SHARED, "team-a"))
    fs = out.featurestore
    assert fs["spec"] == {
        "project": "team_a",
        "onlineStore": {"external": {"secretRef": {"name": "feast-shared-online-store"}, "tls": True}},
    }
    copy_ = kube.objects[("Secret", "team-a", "feast-shared-online-store")]
    assert copy_["data"]["password"] == "b25l" and copy_["metadata"]["labels"][SHARED_COPY_LABEL] == "true"
    [ref] = copy_["metadata"]["ownerReferences"]
    assert ref["uid"] == fs["metadata"]["uid"] and "controller" not in ref
    # the copy exists before the FeatureStore (its first reconcile finds it)
    order = [w[1] for w in kube.writes]
    assert order.index("Secret") < order.index("FeatureStore")
    # Rotation: every onboarded store still using the copy gets the new data; others do not.
    run(onboard(kube, SHARED, "team-b"))
    kube.objects[("FeatureStore", "team-b", "feast")]["spec"]["onlineStore"] = {"inCluster": {}}
    kube.objects[("Secret", "feast-system", "redis")] = _source("dHdv")
    assert run(sync_shared_secrets(kube, SHARED)) == 1
    assert kube.objects[("Secret", "team-a", "feast-shared-online-store")]["data"]["password"] == "dHdv"
    assert kube.objects[("Secret", "team-b", "feast-shared-online-store")]["data"]["password"] == "b25l"


def test_forged_onboarded_annotation_copies_nothing():
    """Before: a FeatureStore carrying the (user-settable) onboarded-from annotation and pointing at
    the shared copy's name made sync_shared_secrets copy the shared Redis password into any
    namespace. Now only the Namespace annotation the operator writes when it onboards counts."""
    kube = FakeKube()
    kube.objects[("Secret", "feast-system", "redis")] = _source("b25l")
    assert run(onboard(kube, SHARED, "team-a")).result == "Created"
    record = kube.objects[("ConfigMap", "feast-system", "featurestore-onboarded-team-a")]
    uid = kube.objects[("FeatureStore", "team-a", "feast")]["metadata"]["uid"]
    assert record["data"] == {"namespace": "team-a", "featureStore": "feast", "uid": uid}
    assert record["metadata"]["labels"] == {RECORD_LABEL: "true"}
    forged = SHARED.onboarding_template.manifest("mallory")  # annotation and secretRef as onboarding writes them
    forged["metadata"]["uid"] = "uid-mallory"
    kube.objects[("FeatureStore", "mallory", "feast")] = forged
    # a marker ConfigMap in mallory's own namespace (theirs to write) counts for nothing
    kube.objects[("ConfigMap", "mallory", "featurestore-onboarded-mallory")] = {
        "kind": "ConfigMap",
        "metadata": {"name": "featurestore-onboarded-mallory", "namespace": "mallory"},
        "data": {"namespace": "mallory", "featureStore": "feast", "uid": "uid-mallory"},
    }
    # a forged store in an onboarded namespace, under another uid, gets nothing either
    other = SHARED.onboarding_template.manifest("team-a")
    other["metadata"].update(name="feast-2", uid="uid-x")
    kube.objects[("FeatureStore", "team-a", "feast-2")] = other
    kube.writes.clear()
    assert run(sync_shared_secrets(kube, SHARED)) == 1  # team-a's own store only
    assert ("Secret", "mallory", "feast-shared-online-store") not in kube.objects
    assert [w for w in kube.writes if w[0] == "apply"] == [("apply", "Secret", "feast-shared-online-store")]


def test_shared_online_store_is_not_copied_for_a_users_own_store():
    kube = FakeKube()
    kube.objects[("Secret", "feast-system", "redis")] = _source("b25l")
    kube.objects[("FeatureStore", "own", "feast")] = {
        "kind": "FeatureStore",
        "metadata": {"name": "feast", "namespace": "own"},
        "spec": {"project": "mine"},
    }
    assert run(onboard(kube, SHARED, "own")).result == "Existed"
    assert ("Secret", "own", "feast-shared-online-store") not in kube.objects


def test_shared_online_store_source_missing_still_onboards():
    kube = FakeKube()
    out = run(onboard(kube, SHARED, "team-c"))
    assert out.result == "Created" and ("Secret", "team-c", "feast-shared-online-store") not in kube.objects
    assert run(sync_shared_secrets(kube, SHARED)) == 0
    kube.objects[("Secret", "feast-system", "redis")] = _source("b25l")
    assert run(sync_shared_secrets(kube, SHARED)) == 1  # the source appears: copied then


# ------------------------------------------------------------------------------ the watch join


def test_onboarder_joins_profiles_and_namespaces_in_either_order():
    async def scenario():
        kube = FakeKube()
        seen = []
        ob = Onboarder(kube, ON, seen.append)
        assert await ob.profile_event("ADDED", profile_obj("p1")) is None  # no namespace yet
        assert (await ob.namespace_event("ADDED", ns_obj("p1", annotations=OWNED))).result == "Created"
        assert await ob.namespace_event("ADDED", ns_obj("p2", annotations=OWNED)) is None
        assert (await ob.profile_event("ADDED", profile_obj("p2"))).result == "Created"
        # settled: further events cost no API call
        calls = len(kube.writes)
        await ob.namespace_event("MODIFIED", ns_obj("p1", {"x": "y"}))
        assert len(kube.writes) == calls
        # the user deletes the FeatureStore: it stays deleted, also for a fresh Onboarder (restart)
        del kube.objects[("FeatureStore", "p1", "feast")]
        restarted = Onboarder(kube, ON)
        assert await restarted.profile_event(None, profile_obj("p1")) is None
        assert (await restarted.namespace_event(None, ns_obj("p1", annotations=OWNED))).result == "AlreadyOnboarded"
        assert ("FeatureStore", "p1", "feast") not in kube.objects
        # deleting the marker re-onboards
        del kube.objects[("ConfigMap", "p1", MARKER)]
        assert (await restarted.marker_deleted("p1")).result == "Created"
        # a deleted namespace is forgotten; its marker's deletion then does nothing
        await restarted.namespace_event("DELETED", ns_obj("p1"))
        assert await restarted.marker_deleted("p1") is None
        return seen

    seen = asyncio.run(scenario())
    assert [o.result for o in seen] == ["Created", "Created"]


def test_onboarder_retries_after_api_errors():
    async def scenario():
        kube = FakeKube()
        ob = Onboarder(kube, ON, retry_delays=(0.01,))
        kube.fail["create"] = ApiError(500, "InternalError", "etcd is down")
        assert await ob.namespace_event("ADDED", ns_obj("r", PROFILE)) is None
        assert "r" not in ob.settled
        del kube.fail["create"]
        for _ in range(100):
            if ("FeatureStore", "r", "feast") in kube.objects and "r" in ob.settled:
                break
            await asyncio.sleep(0.01)
        assert ("FeatureStore", "r", "feast") in kube.objects and "r" in ob.settled

    asyncio.run(scenario())


# ------------------------------------------------------------------------------ render / condition


def _fs(namespace: str = "kubeflow-user-alice", **spec: Any):
    doc = {
        "apiVersion": "featurestore.kubeflow.org/v1alpha1",
        "kind": "FeatureStore",
        "metadata": {"name": "feast", "namespace": namespace, "uid": "u-1"},
        "spec": {"project": "p", "provider": "local", "kubeflow": {"allowedNamespaces": ["kserve"]}, **spec},
    }
    fs = parse_featurestore(doc)
    return fs.model_copy(update={"spec": resolve(fs.spec, ON)})


def _kinds(objects):
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


def test_reader_role_only_in_kubeflow_mode_and_only_for_the_client_config():
    fs = _fs()
    objs = _kinds(render(fs, planned_endpoints(fs), ON).objects)
    role, binding = objs[("Role", "feast-feast-client-reader")], objs[("RoleBinding", "feast-feast-client-reader")]
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["feast-feast-client"], "verbs": ["get"]}
    ]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "default-editor", "namespace": "kubeflow-user-alice"}
    ]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "feast-feast-client-reader",
    }
    assert role["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    # onboarding off (no RBAC for roles in the chart), PodDefault off, or no PodDefault CRD: no Role
    for config, f, versions in [
        (OperatorConfig(), fs, None),
        (ON, _fs(kubeflow={"podDefault": False}), None),
        (ON, fs, ApiVersions(optional_kinds=frozenset())),
    ]:
        kinds = {o["kind"] for o in render(f, planned_endpoints(f), config, versions).objects}
        assert not kinds & {"Role", "RoleBinding"}


def test_without_kubeflow_crds_nothing_optional_is_rendered_and_the_condition_says_so():
    fs = _fs()
    bare = ApiVersions(optional_kinds=frozenset())
    kinds = {o["kind"] for o in render(fs, planned_endpoints(fs), ON, bare).objects}
    # NetworkPolicies are standard API: the feature server stays fenced without Istio's CRD.
    assert not kinds & {"PodDefault", "AuthorizationPolicy", "Role"} and "NetworkPolicy" in kinds
    part = kubeflow_part(fs.spec.kubeflow.pod_default, True, bare.optional_kinds, NotebookFacts(None), fs.metadata.name)
    assert part.status == "False" and part.reason == "CRDNotInstalled"
    assert "PodDefault (kubeflow.org/v1alpha1)" in part.message and "AuthorizationPolicy" in part.message
    assert "picked up automatically" in part.message
    # Istio off: a NetworkPolicy instead, and only PodDefault can be missing.
    no_istio = OperatorConfig(onboarding_enabled=True, istio=False)
    objs = _kinds(render(fs, planned_endpoints(fs), no_istio, bare).objects)
    policy = objs[("NetworkPolicy", "feast-feature-server")]
    [rule] = policy["spec"]["ingress"]
    # its own namespace as podSelector {} (no namespace label needed: Kubernetes 1.20 sets none), others by name
    assert rule["from"][0] == {"podSelector": {}}
    assert rule["from"][1]["namespaceSelector"]["matchExpressions"][0]["values"] == ["kserve"]
    part = kubeflow_part(
        fs.spec.kubeflow.pod_default, False, bare.optional_kinds, NotebookFacts(None), fs.metadata.name
    )
    assert "PodDefault" in part.message and "AuthorizationPolicy" not in part.message
    assert (
        kubeflow_part(
            fs.spec.kubeflow.pod_default, True, ApiVersions().optional_kinds, NotebookFacts(None), fs.metadata.name
        ).status
        == "True"
    )
