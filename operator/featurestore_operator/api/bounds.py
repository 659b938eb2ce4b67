"""The admin policy's bounds on everything a FeatureStore makes cost: money (pods, CPU, memory,
volumes, images pulled from anywhere) and the operator's own memory (free-form fields, the whole
spec, stores per namespace). Pure.

The rules are *generic*: :func:`walk` visits every field of the spec model tree, so a field added
later is covered by its type, not by remembering to list it here:

* every field typed :data:`~.spec.ImageRef` (marked :data:`~.markers.IMAGE`) is checked against
  the image prefixes (:func:`image_allowed`: on a path boundary, Docker Hub names normalised);
* every field typed as a dict, a list or ``Any`` (affinity, annotations, labels, nodeSelector, env,
  tolerations, redisConfigs, resource maps, ...) serialises to at most ``maxFreeFormBytes``;
* every integer field is either a pod count bounded by a knob (:data:`COUNT_KNOBS`), a pod size
  (:data:`POD_SOURCES`, bounded per pod by ``maxPodResources`` and per store by
  ``maxStoreResources``), a volume size, or listed in :data:`UNCOSTED` with the reason it costs
  nothing; ``tests/unit/test_policy_bounds.py`` walks the model tree and fails on an unclassified one.

``maxSpecBytes`` bounds the serialised spec as a whole, with the store's labels and annotations (kept
with it): the admission webhook refuses a larger one before parsing it, and the operator drops the
spec, labels and annotations of a larger stored object as soon as it reads it
(``reconcile.controller.slim_body``), keeping only the rest of its metadata, status and a refusal.
"""

from __future__ import annotations

import contextlib
import json
import re
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, Field
from pydantic.alias_generators import to_camel
from pydantic_core import to_json

from .base import ApiModel
from .compute import SparkDriverSpec, SparkExecutorSpec
from .markers import Image
from .spec import InClusterStorage, Quantity, ResourceRequirements

if TYPE_CHECKING:
    from .resource import FeatureStore

Problem = tuple[str, str]


class Limits(typing.Protocol):
    """What the bounds read of the admin policy (``policy.EffectivePolicy``; a protocol, not an
    import: the policy module imports this one)."""

    @property
    def bounds(self) -> CostBounds: ...
    @property
    def image_prefixes(self) -> list[str]: ...


HELM = "Helm value policy."

DEFAULT_POD_RESOURCES = {"cpu": "8", "memory": "32Gi", "ephemeral-storage": "50Gi"}
DEFAULT_STORE_RESOURCES = {"cpu": "32", "memory": "128Gi", "ephemeral-storage": "200Gi"}


class CostBounds(ApiModel):
    """The admin policy's cost and size knobs (a section of AdminPolicy, flat in its wire form)."""

    max_compute_pods: int = Field(default=20, ge=1, le=1000)
    """Most pods a compute engine runs at once: Ray workers, Spark executors, kubernetes-engine
    parallelism."""
    max_pod_resources: dict[str, Quantity] = Field(default_factory=lambda: dict[str, str | int](DEFAULT_POD_RESOURCES))
    """Largest request or limit of each resource in one pod of a store (any component, compute
    engines included). Resources not listed (e.g. nvidia.com/gpu) are refused: list them to allow."""
    max_store_resources: dict[str, Quantity] = Field(
        default_factory=lambda: dict[str, str | int](DEFAULT_STORE_RESOURCES)
    )
    """Most of each resource all pods of one store may ask for at their largest scale (replicas or
    autoscaling maximum x the larger of request and limit), counting what the spec sets."""
    max_volume_size: Quantity = "100Gi"
    """Largest PersistentVolumeClaim a store may ask for (in-cluster Redis and offline volume)."""
    max_stores_per_namespace: int = Field(default=10, ge=1, le=10000)
    """FeatureStores one namespace may run; later ones (by creation time) are refused."""
    max_free_form_bytes: int = Field(default=16384, ge=256, le=1 << 20)
    """Largest serialised size of one free-form field (affinity, annotations, labels, nodeSelector,
    env, tolerations, redisConfigs, ...)."""
    max_spec_bytes: int = Field(default=65536, ge=4096, le=1 << 20)
    """Largest serialised spec (JSON), its labels and annotations counted with it. The admission
    webhook refuses larger ones unparsed; the operator keeps only the rest of the metadata of a larger
    stored object (it never holds big specs or big labels)."""


