"""The default GSA of a namespace ({accountId}, api/policy.account_id): a valid GCP service account id for
EVERY namespace Kubernetes accepts (a DNS label of 1-63 characters), bound only by that namespace."""

from __future__ import annotations

import re

from featurestore_operator.api import OperatorConfig, parse_featurestore, resolve
from featurestore_operator.api.policy import account_id, check
from featurestore_operator.api.spec import GSA_EMAIL_PATTERN
from hypothesis import given, settings
from hypothesis import strategies as st

#: GCP: "6-30 characters, lowercase letters, digits and hyphens, starting with a letter, not ending with a hyphen"
GSA_ID = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
#: a Kubernetes namespace name: RFC 1123 DNS label
namespaces = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z", fullmatch=True)
CONFIG = OperatorConfig(default_provider="gcp", gcp_project="my-proj", gcp_region="us-central1")


def problems(namespace: str, gsa: str, config: OperatorConfig = CONFIG) -> list[tuple[str, str]]:
    fs = parse_featurestore(
        {
            "apiVersion": "featurestore.kubeflow.org/v1alpha1",
            "kind": "FeatureStore",
            "metadata": {"name": "fs", "namespace": namespace},
            "spec": {"project": "p", "gcp": {"serviceAccount": gsa}},
        }
    )
    return check(fs.model_copy(update={"spec": resolve(fs.spec, config)}), config.effective_policy)


def email(namespace: str) -> str:
    return f"{account_id(namespace)}@my-proj.iam.gserviceaccount.com"


@settings(max_examples=400)
@given(namespaces)
def test_every_namespace_gets_a_valid_deterministic_id(namespace: str) -> None:
    gsa_id = account_id(namespace)
    assert GSA_ID.match(gsa_id), gsa_id
    assert account_id(namespace) == gsa_id
    assert re.match(GSA_EMAIL_PATTERN, email(namespace))  # spec.gcp.serviceAccount's own schema takes it
    # short namespaces keep the readable (and pre-existing) feast-<namespace>
    if len(namespace) <= 23:
        assert gsa_id == f"feast-{namespace}"
    else:
        assert len(gsa_id) == 30 and gsa_id.startswith(f"feast-{namespace[:7].rstrip('-')}-")


@settings(max_examples=400)
@given(namespaces)
def test_the_default_policy_binds_it_in_its_namespace_only(namespace: str) -> None:
    assert problems(namespace, email(namespace)) == []


@given(namespaces, namespaces)
def test_no_namespace_lands_on_another_ones_gsa(a: str, b: str) -> None:
    """The attack: name (or pick) a namespace whose default GSA is a victim namespace's."""
    if a != b:
        assert account_id(a) != account_id(b)
        assert [f for f, _ in problems(a, email(b))] == ["spec.gcp.serviceAccount"]


def test_short_namespace_named_like_a_hashed_id_is_not_that_id() -> None:
    """A 23/24-character namespace spelled as a long namespace's hashed id (feast-<7>-<hash>) never gets it."""
    victim = "kubeflow-user-example-com"
    forged = account_id(victim).removeprefix("feast-")
    assert len(forged) == 24
    assert account_id(forged) != account_id(victim)
    for cut in (forged, forged[:23]):
        assert [f for f, _ in problems(cut, email(victim))] == ["spec.gcp.serviceAccount"]


def test_kubeflow_namespace_advice_is_a_name_gcp_can_create() -> None:
    ns = "kubeflow-user-example-com"
    [(field, message)] = problems(ns, "feast-other@my-proj.iam.gserviceaccount.com")
    assert field == "spec.gcp.serviceAccount" and email(ns) in message
    assert GSA_ID.match(account_id(ns)) and account_id(ns).startswith("feast-kubeflo-")


def test_an_admin_pattern_gcp_cannot_hold_says_so() -> None:
    config = OperatorConfig.model_validate(
        {
            "default_provider": "gcp",
            "gcp_project": "my-proj",
            "gcp_region": "us-central1",
            "policy": {"serviceAccountPatterns": ["feast-{namespace}@{project}.iam.gserviceaccount.com"]},
        }
    )
    [(_, message)] = problems("kubeflow-user-example-com", "feast-other@my-proj.iam.gserviceaccount.com", config)
    assert "cannot create" in message and "{accountId}" in message
