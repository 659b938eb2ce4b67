# ruff: noqa: E501 - attack tables read best one case a line
"""Attacks on cost and memory (issue 25, item 5): a namespace editor's FeatureStore may not make the
operator run foreign images, more pods, bigger pods or more stores than the admin policy allows, nor
hand it free-form fields of any size. Each refusal names the field, the limit and the knob."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from featurestore_operator.api import FeatureStoreSpec, OperatorConfig, parse_featurestore, resolve
from featurestore_operator.api.bounds import (
    COUNT_KNOBS,
    POD_SOURCES,
    SIZED,
    UNCOSTED,
    Shape,
    image_allowed,
    model_types,
    shape,
)
from featurestore_operator.api.policy import AdminPolicy, check
from featurestore_operator.api.review import review
from featurestore_operator.api.spec import ResourceRequirements
from pydantic import BaseModel
from pydantic.alias_generators import to_camel

CONFIG = OperatorConfig(default_provider="local")


def store(spec: dict[str, Any], config: OperatorConfig = CONFIG, namespace: str = "team-a"):
    fs = parse_featurestore(manifest(spec, namespace))
    return fs.model_copy(update={"spec": resolve(fs.spec, config)})


def manifest(spec: dict[str, Any], namespace: str = "team-a", name: str = "fs") -> dict[str, Any]:
    return {
        "apiVersion": "featurestore.kubeflow.org/v1alpha1",
        "kind": "FeatureStore",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"project": "p", **spec},
    }


def problems(spec: dict[str, Any], config: OperatorConfig = CONFIG) -> list[tuple[str, str]]:
    return check(store(spec, config), config.effective_policy)


def refused(spec: dict[str, Any], field: str, *words: str, config: OperatorConfig = CONFIG) -> str:
    found = problems(spec, config)
    hits = [msg for path, msg in found if path == field]
    assert hits, f"{field} not refused; problems: {found}"
    for word in words:
        assert word in hits[0], hits[0]
    return hits[0]


# --- images ------------------------------------------------------------------------------------

EVIL = "evil.example.com/miner:1"
IMAGE_FIELDS = [
    ({"images": {"feast": EVIL}}, "spec.images.feast"),
    ({"images": {"redis": EVIL}}, "spec.images.redis"),
    ({"images": {"git": EVIL}}, "spec.images.git"),
    ({"compute": {"engine": "kubernetes", "kubernetes": {"image": EVIL}}}, "spec.compute.kubernetes.image"),
    ({"compute": {"engine": "ray", "ray": {"kubeRay": {"image": EVIL}}}}, "spec.compute.ray.kubeRay.image"),
    (
        {"compute": {"engine": "sparkApplication", "sparkApplication": {"image": EVIL}}},
        "spec.compute.sparkApplication.image",
    ),
]


@pytest.mark.parametrize(("spec", "field"), IMAGE_FIELDS, ids=[f for _, f in IMAGE_FIELDS])
def test_every_image_field_is_checked_against_the_prefixes(spec: dict[str, Any], field: str) -> None:
    refused(spec, field, EVIL, "allowedImagePrefixes")


@pytest.mark.parametrize(
    ("prefix", "image", "allowed"),
    [
        ("gcr.io/team", "gcr.io/team/feast:1", True),
        ("gcr.io/team", "gcr.io/team:1", True),
        ("gcr.io/team", "gcr.io/team@sha256:" + "a" * 64, True),
        ("gcr.io/team", "gcr.io/team-evil/x:1", False),
        ("gcr.io/team", "gcr.io/teamx:1", False),
        ("gcr.io/team/", "gcr.io/team/feast:1", True),
        ("gcr.io/team/", "gcr.io/team-evil/feast:1", False),
        ("gcr.io/team/", "gcr.io/team/../evil/x:1", False),
        ("gcr.io/team/", "gcr.io/team//x:1", False),
        ("gcr.io/team", "gcr.io/team@evil.example.com/x", False),
        ("gcr.io/team", "gcr.io/team:1/../../evil/x", False),
        ("gcr.io/team", "gcr.io/team:1@sha256:" + "b" * 64, True),
        ("gcr.io/team/", "gcr.io/team/Feast:1", False),
        ("feastdev/feature-server:0.67.0", "feastdev/feature-server:0.67.0", True),
        ("feastdev/feature-server:0.67.0", "feastdev/feature-server:0.67.0-evil", False),
        ("feastdev/feature-server:0.67.0", "docker.io/feastdev/feature-server:0.67.0", True),
        ("redis", "redis:7.2", True),
        ("redis", "docker.io/library/redis:7.2", True),
        ("redis", "redis.evil.com/x:1", False),
        ("docker.io/library/", "redis:7", True),
        ("docker.io/library/", "evil/redis:7", False),
    ],
)
def test_image_prefixes_match_on_a_path_boundary(prefix: str, image: str, allowed: bool) -> None:
    assert image_allowed(image, [prefix]) is allowed


def test_an_admin_prefix_admits_compute_images() -> None:
    config = OperatorConfig(default_provider="local", policy={"allowedImagePrefixes": ["gcr.io/team"]})
    spec = {"compute": {"engine": "ray", "ray": {"kubeRay": {"image": "gcr.io/team/ray:2"}}}}
    assert problems(spec, config) == []
    spec = {"compute": {"engine": "ray", "ray": {"kubeRay": {"image": "gcr.io/team-evil/ray:2"}}}}
    refused(spec, "spec.compute.ray.kubeRay.image", "gcr.io/team", config=config)


# --- counts ------------------------------------------------------------------------------------

COUNTS = [
    ({"featureServer": {"replicas": 21}}, "spec.featureServer.replicas", "maxReplicas"),
    ({"registry": {"server": {"replicas": 20, "autoscaling": {"maxReplicas": 21}}}}, "spec.registry.server.autoscaling.maxReplicas", "maxReplicas"),
    ({"ui": {"enabled": True, "replicas": 20, "autoscaling": {"minReplicas": 21, "maxReplicas": 21}}}, "spec.ui.autoscaling.minReplicas", "maxReplicas"),
    ({"compute": {"engine": "ray", "ray": {"kubeRay": {"workers": 21}}}}, "spec.compute.ray.kubeRay.workers", "maxComputePods"),
    ({"compute": {"engine": "sparkApplication", "sparkApplication": {"executor": {"instances": 21}}}}, "spec.compute.sparkApplication.executor.instances", "maxComputePods"),
    ({"compute": {"engine": "kubernetes", "kubernetes": {"maxParallelism": 21}}}, "spec.compute.kubernetes.maxParallelism", "maxComputePods"),
    ({"materialization": {"parallelism": 21}}, "spec.materialization.parallelism", "maxComputePods"),
]  # fmt: skip


@pytest.mark.parametrize(("spec", "field", "knob"), COUNTS, ids=[f for _, f, _ in COUNTS])
def test_every_pod_count_has_a_ceiling(spec: dict[str, Any], field: str, knob: str) -> None:
    refused(spec, field, "21", knob, "policy.")


def test_the_admin_raises_a_ceiling() -> None:
    config = OperatorConfig(default_provider="local", policy={"maxComputePods": 50})
    small = {"limits": {"cpu": "500m", "memory": "1Gi"}}
    spec = {"compute": {"engine": "ray", "ray": {"kubeRay": {"workers": 50, "workerResources": small}}}}
    assert problems(spec, config) == []


# --- resources ---------------------------------------------------------------------------------

BIG_CPU = {"requests": {"cpu": "1"}, "limits": {"cpu": "64"}}
RESOURCES = [
    ({"featureServer": {"resources": BIG_CPU}}, "spec.featureServer.resources.limits.cpu"),
    ({"registry": {"server": {"resources": BIG_CPU}}}, "spec.registry.server.resources.limits.cpu"),
    ({"offlineServer": {"enabled": True, "resources": BIG_CPU}}, "spec.offlineServer.resources.limits.cpu"),
    ({"ui": {"enabled": True, "resources": BIG_CPU}}, "spec.ui.resources.limits.cpu"),
    ({"materialization": {"resources": BIG_CPU}}, "spec.materialization.resources.limits.cpu"),
    ({"onlineStore": {"inCluster": {"resources": BIG_CPU}}}, "spec.onlineStore.inCluster.resources.limits.cpu"),
    ({"compute": {"engine": "kubernetes", "kubernetes": {"resources": BIG_CPU}}}, "spec.compute.kubernetes.resources.limits.cpu"),
    ({"compute": {"engine": "ray", "ray": {"kubeRay": {"headResources": BIG_CPU}}}}, "spec.compute.ray.kubeRay.headResources.limits.cpu"),
    ({"compute": {"engine": "ray", "ray": {"kubeRay": {"workerResources": BIG_CPU}}}}, "spec.compute.ray.kubeRay.workerResources.limits.cpu"),
    ({"compute": {"engine": "sparkApplication", "sparkApplication": {"driver": {"cores": 64}}}}, "spec.compute.sparkApplication.driver.cores"),
    ({"compute": {"engine": "sparkApplication", "sparkApplication": {"executor": {"memory": "900g"}}}}, "spec.compute.sparkApplication.executor.memory"),
]  # fmt: skip


@pytest.mark.parametrize(("spec", "field"), RESOURCES, ids=[f for _, f in RESOURCES])
def test_every_component_has_a_per_pod_resource_ceiling(spec: dict[str, Any], field: str) -> None:
    refused(spec, field, "maxPodResources", "policy.maxPodResources")


def test_resources_the_admin_did_not_list_are_refused() -> None:
    gpu = {"limits": {"nvidia.com/gpu": "8"}}
    refused(
        {"featureServer": {"resources": gpu}}, "spec.featureServer.resources.limits.nvidia.com/gpu", "maxPodResources"
    )
    config = OperatorConfig(
        default_provider="local", policy={"maxPodResources": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "8"}}
    )
    assert problems({"featureServer": {"resources": gpu}}, config) == []


def test_the_store_total_is_bounded() -> None:
    # 20 replicas (allowed) x 8 CPUs (allowed per pod) = 160 CPUs: over the per-store total
    spec = {"featureServer": {"replicas": 20, "resources": {"limits": {"cpu": "8", "memory": "8Gi"}}}}
    msg = refused(spec, "spec", "maxStoreResources", "cpu", "160")
    assert "policy.maxStoreResources" in msg
    # autoscaling counts at its maximum; the Ray workers count each
    spec = {
        "compute": {
            "engine": "ray",
            "ray": {"kubeRay": {"workers": 20, "workerResources": {"limits": {"memory": "30Gi"}}}},
        }
    }
    refused(spec, "spec", "maxStoreResources", "memory")


def test_volumes_are_bounded() -> None:
    refused(
        {"onlineStore": {"inCluster": {"storage": {"size": "10Ti"}}}},
        "spec.onlineStore.inCluster.storage.size",
        "maxVolumeSize",
    )
    refused(
        {"offlineStore": {"inCluster": {"storage": {"size": "10Ti"}}}},
        "spec.offlineStore.inCluster.storage.size",
        "maxVolumeSize",
    )


def test_defaults_and_examples_fit() -> None:
    assert problems({}) == []
    for engine in ("kubernetes", "ray", "sparkApplication"):
        assert problems({"compute": {"engine": engine}}) == [], engine


# --- free-form fields and the whole spec -------------------------------------------------------

FREE_FORM = [
    ({"featureServer": {"pod": {"affinity": {"nodeAffinity": {"x": ["y" * 100] * 200}}}}}, "spec.featureServer.pod.affinity.nodeAffinity"),
    ({"featureServer": {"pod": {"annotations": {f"a{i}": "v" * 100 for i in range(200)}}}}, "spec.featureServer.pod.annotations"),
    ({"materialization": {"pod": {"nodeSelector": {f"k{i}": "v" * 60 for i in range(300)}}}}, "spec.materialization.pod.nodeSelector"),
    ({"onlineStore": {"inCluster": {"pod": {"labels": {f"k{i}": "v" * 60 for i in range(300)}}}}}, "spec.onlineStore.inCluster.pod.labels"),
    ({"featureServer": {"pod": {"env": [{"name": f"E{i}", "value": "v" * 1000} for i in range(30)]}}}, "spec.featureServer.pod.env"),
]  # fmt: skip


@pytest.mark.parametrize(("spec", "field"), FREE_FORM, ids=[f for _, f in FREE_FORM])
def test_free_form_fields_are_bounded(spec: dict[str, Any], field: str) -> None:
    refused(spec, field, "maxFreeFormBytes", "policy.maxFreeFormBytes")


def test_an_oversized_spec_is_refused_before_it_is_parsed() -> None:
    big = manifest({"featureServer": {"pod": {"annotations": {f"a{i}": "v" * 1000 for i in range(100)}}}})
    assert len(json.dumps(big["spec"])) > 64 * 1024
    found = review(big, CONFIG)
    assert [p for p, _ in found] == ["spec"], found
    assert "maxSpecBytes" in found[0][1] and "65536" in found[0][1]
    config = OperatorConfig(default_provider="local", policy={"maxSpecBytes": 1 << 20, "maxFreeFormBytes": 1 << 20})
    assert review(big, config) == []


# --- stores per namespace ----------------------------------------------------------------------


def test_stores_per_namespace() -> None:
    from featurestore_operator.api.bounds import namespace_quota

    policy = OperatorConfig(default_provider="local", policy={"maxStoresPerNamespace": 2}).effective_policy
    older = [("2026-01-01T00:00:00Z", "a"), ("2026-01-01T00:00:00Z", "b")]
    fs = store({})
    assert namespace_quota(fs, "2026-01-02T00:00:00Z", older, policy)[0][0] == "metadata.name"
    assert "maxStoresPerNamespace" in namespace_quota(fs, "2026-01-02T00:00:00Z", older, policy)[0][1]
    # the earliest stores keep running: only those created before this one count
    assert namespace_quota(fs, "2026-01-01T00:00:00Z", [older[1]], policy) == []


# --- pod annotations and labels that change the sandbox or the mesh (issue 25, item 9) ----------

SANDBOX_ANNOTATIONS = [
    "container.seccomp.security.alpha.kubernetes.io/feature-server",
    "container.seccomp.security.alpha.kubernetes.io/istio-proxy",
    "seccomp.security.alpha.kubernetes.io/pod",
    "container.apparmor.security.beta.kubernetes.io/feature-server",
    "apparmor.security.beta.kubernetes.io/pod",
    "kubernetes.io/psp",
    "pod-security.kubernetes.io/enforce",
    "io.kubernetes.cri-o.userns-mode",
    "io.kubernetes.cri-o.Devices",
    "io.containerd.cri.runtime-handler",
    "io.katacontainers.config.hypervisor.enable_debug",
    "dev.gvisor.spec.mount.x",
    "sidecar.istio.io/inject",
    "sidecar.istio.io/userVolume",
    "inject.istio.io/templates",
    "istio.io/rev",
    "proxy.istio.io/config",
    "traffic.sidecar.istio.io/excludeInboundPorts",
    "featurestore.kubeflow.org/config-hash",
]
SANDBOX_LABELS = [
    "istio.io/rev",
    "sidecar.istio.io/inject",
    "security.istio.io/tlsMode",
    "app.kubernetes.io/instance",
    "featurestore.kubeflow.org/owner",
    "node-role.kubernetes.io/control-plane",
]


@pytest.mark.parametrize("key", SANDBOX_ANNOTATIONS)
def test_annotations_that_change_the_sandbox_or_the_mesh_are_refused(key: str) -> None:
    with pytest.raises(Exception, match="not allowed") as err:
        store({"featureServer": {"pod": {"annotations": {key: "unconfined"}}}})
    assert "spec.featureServer.pod.annotations" in str(err.value)


@pytest.mark.parametrize("key", SANDBOX_LABELS)
def test_labels_that_change_the_mesh_or_our_selectors_are_refused(key: str) -> None:
    with pytest.raises(Exception, match="cannot be overridden|not allowed") as err:
        store({"ui": {"pod": {"labels": {key: "x"}}}})
    assert "spec.ui.pod.labels" in str(err.value)


@pytest.mark.parametrize(
    "key",
    [
        "cluster-autoscaler.kubernetes.io/safe-to-evict",
        "sidecar.istio.io/proxyCPU",
        "prometheus.io/scrape",
        "kubectl.kubernetes.io/default-container",
    ],
)
def test_harmless_annotations_pass(key: str) -> None:
    store({"featureServer": {"pod": {"annotations": {key: "true"}}}})


# --- the generic guard: every field of the spec tree, including fields added later -------------

Chain = list[tuple[type[BaseModel], str, bool]]  # (model, field, holds a list)


def field_chains(cls: type[BaseModel], chain: Chain | None = None) -> Iterator[tuple[Chain, Shape, Any]]:
    """Every field reachable from ``cls``: the chain of (model, field) leading to it, its shape and type."""
    for name, info in cls.model_fields.items():
        here = [*(chain or []), (cls, name, "list[" in str(info.annotation))]
        yield here, shape(info.annotation), info.annotation
        for sub in model_types(info.annotation):
            yield from field_chains(sub, here)


def inject(chain: Chain, value: Any) -> tuple[Any, str]:
    """A resolved default store with ``value`` put at ``chain`` (intermediate models made with their
    defaults, unvalidated); returns the store and the field's wire path."""
    fs = store({})
    owner: BaseModel = fs.spec
    path = "spec"
    for i, (cls, name, is_list) in enumerate(chain):
        alias = cls.model_fields[name].alias or to_camel(name)
        path += f".{alias}"
        if i == len(chain) - 1:
            object.__setattr__(owner, name, value)
            break
        child = getattr(owner, name)
        sub = chain[i + 1][0]
        if is_list:
            child = sub.model_construct()
            object.__setattr__(owner, name, [child])
            path += "[0]"
        elif child is None or not isinstance(child, sub):
            child = sub.model_construct()
            object.__setattr__(owner, name, child)
        owner = child
    return fs, path