# --- quantities ------------------------------------------------------------------------------

_SUFFIX: dict[str, Decimal | int] = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
}
_QTY = re.compile(r"^\+?([0-9.]+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][-+]?[0-9]+)?$")


def quantity(q: str | int) -> Decimal:
    """A Kubernetes quantity as a number (500m -> 0.5, 1Gi -> 1073741824)."""
    m = _QTY.match(str(q))
    if not m:
        raise ValueError(f"{q!r} is not a Kubernetes quantity")
    try:
        number, suffix = Decimal(m.group(1)), m.group(2) or ""
    except InvalidOperation:
        raise ValueError(f"{q!r} is not a Kubernetes quantity") from None
    if suffix[:1] in ("e", "E"):
        return number * Decimal(10) ** int(suffix[1:])
    return number * _SUFFIX[suffix]


def _spark_memory(text: str) -> Decimal:
    """Spark's JVM memory notation (binary units) plus the pod's memory overhead Spark adds on
    Kubernetes (spark.kubernetes.memoryOverheadFactor 0.1, at least 384 MiB)."""
    units = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
    heap = Decimal(int(text[:-1]) * units[text[-1]])
    return heap + max(heap / 10, Decimal(384 * 2**20))


# --- images ----------------------------------------------------------------------------------


def _normalised(ref: str) -> str:
    """``ref`` with Docker Hub's implicit registry and library/ namespace spelled out, so that
    ``redis``, ``library/redis`` and ``docker.io/library/redis`` are one name."""
    first, sep, rest = ref.partition("/")
    if not sep or ("." not in first and ":" not in first and first != "localhost"):
        ref, first, rest = f"docker.io/{ref}", "docker.io", ref
    if first in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        if rest and "/" not in rest:
            rest = f"library/{rest}"
        ref = f"docker.io/{rest}"
    return ref


#: distribution/reference's grammar (reference/regexp.go): a name, an optional tag, an optional digest
_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_LABEL}(?:\.{_LABEL})*(?::[0-9]+)?"
_PATH = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REFERENCE = re.compile(
    rf"^(?:{_DOMAIN}/)?{_PATH}(?:/{_PATH})*(?::[\w][\w.-]{{0,127}})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$"
)


def _well_formed(ref: str) -> bool:
    """A reference a container runtime parses as one image: no empty, ``.`` or ``..`` path component,
    no text after a tag or digest that a lax parser (or a registry proxy) could read otherwise."""
    return bool(_REFERENCE.match(ref))


def image_allowed(image: str, prefixes: list[str]) -> bool:
    """Whether ``image`` is under one of ``prefixes``. A prefix ending in ``/``, ``:`` or ``@``
    matches as text; any other prefix names a whole repository (or registry/namespace) and matches
    only up to a boundary: ``gcr.io/team`` admits ``gcr.io/team``, ``gcr.io/team:TAG``,
    ``gcr.io/team@DIGEST`` and ``gcr.io/team/...``, never ``gcr.io/team-evil/...``. An image that is
    not a well-formed reference matches nothing."""
    if not _well_formed(image):
        return False
    ref = _normalised(image)
    for prefix in prefixes:
        if not prefix:
            continue
        p = _normalised(prefix)
        if prefix.endswith(("/", ":", "@")):
            if ref.startswith(p if p.endswith(prefix[-1]) else p + prefix[-1]):
                return True
        elif ref == p or ref.startswith((f"{p}/", f"{p}:", f"{p}@")):
            return True
    return False


# --- the generic walk ------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """What a field's type says about its cost."""

    image: bool = False
    free_form: bool = False
    number: bool = False


