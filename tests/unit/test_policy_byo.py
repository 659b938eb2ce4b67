"""Bring your own, custom cloud names and Memorystore AUTH/TLS in the admin policy (issue 25). Pure.

The attacker is a namespace editor: everything in the spec is theirs. These tests pin that
* an existingInstance/existingBucket is used only when the admin assigned it to the namespace;
* a custom instanceId/bucket stays inside the namespace's own names and is never a derived name
  (another store's), whatever admin pattern matches;
* a Memorystore without AUTH or TLS is refused unless the admin relaxed memorystoreSecurity;
and that each refusal names the field and the fix.
"""

from __future__ import annotations

from typing import Any

import pytest
from featurestore_operator.api import OperatorConfig, parse_featurestore, resolve
from featurestore_operator.api.policy import bucket_prefix, check, instance_prefix
from featurestore_operator.backends.naming import bucket_name, memorystore_instance_id

PROJECT, REGION = "my-proj", "us-central1"
BASE = OperatorConfig(default_provider="gcp", gcp_project=PROJECT, gcp_region=REGION)
MS = "spec.onlineStore.memorystore"


def cfg(**policy: Any) -> OperatorConfig:
    return BASE.model_copy(update={"policy": BASE.policy.model_validate({**BASE.policy.wire(), **policy})})


def store(spec: dict[str, Any], namespace: str = "team-a", name: str = "fs", config: OperatorConfig = BASE):
    fs = parse_featurestore(
        {
            "apiVersion": "featurestore.kubeflow.org/v1alpha1",
            "kind": "FeatureStore",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"project": "p", **spec},
        }
    )
    return fs.model_copy(update={"spec": resolve(fs.spec, config)})


def problems(spec: dict[str, Any], namespace: str = "team-a", config: OperatorConfig = BASE) -> dict[str, str]:
    return dict(check(store(spec, namespace, config=config), config.effective_policy))


def existing_instance(iid: str) -> dict[str, Any]:
    return {"onlineStore": {"memorystore": {"existingInstance": iid}}}


def existing_bucket(name: str) -> dict[str, Any]:
    return {"offlineStore": {"gcs": {"existingBucket": name}}}


def resource(iid: str) -> str:
    return f"projects/{PROJECT}/locations/{REGION}/instances/{iid}"


# --------------------------------------------------------------------------- bring your own


def test_victims_derived_instance_is_not_an_existing_instance_of_the_attacker() -> None:
    """Before: any instance id was accepted; the operator read its AUTH string for the attacker."""
    victim_id = memorystore_instance_id(store({}, namespace="victim", name="prod"))
    found = problems(existing_instance(victim_id), namespace="attacker")
    msg = found[f"{MS}.existingInstance"]
    assert resource(victim_id) in msg and "byoAssignments" in msg and "not assigned to namespace attacker" in msg


def test_unassigned_existing_bucket_is_refused() -> None:
    victim = bucket_name(store({}, namespace="victim", name="prod"))
    msg = problems(existing_bucket(victim), namespace="attacker")["spec.offlineStore.gcs.existingBucket"]
    assert victim in msg and "byoAssignments" in msg


@pytest.mark.parametrize(
    ("assignments", "namespace", "allowed"),
    [
        ({"team-a": {"instances": [resource("shared-redis")]}}, "team-a", True),
        ({"team-a": {"instances": [resource("shared-redis")]}}, "team-b", False),
        ({"team-*": {"instances": [resource("shared-redis")]}}, "team-b", True),
        ({"team-*": {"instances": [resource("shared-redis")]}}, "other", False),
        ({"*": {"instances": [resource("{namespace}-redis")]}}, "shared", True),
        ({"*": {"instances": [resource("{namespace}-redis")]}}, "team-a", False),
    ],
)
def test_instance_assignment_by_namespace_key_and_placeholder(assignments, namespace, allowed) -> None:
    found = problems(existing_instance("shared-redis"), namespace=namespace, config=cfg(byoAssignments=assignments))
    assert (f"{MS}.existingInstance" not in found) is allowed, found