def chains(pred: Callable[[Chain, Shape, Any], bool]) -> list[tuple[Chain, str]]:
    found = [(c, s, t) for c, s, t in field_chains(FeatureStoreSpec) if pred(c, s, t)]
    return [(c, ".".join(f"{m.__name__}.{n}" for m, n, _ in c)) for c, _, _ in found]


def refused_at(fs: Any, path: str, *words: str, config: OperatorConfig = CONFIG) -> None:
    found = check(fs, config.effective_policy)
    hits = [msg for p, msg in found if p == path or p.startswith(f"{path}.")]
    assert hits, f"{path} not refused; problems: {found}"
    for word in words:
        assert any(word in h for h in hits), hits


def key(chain: Chain) -> tuple[str, str]:
    return chain[-1][0].__name__, chain[-1][1]


def test_every_number_in_the_spec_tree_is_classified() -> None:
    """A new integer field fails here until it is a bounded count, a pod size, or listed as costless."""
    numbers = chains(lambda c, s, t: s.number)
    assert len(numbers) > 20
    unclassified = [name for c, name in numbers if key(c) not in {**COUNT_KNOBS, **SIZED, **UNCOSTED}]
    assert not unclassified, f"classify in api/bounds.py (COUNT_KNOBS, SIZED or UNCOSTED): {unclassified}"
    knobs = set(AdminPolicy.model_fields)
    assert set(COUNT_KNOBS.values()) <= knobs
    assert len(chains(lambda c, s, t: s.image)) >= 6, "ImageRef fields lost their marker (api/markers.IMAGE)"
    resources = chains(lambda c, s, t: ResourceRequirements in model_types(t))
    assert [n for c, n in resources if key(c) not in POD_SOURCES] == [], "add to api/bounds.POD_SOURCES"