def shape(annotation: Any) -> Shape:
    """Classify a field's type (through Optional, unions and Annotated)."""
    image = free_form = number = False
    stack = [annotation]
    while stack:
        t = stack.pop()
        origin = typing.get_origin(t)
        if origin is Annotated:
            image |= any(isinstance(m, Image) for m in t.__metadata__)
            stack.append(typing.get_args(t)[0])
        elif origin in (typing.Union, types.UnionType):
            stack += list(typing.get_args(t))
        elif t is Any or origin in (dict, list) or t in (dict, list):
            free_form = True
        elif t in (int, float):
            number = True
    return Shape(image, free_form, number)


def model_types(annotation: Any) -> list[type[BaseModel]]:
    """The models a field may hold (directly, in a list or as dict values)."""
    found, stack = [], [annotation]
    while stack:
        t = stack.pop()
        if isinstance(t, type) and issubclass(t, BaseModel):
            found.append(t)
        else:
            stack += list(typing.get_args(t))
    return found


@dataclass(frozen=True)
class Visit:
    path: str
    owner: BaseModel
    name: str
    value: Any
    shape: Shape


def walk(model: BaseModel, path: str) -> Iterator[Visit]:
    """Every set field of ``model`` and of the models inside it, with its wire path."""
    for name, info in type(model).model_fields.items():
        value = getattr(model, name, None)
        if value is None:
            continue
        here = f"{path}.{info.alias or to_camel(name)}"
        yield Visit(here, model, name, value, shape(info.annotation))
        if isinstance(value, BaseModel):
            yield from walk(value, here)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, BaseModel):
                    yield from walk(item, f"{here}[{i}]")
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, BaseModel):
                    yield from walk(item, f"{here}.{key}")


# --- classification of every number in the spec ----------------------------------------------

#: pod counts: (model, field) -> the AdminPolicy knob bounding it
COUNT_KNOBS: dict[tuple[str, str], str] = {
    ("FeatureServerSpec", "replicas"): "max_replicas",
    ("RegistryServerSpec", "replicas"): "max_replicas",
    ("OptionalServerSpec", "replicas"): "max_replicas",
    ("AutoscalingSpec", "min_replicas"): "max_replicas",
    ("AutoscalingSpec", "max_replicas"): "max_replicas",
    ("KubeRaySpec", "workers"): "max_compute_pods",
    ("SparkExecutorSpec", "instances"): "max_compute_pods",
    ("KubernetesEngineSpec", "max_parallelism"): "max_compute_pods",
    ("MaterializationSpec", "parallelism"): "max_compute_pods",
}
#: numbers that size a pod (bounded through POD_SOURCES) or a cloud resource (own knob)
SIZED: dict[tuple[str, str], str] = {
    ("SparkDriverSpec", "cores"): "max_pod_resources / max_store_resources (cpu)",
    ("SparkExecutorSpec", "cores"): "max_pod_resources / max_store_resources (cpu)",
    ("MemorystoreSpec", "memory_size_gb"): "max_memorystore_size_gb",
    ("InClusterStorage", "size"): "max_volume_size",
}
#: numbers that cost neither money nor the operator's memory, and why
UNCOSTED: dict[tuple[str, str], str] = {
    ("FeatureServerSpec", "workers"): "gunicorn processes inside the container's memory limit",
    ("FeatureServerSpec", "keep_alive_timeout"): "a timeout",
    ("FeatureServerSpec", "max_requests"): "worker recycling, inside the pod",
    ("AutoscalingSpec", "target_cpu_utilization_percentage"): "a percentage of the bounded pods",
    ("PodDisruptionBudgetSpec", "max_unavailable"): "disruption budget of the bounded pods",
    ("RegistrySpec", "cache_ttl_seconds"): "a timeout",
    ("MaterializationSpec", "active_deadline_seconds"): "a timeout (shortens runs)",
    ("MaterializationSpec", "starting_deadline_seconds"): "a timeout",
    ("MaterializationSpec", "backoff_limit"): "retries of one pod, never at once (model ceiling 20)",
    ("MaterializationSpec", "successful_jobs_history_limit"): "finished Jobs kept (model ceiling 100), no pods",
    ("MaterializationSpec", "failed_jobs_history_limit"): "failed Jobs kept (model ceiling 100), no pods",
    ("MaterializationSpec", "write_batch_size"): "rows per write inside a bounded pod (its memory limit)",
    ("LifecycleSpec", "delete_after_days"): "deletes data, costs nothing",
    ("GitRepoSpec", "poll_minutes"): "one small resolver pod at a time (concurrencyPolicy Forbid), >= 1 minute",
    ("Toleration", "toleration_seconds"): "a timeout",
    ("TopologySpreadConstraint", "max_skew"): "placement of the bounded pods",
    ("KubernetesEngineSpec", "mini_batch_size"): "rows per write inside a bounded pod",
    ("KubernetesEngineSpec", "retry_limit"): "retries of one pod, never at once (model ceiling 10)",
    ("KubernetesEngineSpec", "active_deadline_seconds"): "a timeout",
    ("RayEngineSpec", "max_workers"): "Ray tasks inside the bounded Ray pods",
    ("RayEngineSpec", "write_concurrency"): "writers inside the bounded Ray pods",
    ("RayEngineSpec", "target_partition_size_mb"): "partition size inside the bounded Ray pods",
    ("SparkApplicationEngineSpec", "concurrency"): "feature views inside one bounded application",
    ("SparkApplicationEngineSpec", "job_timeout_seconds"): "a timeout",
}


