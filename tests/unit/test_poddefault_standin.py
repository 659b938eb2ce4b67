"""Pins each rule of the PodDefault admission stand-in (tests/support/poddefaults.py) to the upstream
code it mirrors: kubeflow/dashboard components/poddefaults-webhooks/main.go at commit
d84246482d865a2bbd7e782ccafa6cd842bf6999 (line numbers below are of that file), and the webhook
configuration manifests/kustomize/base/mutating-webhook-configuration.yaml."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.poddefaults import (
    ANNOTATION_PREFIX,
    PodDefaultConflict,
    apply_poddefaults,
    selector_matches,
    webhook_acts_on,
)

NS = "kubeflow-user-example-com"


def pd(name: str, *, ns: str = NS, selector: dict[str, Any] | None = None, rv: str = "1", **spec: Any) -> dict:
    sel = {"matchLabels": {f"access-{name}": "true"}} if selector is None else selector
    return {
        "apiVersion": "kubeflow.org/v1alpha1",
        "kind": "PodDefault",
        "metadata": {"name": name, "namespace": ns, "resourceVersion": rv},
        "spec": {"selector": sel, "desc": name, **spec},
    }


def pod(*names: str, ns: str = NS, **container: Any) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "nb-0", "namespace": ns, "labels": {f"access-{n}": "true" for n in names}},
        "spec": {"containers": [{"name": "nb", "image": "jupyter", **container}]},
    }


def env(name: str, value: str) -> dict:
    return {"name": name, "value": value}


# -- selection: filterPodDefaults (main.go 89-114) and the webhook configuration ---------------


def test_namespace_selector_only_profile_namespaces() -> None:
    # mutating-webhook-configuration.yaml: namespaceSelector.matchLabels part-of: kubeflow-profile
    assert webhook_acts_on({"app.kubernetes.io/part-of": "kubeflow-profile"})
    assert not webhook_acts_on({"istio-injection": "enabled"})
    a = pd("a", env=[env("X", "1")])
    admitted = apply_poddefaults(pod("a"), [a], namespace_labels={})
    assert "env" not in admitted["spec"]["containers"][0]


def test_selector_match_labels_and_expressions() -> None:
    # main.go 93-101: metav1.LabelSelectorAsSelector + selector.Matches(pod labels)
    assert selector_matches({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"})
    assert not selector_matches({"matchLabels": {"a": "1"}}, {"a": "2"})
    assert selector_matches({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]}, {"a": "2"})
    assert not selector_matches({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["2"]}]}, {"a": "2"})
    assert selector_matches({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": ""})
    assert selector_matches({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {})


def test_empty_selector_selects_every_pod() -> None:
    # main.go 93: &pd.Spec.Selector is never nil; an empty LabelSelector is labels.Everything()
    admitted = apply_poddefaults(pod(), [pd("all", selector={}, env=[env("X", "1")])])
    assert admitted["spec"]["containers"][0]["env"] == [env("X", "1")]


def test_bad_selector_operator_refuses_the_pod() -> None:
    # main.go 94-95 + 669-673: a selector conversion error is returned as the admission response
    bad = pd("a", selector={"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]})
    with pytest.raises(PodDefaultConflict):
        apply_poddefaults(pod("a"), [bad])


def test_only_same_namespace() -> None:
    # main.go 104-107: a PodDefault of another namespace is skipped
    other = pd("a", ns="someone-else", env=[env("X", "1")])
    assert "env" not in apply_poddefaults(pod("a"), [other])["spec"]["containers"][0]


def test_exclude_annotation_and_mirror_pods_skip() -> None:
    # main.go 642-649
    p = pod("a")
    p["metadata"]["annotations"] = {f"{ANNOTATION_PREFIX}/exclude": "true"}
    assert "env" not in apply_poddefaults(p, [pd("a", env=[env("X", "1")])])["spec"]["containers"][0]
    p["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "x"}
    assert "env" not in apply_poddefaults(p, [pd("a", env=[env("X", "1")])])["spec"]["containers"][0]


# -- env: mergeEnv (main.go 234-269) / mergeEnvFrom (271-279) ----------------------------------


def test_env_same_name_other_value_refuses() -> None:
    # main.go 256-258: reflect.DeepEqual(found, v) false -> error -> pod refused (687-695)
    with pytest.raises(PodDefaultConflict, match="FEAST_FS_YAML_FILE_PATH"):
        apply_poddefaults(
            pod("a", "b"),
            [pd("a", env=[env("FEAST_FS_YAML_FILE_PATH", "/a")]), pd("b", env=[env("FEAST_FS_YAML_FILE_PATH", "/b")])],
        )


def test_env_against_the_containers_own_env_refuses() -> None:
    # main.go 235-238: the container's env seeds the map the PodDefaults are checked against
    with pytest.raises(PodDefaultConflict):
        apply_poddefaults(pod("a", env=[env("X", "mine")]), [pd("a", env=[env("X", "theirs")])])


def test_env_identical_duplicate_is_merged_once_and_zero_values_equal() -> None:
    # main.go 247-258: identical (DeepEqual) entries pass and are not appended twice; an omitted
    # value and "" decode to the same Go struct
    admitted = apply_poddefaults(pod("a", "b"), [pd("a", env=[env("X", "")]), pd("b", env=[{"name": "X"}])])
    assert admitted["spec"]["containers"][0]["env"] == [env("X", "")]


def test_env_from_is_appended_without_conflict() -> None:
    # main.go 271-279
    a = pd("a", envFrom=[{"configMapRef": {"name": "a"}}])
    b = pd("b", envFrom=[{"configMapRef": {"name": "b"}}])
    assert apply_poddefaults(pod("a", "b"), [a, b])["spec"]["containers"][0]["envFrom"] == [
        {"configMapRef": {"name": "a"}},
        {"configMapRef": {"name": "b"}},
    ]


# -- volumes and mounts: mergeVolumes (338-377), mergeVolumeMounts (283-334) --------------------


def test_volume_same_name_other_source_refuses() -> None:
    # main.go 360-362
    a = pd("a", volumes=[{"name": "feast", "configMap": {"name": "a"}}])
    b = pd("b", volumes=[{"name": "feast", "configMap": {"name": "b"}}])
    with pytest.raises(PodDefaultConflict, match="volumes"):
        apply_poddefaults(pod("a", "b"), [a, b])


def test_volume_pointer_bool_false_differs_from_omitted() -> None:
    # Go DeepEqual on *bool: nil != &false (optional is a pointer in ConfigMapVolumeSource)
    a = pd("a", volumes=[{"name": "v", "configMap": {"name": "c"}}])
    b = pd("b", volumes=[{"name": "v", "configMap": {"name": "c", "optional": False}}])
    with pytest.raises(PodDefaultConflict):
        apply_poddefaults(pod("a", "b"), [a, b])


def test_mount_same_path_other_name_refuses() -> None:
    # main.go 313-322: mounts are checked by mountPath as well as by name
    a = pd("a", volumeMounts=[{"name": "a", "mountPath": "/etc/feast"}])
    b = pd("b", volumeMounts=[{"name": "b", "mountPath": "/etc/feast"}])
    with pytest.raises(PodDefaultConflict, match="mount path"):
        apply_poddefaults(pod("a", "b"), [a, b])


def test_mount_same_name_other_path_refuses() -> None:
    # main.go 298-310
    a = pd("a", volumeMounts=[{"name": "v", "mountPath": "/a"}])
    b = pd("b", volumeMounts=[{"name": "v", "mountPath": "/b"}])
    with pytest.raises(PodDefaultConflict, match="conflict on v"):
        apply_poddefaults(pod("a", "b"), [a, b])


def test_mount_read_only_false_equals_omitted() -> None:
    # VolumeMount.ReadOnly is a plain bool: false and omitted are the same struct
    a = pd("a", volumeMounts=[{"name": "v", "mountPath": "/a", "readOnly": False}])
    b = pd("b", volumeMounts=[{"name": "v", "mountPath": "/a"}])
    admitted = apply_poddefaults(pod("a", "b"), [a, b])
    assert len(admitted["spec"]["containers"][0]["volumeMounts"]) == 1


# -- pod level: tolerations (428-467), imagePullSecrets (187-230), maps (471-492) ---------------


def test_tolerations_keyed_by_key_only() -> None:
    # main.go 430-453: origTolerations[t.Key]; same key, other effect conflicts
    a = pd("a", tolerations=[{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}])
    b = pd("b", tolerations=[{"key": "gpu", "operator": "Exists", "effect": "NoExecute"}])
    with pytest.raises(PodDefaultConflict, match="tolerations"):
        apply_poddefaults(pod("a", "b"), [a, b])


def test_image_pull_secrets_merged_by_name() -> None:
    a = pd("a", imagePullSecrets=[{"name": "reg"}])
    b = pd("b", imagePullSecrets=[{"name": "reg"}, {"name": "other"}])
    admitted = apply_poddefaults(pod("a", "b"), [a, b])
    assert admitted["spec"]["imagePullSecrets"] == [{"name": "reg"}, {"name": "other"}]


def test_annotations_and_labels_conflict() -> None:
    # main.go 143-156 + mergeMap 486-488
    with pytest.raises(PodDefaultConflict):
        apply_poddefaults(pod("a", "b"), [pd("a", annotations={"k": "1"}), pd("b", annotations={"k": "2"})])
    p = pod("a")
    p["metadata"]["labels"]["team"] = "x"
    with pytest.raises(PodDefaultConflict):
        apply_poddefaults(p, [pd("a", labels={"team": "y"})])


def test_mutation_annotation_names_each_poddefault() -> None:
    # main.go 569-572
    admitted = apply_poddefaults(pod("a"), [pd("a", rv="42")])
    assert admitted["metadata"]["annotations"][f"{ANNOTATION_PREFIX}/poddefault-a"] == "42"


# -- last/first wins: serviceAccountName (532-534), command/args (599-614) -----------------------


def test_service_account_last_poddefault_by_name_wins_without_conflict() -> None:
    # main.go 526-535: overwritten in list order, no conflict check; the list is sorted by name
    a, b = pd("a", serviceAccountName="sa-a"), pd("b", serviceAccountName="sa-b")
    assert apply_poddefaults(pod("a", "b"), [b, a])["spec"]["serviceAccountName"] == "sa-b"


def test_command_args_first_wins_never_over_the_containers_or_istio_proxy() -> None:
    # main.go 599-614
    a, b = pd("a", command=["a"], args=["x"]), pd("b", command=["b"])
    c = apply_poddefaults(pod("a", "b"), [a, b])["spec"]["containers"][0]
    assert (c["command"], c["args"]) == (["a"], ["x"])
    assert apply_poddefaults(pod("a", command=["own"]), [a])["spec"]["containers"][0]["command"] == ["own"]
    p = pod("a")
    p["spec"]["containers"].append({"name": "istio-proxy", "image": "proxy"})
    assert "command" not in apply_poddefaults(p, [a])["spec"]["containers"][1]


def test_sidecars_and_init_containers_merged_by_name() -> None:
    # mergeContainers main.go 381-424
    side = {"name": "s", "image": "one"}
    a, b = pd("a", sidecars=[side]), pd("b", sidecars=[{**side, "image": "two"}])
    with pytest.raises(PodDefaultConflict, match="containers"):
        apply_poddefaults(pod("a", "b"), [a, b])
    admitted = apply_poddefaults(pod("a"), [pd("a", initContainers=[side])])
    assert admitted["spec"]["initContainers"] == [side]


def test_input_pod_is_not_changed() -> None:
    p = pod("a")
    apply_poddefaults(p, [pd("a", env=[env("X", "1")])])
    assert "env" not in p["spec"]["containers"][0]