COUNT_CHAINS = chains(lambda c, s, t: key(c) in COUNT_KNOBS)


@pytest.mark.parametrize(("chain", "name"), COUNT_CHAINS, ids=[n for _, n in COUNT_CHAINS])
def test_every_count_is_refused_over_its_knob(chain: Chain, name: str) -> None:
    knob = COUNT_KNOBS[key(chain)]
    policy = CONFIG.effective_policy
    limit = getattr(policy.bounds, knob, None) or getattr(policy, knob)
    fs, path = inject(chain, limit + 1)
    refused_at(fs, path, to_camel(knob))


IMAGE_CHAINS = chains(lambda c, s, t: s.image)


@pytest.mark.parametrize(("chain", "name"), IMAGE_CHAINS, ids=[n for _, n in IMAGE_CHAINS])
def test_every_image_field_is_refused_outside_the_prefixes(chain: Chain, name: str) -> None:
    assert len(IMAGE_CHAINS) >= 6
    fs, path = inject(chain, EVIL)
    refused_at(fs, path, "allowedImagePrefixes")


FREE_CHAINS = chains(lambda c, s, t: s.free_form)


@pytest.mark.parametrize(("chain", "name"), FREE_CHAINS, ids=[n for _, n in FREE_CHAINS])
def test_every_free_form_field_is_refused_over_its_size(chain: Chain, name: str) -> None:
    big = [{"k": "v" * 100}] * 200 if chain[-1][2] else {f"k{i}": "v" * 100 for i in range(200)}
    fs, path = inject(chain, big)
    refused_at(fs, path, "maxFreeFormBytes")