def test_namespace_placeholder_confines_an_assignment_to_each_namespace() -> None:
    config = cfg(byoAssignments={"*": {"instances": [resource("{namespace}-redis")], "buckets": ["tf-{namespace}-*"]}})
    assert not problems(existing_instance("team-a-redis"), "team-a", config)
    assert f"{MS}.existingInstance" in problems(existing_instance("team-b-redis"), "team-a", config)
    assert not problems(existing_bucket("tf-team-a-data"), "team-a", config)
    assert "spec.offlineStore.gcs.existingBucket" in problems(existing_bucket("tf-team-b-data"), "team-a", config)


def test_assignment_names_the_project_and_region() -> None:
    """An assignment in one project does not assign the same id in another allowed project."""
    config = cfg(allowedProjects=[PROJECT, "other-proj"], byoAssignments={"team-a": {"instances": [resource("rr")]}})
    assert not problems(existing_instance("rr"), "team-a", config)
    moved = {**existing_instance("rr"), "gcp": {"project": "other-proj"}}
    assert f"{MS}.existingInstance" in problems(moved, "team-a", config)


def test_allow_byo_false_refuses_even_an_assigned_instance() -> None:
    """Issue 25 item 9: allowByo false refuses existingInstance (and existingBucket), assigned or not."""
    config = cfg(allowByo=False, byoAssignments={"*": {"instances": [resource("*")], "buckets": ["*"]}})
    found = problems({**existing_instance("shared-redis"), **existing_bucket("shared-bucket")}, "team-a", config)
    assert "allowByo: false" in found[f"{MS}.existingInstance"]
    assert "allowByo: false" in found["spec.offlineStore.gcs.existingBucket"]


# --------------------------------------------------------------------------- custom names


def test_custom_instance_id_equal_to_another_namespaces_derived_id_is_refused() -> None:
    """Before: accepted; the attacker's store created it first and the victim got a permanent Conflict."""
    victim_id = memorystore_instance_id(store({}, namespace="victim", name="prod"))
    msg = problems({"onlineStore": {"memorystore": {"instanceId": victim_id}}}, namespace="attacker")[
        f"{MS}.instanceId"
    ]
    assert "derives" in msg and instance_prefix("attacker") in msg and "remove the field" in msg


def test_custom_bucket_equal_to_another_namespaces_derived_bucket_is_refused() -> None:
    victim = bucket_name(store({}, namespace="victim", name="prod"))
    msg = problems({"offlineStore": {"gcs": {"bucket": victim}}}, namespace="attacker")["spec.offlineStore.gcs.bucket"]
    assert bucket_prefix("attacker") in msg


def test_derived_names_stay_refused_whatever_admin_pattern_matches() -> None:
    config = cfg(customNamePatterns={"instances": ["*"], "buckets": ["*"]})
    victim = store({}, namespace="victim", name="prod")
    spec = {
        "onlineStore": {"memorystore": {"instanceId": memorystore_instance_id(victim)}},
        "offlineStore": {"gcs": {"bucket": bucket_name(victim)}},
    }
    found = problems(spec, "attacker", config)
    assert "derives" in found[f"{MS}.instanceId"] and "derives" in found["spec.offlineStore.gcs.bucket"]
    assert not problems({"onlineStore": {"memorystore": {"instanceId": "anything-else"}}}, "attacker", config)


def test_namespace_prefixes_are_never_prefixes_of_each_other() -> None:
    """team-a must not take names of team-a-b (the plain "<namespace>-" prefix would let it)."""
    namespaces = ["a", "a-b", "a-b-c", "ab", "team-a", "team-a-b", "team-ab", "n1-a", "x" * 30, "fs", "fs-a"]
    for ns in namespaces:
        for other in namespaces:
            if ns != other:
                assert not instance_prefix(other).startswith(instance_prefix(ns)), (ns, other)
                assert not bucket_prefix(other).startswith(bucket_prefix(ns)), (ns, other)
        assert not instance_prefix(ns).startswith("fs-")
    # and no namespace's custom instance id is a derived one
    assert problems({"onlineStore": {"memorystore": {"instanceId": "fs-x-1"}}}, "fs")