# --- pods: where resources are spent ---------------------------------------------------------


def _server_pods(o: Any) -> int:
    return o.autoscaling.max_replicas if o.autoscaling else o.replicas


#: (model, ResourceRequirements field) -> pods of that size at the largest scale
POD_SOURCES: dict[tuple[str, str], Callable[[Any], int]] = {
    ("FeatureServerSpec", "resources"): _server_pods,
    ("RegistryServerSpec", "resources"): lambda o: _server_pods(o) if o.enabled else 0,
    ("OptionalServerSpec", "resources"): lambda o: _server_pods(o) if o.enabled else 0,
    ("MaterializationSpec", "resources"): lambda o: o.parallelism if o.enabled else 0,
    ("InClusterRedisSpec", "resources"): lambda o: 1,
    ("KubernetesEngineSpec", "resources"): lambda o: o.max_parallelism,
    ("KubeRaySpec", "head_resources"): lambda o: 1,
    ("KubeRaySpec", "worker_resources"): lambda o: o.workers,
}


@dataclass
class Pod:
    """Pods of one size: ``count`` x ``amounts`` (resource -> (field path, amount))."""

    count: int
    amounts: dict[str, list[tuple[str, Decimal]]]


def _pods(fs_spec: BaseModel) -> list[Pod]:
    pods: list[Pod] = []
    for v in walk(fs_spec, "spec"):
        key = (type(v.owner).__name__, v.name)
        if key in POD_SOURCES and isinstance(v.value, ResourceRequirements):
            amounts: dict[str, list[tuple[str, Decimal]]] = {}
            for kind in ("requests", "limits"):
                for res, q in (getattr(v.value, kind) or {}).items():
                    with contextlib.suppress(ValueError):  # not a quantity: the model refuses it
                        amount = quantity(q)
                        amounts.setdefault(res, []).append((f"{v.path}.{kind}.{res}", amount))
            pods.append(Pod(POD_SOURCES[key](v.owner), amounts))
        elif isinstance(v.value, SparkDriverSpec | SparkExecutorSpec) and v.name in ("driver", "executor"):
            s = v.value
            count = s.instances if isinstance(s, SparkExecutorSpec) else 1
            pods.append(
                Pod(
                    count,
                    {
                        "cpu": [(f"{v.path}.cores", Decimal(s.cores))],
                        "memory": [(f"{v.path}.memory", _spark_memory(s.memory))],
                    },
                )
            )
    return pods