RESOURCE_CHAINS = chains(lambda c, s, t: key(c) in POD_SOURCES)


@pytest.mark.parametrize(("chain", "name"), RESOURCE_CHAINS, ids=[n for _, n in RESOURCE_CHAINS])
def test_every_pod_size_is_refused_over_the_per_pod_ceiling(chain: Chain, name: str) -> None:
    fs, path = inject(chain, ResourceRequirements(limits={"memory": "1Ti"}))
    refused_at(fs, f"{path}.limits.memory", "maxPodResources")


def test_the_operator_keeps_only_metadata_status_and_size_of_an_oversized_spec() -> None:
    from featurestore_operator.api import SpecError
    from featurestore_operator.api.review import resolved
    from featurestore_operator.reconcile.controller import slim_body

    big = manifest({"featureServer": {"pod": {"annotations": {f"a{i}": "v" * 1000 for i in range(100)}}}})
    big["status"] = {"phase": "Ready"}
    kept = slim_body(big)
    assert kept["spec"] == {} and kept["status"] == {"phase": "Ready"} and kept["metadata"]["name"] == "fs"
    assert len(json.dumps(kept)) < 1024
    with pytest.raises(SpecError) as err:
        resolved(kept, CONFIG)
    assert err.value.problems[0][0] == "spec" and "maxSpecBytes" in err.value.problems[0][1]
    assert str(len(json.dumps(big["spec"], separators=(",", ":")))) in err.value.problems[0][1]
    small = manifest({})
    assert slim_body(small)["spec"] == small["spec"]


