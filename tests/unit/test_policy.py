"""The admin policy (api/policy.py): the allowed/refused matrix, each refusal naming the field and the rule."""

from __future__ import annotations

from typing import Any

import pytest
from featurestore_operator.api import OperatorConfig, parse_featurestore, resolve
from featurestore_operator.api.policy import account_id, check, immutable_changes

OPERATOR_GSA = "featurestore-operator@my-proj.iam.gserviceaccount.com"
CONFIG = OperatorConfig(
    default_provider="gcp", gcp_project="my-proj", gcp_region="us-central1", gcp_service_account=OPERATOR_GSA
)


def store(spec: dict[str, Any], namespace: str = "team-a", config: OperatorConfig = CONFIG):
    fs = parse_featurestore(
        {
            "apiVersion": "featurestore.kubeflow.org/v1alpha1",
            "kind": "FeatureStore",
            "metadata": {"name": "fs", "namespace": namespace},
            "spec": {"project": "p", **spec},
        }
    )
    return fs.model_copy(update={"spec": resolve(fs.spec, config)})


def problems(spec: dict[str, Any], namespace: str = "team-a", config: OperatorConfig = CONFIG) -> list[tuple[str, str]]:
    return check(store(spec, namespace, config), config.effective_policy)


ALLOWED = [
    ("defaults", {}),
    ("own GSA pattern", {"gcp": {"serviceAccount": "feast-team-a@my-proj.iam.gserviceaccount.com"}}),
    ("explicit operator project/region", {"gcp": {"project": "my-proj", "region": "us-central1"}}),
    ("size at the ceiling", {"onlineStore": {"memorystore": {"memorySizeGb": 32}}}),
    ("replicas at the ceiling", {"featureServer": {"replicas": 20}}),
    ("operator's own image", {"images": {"feast": "feastdev/feature-server:0.67.0"}}),
    ("local without GSA", {"provider": "local"}),
]

REFUSED = [
    # (case, spec, namespace, field, words the message must hold)
    (
        "operator's own GSA",
        {"gcp": {"serviceAccount": OPERATOR_GSA}},
        "team-a",
        "spec.gcp.serviceAccount",
        ["never be bound", "deniedServiceAccounts"],
    ),
    (
        "another namespace's GSA",
        {"gcp": {"serviceAccount": "feast-team-b@my-proj.iam.gserviceaccount.com"}},
        "team-a",
        "spec.gcp.serviceAccount",
        ["serviceAccountPatterns", "feast-team-a@my-proj.iam.gserviceaccount.com"],
    ),
    (
        "another GSA in a Kubeflow namespace over 24 characters: the default's valid hashed id is advised",
        {"gcp": {"serviceAccount": "feast-e2e@my-proj.iam.gserviceaccount.com"}},
        "kubeflow-user-example-com",
        "spec.gcp.serviceAccount",
        ["serviceAccountPatterns", f"{account_id('kubeflow-user-example-com')}@my-proj.iam.gserviceaccount.com"],
    ),
    (
        "GSA of a foreign project",
        {"gcp": {"serviceAccount": "feast-team-a@evil-proj.iam.gserviceaccount.com"}},
        "team-a",
        "spec.gcp.serviceAccount",
        ["serviceAccountPatterns"],
    ),
    (
        "GSA on provider local",
        {"provider": "local", "gcp": {"serviceAccount": "feast-team-a@my-proj.iam.gserviceaccount.com"}},
        "team-a",
        "spec.gcp.serviceAccount",
        ["provider local"],
    ),
    (
        "foreign project",
        {"gcp": {"project": "evil-proj"}},
        "team-a",
        "spec.gcp.project",
        ["allowedProjects", "my-proj"],
    ),
    ("foreign region", {"gcp": {"region": "asia-east1"}}, "team-a", "spec.gcp.region", ["allowedRegions"]),
    (
        "foreign network",
        {"onlineStore": {"memorystore": {"network": "projects/evil-proj/global/networks/x"}}},
        "team-a",
        "spec.onlineStore.memorystore.network",
        ["allowedNetworks"],
    ),
    (
        "size over the ceiling",
        {"onlineStore": {"memorystore": {"memorySizeGb": 300}}},
        "team-a",
        "spec.onlineStore.memorystore.memorySizeGb",
        ["maxMemorystoreSizeGb 32"],
    ),
    (
        "replicas over the ceiling",
        {"featureServer": {"autoscaling": {"maxReplicas": 100}}},
        "team-a",
        "spec.featureServer.autoscaling.maxReplicas",
        ["maxReplicas 20"],
    ),
    (
        "foreign image",
        {"images": {"feast": "evil.example/miner:1"}},
        "team-a",
        "spec.images.feast",
        ["allowedImagePrefixes"],
    ),
    ("system namespace", {}, "kube-system", "metadata.namespace", ["excludedNamespaces"]),
]