def _fmt(res: str, amount: Decimal) -> str:
    if res == "cpu":
        return f"{amount.normalize():f}"
    gib = amount / 2**30
    return f"{gib.normalize():f}Gi" if gib >= 1 else f"{amount.normalize():f}"


def _raise(knob: str) -> str:
    camel = to_camel(knob)
    return f"ask the admin to raise policy.{camel} ({HELM}{camel})"


# --- the rules -------------------------------------------------------------------------------


def _limit(policy: Limits, knob: str) -> Any:
    return getattr(policy.bounds, knob) if knob in CostBounds.model_fields else getattr(policy, knob)


def _counts(fs: FeatureStore, policy: Limits) -> list[Problem]:
    out: list[Problem] = []
    for v in walk(fs.spec, "spec"):
        knob = COUNT_KNOBS.get((type(v.owner).__name__, v.name))
        if knob and v.value > (limit := _limit(policy, knob)):
            out.append(
                (
                    v.path,
                    f"{v.value} exceeds the admin policy's {to_camel(knob)} {limit}; ask for at most "
                    f"{limit}, or {_raise(knob)}",
                )
            )
    return out


def _resources(fs: FeatureStore, policy: Limits) -> list[Problem]:
    per_pod = {k: quantity(q) for k, q in policy.bounds.max_pod_resources.items()}
    per_store = {k: quantity(q) for k, q in policy.bounds.max_store_resources.items()}
    out: list[Problem] = []
    totals: dict[str, Decimal] = {}
    for pod in _pods(fs.spec):
        for res, found in pod.amounts.items():
            for path, amount in found:
                if res not in per_pod:
                    out.append(
                        (
                            path,
                            f"resource {res} is not allowed by the admin policy (maxPodResources lists "
                            f"{', '.join(per_pod) or 'none'}); remove it, or ask the admin to add {res} to "
                            f"policy.maxPodResources ({HELM}maxPodResources)",
                        )
                    )
                elif amount > per_pod[res]:
                    out.append(
                        (
                            path,
                            f"{res} {_fmt(res, amount)} exceeds the admin policy's maxPodResources."
                            f"{res} {_fmt(res, per_pod[res])} per pod; ask for less, or "
                            f"{_raise('max_pod_resources')}",
                        )
                    )
            totals[res] = totals.get(res, Decimal(0)) + pod.count * max(a for _, a in found)
    for res, total in totals.items():
        if res in per_store and total > per_store[res]:
            out.append(
                (
                    "spec",
                    f"the store's pods at their largest scale ask for {res} {_fmt(res, total)}, over the "
                    f"admin policy's maxStoreResources.{res} {_fmt(res, per_store[res])}; run fewer or "
                    f"smaller pods, or {_raise('max_store_resources')}",
                )
            )
    return out


def _volumes(fs: FeatureStore, policy: Limits) -> list[Problem]:
    limit = quantity(policy.bounds.max_volume_size)
    return [
        (
            f"{v.path}.size",
            f"{v.value.size} exceeds the admin policy's maxVolumeSize {policy.bounds.max_volume_size}; "
            f"ask for less, or {_raise('max_volume_size')}",
        )
        for v in walk(fs.spec, "spec")
        if isinstance(v.value, InClusterStorage) and quantity(v.value.size) > limit
    ]


def _images(fs: FeatureStore, policy: Limits) -> list[Problem]:
    return [
        (
            v.path,
            f"image {v.value} is not allowed by the admin policy (allowedImagePrefixes: "
            f"{', '.join(policy.image_prefixes)}); use an image under one of them, remove the field to use the "
            f"operator's image, or ask the admin to add a prefix ({HELM}allowedImagePrefixes)",
        )
        for v in walk(fs.spec, "spec")
        if v.shape.image and isinstance(v.value, str) and not image_allowed(v.value, policy.image_prefixes)
    ]


def free_form_bytes(value: Any) -> int:
    return len(to_json(value, by_alias=True, exclude_none=True))