@pytest.mark.parametrize("where", ["labels", "annotations"])
def test_labels_and_annotations_count_with_the_spec(where: str) -> None:
    """Attack (the spec flood's class): a small spec with ~0.7 MB of labels or 250 KiB of annotations
    (the API server's cap for annotations; labels have none but the object size) on each of many
    stores. maxSpecBytes bounds what the author writes, metadata included, at admission and in what
    the operator keeps; kubectl's last-applied copy (the spec again) is not counted."""
    from featurestore_operator.reconcile.controller import slim_body

    big = manifest({})
    many = 5000 if where == "labels" else 250
    value = "v" * 63 if where == "labels" else "v" * 1000
    big["metadata"][where] = {f"example.com/k{i}": value for i in range(many)}
    found = review(big, CONFIG)
    assert [p for p, _ in found] == ["spec"] and "maxSpecBytes" in found[0][1], found
    assert "labels and annotations" in found[0][1]
    kept = slim_body(big)
    assert len(json.dumps(kept)) < 2048 and not kept["metadata"].get(where), "the operator kept the metadata"
    ok = manifest({})
    ok["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": "x" * 60000, "a": "b"}
    ok["metadata"]["labels"] = {"team": "a"}
    assert review(ok, CONFIG) == [] and slim_body(ok)["metadata"]["labels"] == {"team": "a"}