@pytest.mark.parametrize(
    ("namespace", "field", "value", "ok"),
    [
        ("team-a", "instanceId", "n6-team-a-redis", True),
        ("team-a-b", "instanceId", "n6-team-a-redis", False),
        ("team-a", "instanceId", "n8-team-a-b-redis", False),
        ("team-a", "instanceId", "team-a-redis", False),
        ("team-a", "bucket", "team-a_offline", True),
        ("team-a", "bucket", "team-a-b_offline", False),
        ("team-a-b", "bucket", "team-a_offline", False),
        ("team-a", "bucket", "team-a-offline", False),
    ],
)
def test_custom_names_confined_to_the_namespace_prefix(namespace, field, value, ok) -> None:
    path = {"instanceId": f"{MS}.instanceId", "bucket": "spec.offlineStore.gcs.bucket"}[field]
    spec = (
        {"onlineStore": {"memorystore": {"instanceId": value}}}
        if field == "instanceId"
        else {"offlineStore": {"gcs": {"bucket": value}}}
    )
    found = problems(spec, namespace)
    assert (path not in found) is ok, found
    if not ok:
        assert "remove the field" in found[path] and "customNamePatterns" in found[path]


def test_admin_pattern_widens_custom_names() -> None:
    config = cfg(customNamePatterns={"instances": ["{namespace}-*"], "buckets": ["{project}-{namespace}-*"]})
    spec = {
        "onlineStore": {"memorystore": {"instanceId": "team-a-redis"}},
        "offlineStore": {"gcs": {"bucket": f"{PROJECT}-team-a-data"}},
    }
    assert not problems(spec, "team-a", config)
    assert set(problems(spec, "team-b", config)) == {f"{MS}.instanceId", "spec.offlineStore.gcs.bucket"}


# --------------------------------------------------------------------------- Memorystore AUTH/TLS


@pytest.mark.parametrize(("field", "knob"), [("authEnabled", "requireAuth"), ("transitEncryption", "requireTls")])
def test_memorystore_without_auth_or_tls_is_refused_by_default(field, knob) -> None:
    spec = {"onlineStore": {"memorystore": {field: False}}}
    msg = problems(spec)[f"{MS}.{field}"]
    assert f"memorystoreSecurity.{knob}" in msg and f"{MS}.{field}" in msg
    assert not problems(spec, config=cfg(memorystoreSecurity={knob: False}))


def test_defaults_ask_for_auth_and_tls() -> None:
    assert not problems({})
    assert not problems({"onlineStore": {"memorystore": {}}})


def test_backend_verdict_refuses_without_a_policy_and_when_byo_is_off() -> None:
    """backends/policy.byo_refusal is what the backends ask right before touching a brought resource."""
    from featurestore_operator.backends.policy import byo_refusal

    spec = existing_instance("shared-redis")
    assert byo_refusal(store(spec), None)  # no operator config: nothing is assigned
    on = cfg(byoAssignments={"team-a": {"instances": [resource("shared-redis")]}})
    assert byo_refusal(store(spec, config=on), on) is None
    off = cfg(allowByo=False, byoAssignments={"team-a": {"instances": [resource("shared-redis")]}})
    assert "allowByo: false" in (byo_refusal(store(spec, config=off), off) or "")


def test_a_namespace_too_long_for_its_prefix_is_told_so() -> None:
    ns = "kubeflow-user-a-very-long-example-address-com"  # 45 characters: n45-<ns>- is over 40
    msg = problems({"onlineStore": {"memorystore": {"instanceId": "n1-x-redis"}}}, ns)[f"{MS}.instanceId"]
    assert "too long" in msg and "customNamePatterns.instances" in msg and "remove the field" in msg


def test_byo_instance_entries_must_be_full_resource_names() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="instances"):
        cfg(byoAssignments={"team-a": {"instances": ["shared-redis"]}})