def _free_form(fs: FeatureStore, policy: Limits) -> list[Problem]:
    limit = policy.bounds.max_free_form_bytes
    out: list[Problem] = []
    for v in walk(fs.spec, "spec"):
        if v.shape.free_form and (size := free_form_bytes(v.value)) > limit:
            out.append(
                (
                    v.path,
                    f"{size} bytes exceeds the admin policy's maxFreeFormBytes {limit} per field; "
                    f"shorten it, or {_raise('max_free_form_bytes')}",
                )
            )
    return out


RULES = (_images, _counts, _resources, _volumes, _free_form)


def check_bounds(fs: FeatureStore, policy: Limits) -> list[Problem]:
    """Every way ``fs`` (resolved) exceeds the policy's cost and size bounds; [] when none."""
    return [p for rule in RULES for p in rule(fs, policy)]


# --- the whole spec and the namespace --------------------------------------------------------

#: key the operator puts on a body whose spec it dropped for its size (never written to the API)
SHED_KEY = "x-featurestore-operator-dropped-spec-bytes"


#: kubectl's copy of the applied object: the spec again (bounded with it), never counted twice
_KUBECTL_COPY = "kubectl.kubernetes.io/last-applied-configuration"


def _authored_metadata(obj: dict[str, Any]) -> list[dict[str, Any]]:
    meta = obj.get("metadata") or {}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != _KUBECTL_COPY}
    return [m for m in (meta.get("labels"), annotations) if m]


def spec_bytes(obj: dict[str, Any]) -> int:
    """Serialised size of what ``obj``'s author wrote: its spec, labels and annotations (its recorded
    size when the operator dropped them). Labels and annotations count because the operator keeps
    them with the spec: ~0.7 MB of labels on a small spec cost it as much as a 0.7 MB spec."""
    if SHED_KEY in obj:
        return int(obj[SHED_KEY])
    return sum(len(json.dumps(part, separators=(",", ":"))) for part in [obj.get("spec"), *_authored_metadata(obj)])


def size_problems(obj: dict[str, Any], max_spec_bytes: int) -> list[Problem]:
    size = spec_bytes(obj)
    if size <= max_spec_bytes:
        return []
    return [
        (
            "spec",
            f"{size} bytes (serialised, with the labels and annotations) exceeds the admin policy's "
            f"maxSpecBytes {max_spec_bytes}; shorten the spec, labels and annotations, or {_raise('max_spec_bytes')}",
        )
    ]


def shed(obj: dict[str, Any], max_spec_bytes: int) -> dict[str, Any]:
    """``obj`` without its spec, labels and annotations when together they are over ``max_spec_bytes``
    (what the operator keeps of an oversized object that got past admission, e.g. labels added by a
    metadata-only update, which the webhook always admits: the rest of its metadata, status and the
    size, for the refusal)."""
    if SHED_KEY in obj or not isinstance(obj.get("spec"), dict):
        return obj
    size = spec_bytes(obj)
    if size <= max_spec_bytes:
        return obj
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in ("labels", "annotations")}
    return {
        **{k: v for k, v in obj.items() if k not in ("spec", "metadata")},
        "metadata": meta,
        "spec": {},
        SHED_KEY: size,
    }


StoreKey = tuple[str, str]  # (creationTimestamp, name): RFC 3339 strings sort by time


def namespace_quota(fs: FeatureStore, created: str, others: list[StoreKey], policy: Limits) -> list[Problem]:
    """Refuse ``fs`` when ``maxStoresPerNamespace`` stores of its namespace were created before it
    (``others``: the namespace's other stores; the earliest keep running)."""
    limit = policy.bounds.max_stores_per_namespace
    me = (created, fs.metadata.name)
    before = sum(1 for other in others if other < me)
    if before < limit:
        return []
    return [
        (
            "metadata.name",
            f"namespace {fs.metadata.namespace} already has {before} FeatureStores, the admin "
            f"policy's maxStoresPerNamespace {limit}; delete one, or "
            f"{_raise('max_stores_per_namespace')}",
        )
    ]


def policy_bounds(data: dict[str, Any]) -> CostBounds:
    return CostBounds.model_validate({k: v for k, v in data.items() if k in CostBounds.model_fields})