# --- the reconcile pass (fake API server): refused before anything is created ------------------


def test_a_store_over_the_namespace_quota_is_refused_and_nothing_is_created() -> None:
    from tests.unit.test_reconcile_pipeline import World, store

    w = World(store())
    w.body  # noqa: B018 - the store exists
    w.deps.stores = lambda ns: [("2026-01-01T00:00:00Z", f"older-{i}") for i in range(10)]
    obj = w.kube.objects[("FeatureStore", "team-a", "demo")]
    obj["metadata"]["creationTimestamp"] = "2026-02-01T00:00:00Z"
    assert w.reconcile().phase == "Failed"
    status, reason, message = w.condition("Spec")
    assert (status, reason) == ("False", "PolicyViolation") and "maxStoresPerNamespace 10" in message
    assert not [k for m, k in w.kube.writes if not k.startswith("FeatureStore")]
    # one of the ten goes: the store is served
    w.deps.stores = lambda ns: [("2026-01-01T00:00:00Z", f"older-{i}") for i in range(9)]
    assert w.reconcile().phase != "Failed"


def test_an_oversized_body_the_operator_dropped_is_refused_naming_the_knob() -> None:
    from featurestore_operator.reconcile.controller import slim_body

    from tests.unit.test_reconcile_pipeline import World, core, store

    big = store(featureServer={"pod": {"affinity": {"nodeAffinity": {"x": [{"a": {}}] * 10000}}}})
    w = World(big)
    result = asyncio.run(core.run_pass(w.deps, slim_body(w.body)))
    assert result.phase == "Failed"
    status, reason, message = w.condition("Spec")
    assert (status, reason) == ("False", "InvalidSpec") and "maxSpecBytes 65536" in message
    assert not [k for m, k in w.kube.writes if not k.startswith("FeatureStore")]


def test_every_knob_is_in_the_chart_values_and_the_docs_with_its_default() -> None:
    from pathlib import Path

    import yaml
    from featurestore_operator.api.bounds import CostBounds

    root = Path(__file__).resolve().parents[2]
    values = yaml.safe_load((root / "charts/featurestore-operator/values.yaml").read_text())["policy"]
    docs = (root / "docs/security/admin-policy-bounds.md").read_text()
    defaults = CostBounds().wire()
    for knob, default in defaults.items():
        assert values.get(knob) == default, f"values.yaml policy.{knob}"
        assert f"`{knob}`" in docs, f"docs/security/admin-policy-bounds.md lacks {knob}"