@pytest.mark.parametrize("case,spec", ALLOWED, ids=[c for c, _ in ALLOWED])
def test_allowed(case: str, spec: dict[str, Any]) -> None:
    assert problems(spec) == []


@pytest.mark.parametrize("case,spec,namespace,field,words", REFUSED, ids=[c[0] for c in REFUSED])
def test_refused(case: str, spec: dict[str, Any], namespace: str, field: str, words: list[str]) -> None:
    found = dict(problems(spec, namespace))
    assert field in found, found
    for word in words:
        assert word in found[field]


def test_policy_from_env_widens_and_narrows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "FSO_POLICY",
        """
allowedProjects: [my-proj, shared-proj]
serviceAccountPatterns:
  - "feast-{namespace}@{project}.iam.gserviceaccount.com"
  - "ml-*@shared-proj.iam.gserviceaccount.com"
allowedMemorystoreTiers: [BASIC]
allowedImagePrefixes: [europe-docker.pkg.dev/my-proj/]
excludedNamespaces: [kube-*, istio-system]
""",
    )
    config = OperatorConfig(default_provider="gcp", gcp_project="my-proj", gcp_region="us-central1")
    ok = {
        "gcp": {"project": "shared-proj", "serviceAccount": "ml-team@shared-proj.iam.gserviceaccount.com"},
        "onlineStore": {"memorystore": {"network": "projects/shared-proj/global/networks/default"}},
        "images": {"feast": "europe-docker.pkg.dev/my-proj/feast:1"},
    }
    assert problems(ok, config=config) == []
    assert [f for f, _ in problems({"onlineStore": {"memorystore": {"tier": "STANDARD_HA"}}}, config=config)] == [
        "spec.onlineStore.memorystore.tier"
    ]
    assert [f for f, _ in problems({}, "istio-system", config)] == ["metadata.namespace"]
    assert [f for f, _ in problems({}, "kube-foo", config)] == ["metadata.namespace"]


def test_policy_file(tmp_path: Any) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("maxReplicas: 2\n")
    config = OperatorConfig(policy_file=path, gcp_project="my-proj", gcp_region="us-central1", default_provider="gcp")
    assert [f for f, _ in problems({"featureServer": {"replicas": 3}}, config=config)] == [
        "spec.featureServer.replicas"
    ]


def test_byo_can_be_disabled() -> None:
    config = CONFIG.model_copy(update={"policy": CONFIG.policy.model_copy(update={"allow_byo": False})})
    found = problems({"offlineStore": {"gcs": {"existingBucket": "their-bucket"}}}, config=config)
    assert [f for f, _ in found] == ["spec.offlineStore.gcs.existingBucket"]


def test_authz_can_be_required() -> None:
    config = OperatorConfig.model_validate({**CONFIG.model_dump(), "policy": {"authz": {"required": True}}})
    found = problems({}, config=config)
    assert [f for f, _ in found] == ["spec.authz.type"]
    assert "authz.required" in found[0][1] and "kubernetes" in found[0][1]
    assert problems({"authz": {"type": "kubernetes"}}, config=config) == []
    assert problems({}) == []  # the default policy leaves spec.authz to the user


def test_immutable_changes() -> None:
    old = store({"onlineStore": {"memorystore": {"tier": "BASIC"}}})
    new = store(
        {"onlineStore": {"memorystore": {"tier": "STANDARD_HA", "connectMode": "DIRECT_PEERING", "memorySizeGb": 2}}}
    )
    assert sorted(f for f, _ in immutable_changes(old, new)) == [
        "spec.onlineStore.memorystore.connectMode",
        "spec.onlineStore.memorystore.tier",
    ]
    assert immutable_changes(old, store({"onlineStore": {"memorystore": {"memorySizeGb": 4}}})) == []


@pytest.mark.parametrize(
    "annotation",
    [
        "feast-team-a@my-proj.iam.gserviceaccount.com\n",  # "$" alone admits a trailing newline
        "feast-team-b@my-proj.iam.gserviceaccount.com",  # another namespace's
        OPERATOR_GSA,
        "feast-team-a@my-proj.iam.gserviceaccount.com/../x",
    ],
)
def test_default_editors_annotation_names_only_the_namespaces_own_gsa(annotation: str) -> None:
    """The notebook reader's GSA comes from default-editor's Workload Identity annotation, which a
    namespace editor can write: anything but the GSA the policy gives the namespace is refused."""
    from featurestore_operator.api.policy import notebook_gsa_problem

    policy = CONFIG.effective_policy
    assert notebook_gsa_problem(policy, "team-a", "feast-team-a@my-proj.iam.gserviceaccount.com") is None
    assert notebook_gsa_problem(policy, "team-a", annotation)
