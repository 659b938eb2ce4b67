"""The FeatureStore custom resource as a whole, and turning validation errors into one clear message."""

from __future__ import annotations

import difflib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .base import ApiModel
from .spec import FeatureStoreSpec  # isort: split

from .compute import address_problem
from .status import FeatureStoreStatus
from .suggest import did_you_mean

GROUP = "featurestore.kubeflow.org"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "FeatureStore"
PLURAL = "featurestores"
SINGULAR = "featurestore"
SHORT_NAMES = ["fs"]
FINALIZER = f"{GROUP}/finalizer"
#: metadata.name limit: derived child names (e.g. NAME-feature-server, NAME-registry-server)
#: must stay valid DNS-1035 labels (<= 63 chars).
MAX_NAME_LENGTH = 40
NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"


class ObjectMeta(BaseModel):
    """The part of metadata the operator reads. Other metadata passes through untouched."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    name: str = Field(max_length=MAX_NAME_LENGTH, pattern=NAME_PATTERN)
    #: a namespace name (it becomes part of URLs, cloud ids and labels: api/names.py)
    namespace: str = Field(default="default", max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    uid: str | None = None
    generation: int | None = None
    #: RFC 3339, set by the API server (orders a namespace's stores: quota, default store)
    creation_timestamp: str | None = Field(default=None, alias="creationTimestamp")
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class FeatureStore(ApiModel):
    """A FeatureStore object (apiVersion featurestore.kubeflow.org/v1alpha1)."""

    model_config = ConfigDict(extra="ignore")

    api_version: Literal["featurestore.kubeflow.org/v1alpha1"] = "featurestore.kubeflow.org/v1alpha1"
    kind: Literal["FeatureStore"] = "FeatureStore"
    metadata: ObjectMeta
    spec: FeatureStoreSpec
    status: FeatureStoreStatus = Field(default_factory=FeatureStoreStatus)

    def owner_reference(self) -> dict[str, Any]:
        """ownerReference that makes a child garbage-collected with this FeatureStore."""
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": self.metadata.name,
            "uid": self.metadata.uid or "",
            "controller": True,
            "blockOwnerDeletion": True,
        }


class SpecError(ValueError):
    """A manifest the operator cannot accept. ``problems`` holds (field path, message) pairs."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{path}: {msg}" for path, msg in problems))


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and part.startswith(("function-", "union[", "list[", "dict[")):
            continue  # pydantic's internal union/validator branches, not user fields
        else:
            out += ("." if out else "") + str(part)
    return out or "(root)"


def unknown_field(model: type[BaseModel], loc: tuple[Any, ...], explain: str = "`kubectl explain fs.spec`") -> str:
    """The message of a key ``model`` does not accept at ``loc``, with the nearest accepted key."""
    near = did_you_mean(model, loc)
    if near:
        return f"unknown field; did you mean {near!r}? (see {explain})"
    return f"unknown field; remove it or check its spelling (see {explain})"


def _problems(err: ValidationError, prefix: str = "", model: type[BaseModel] | None = None) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for e in err.errors(include_url=False):
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = unknown_field(model, e["loc"]) if model else unknown_field(BaseModel, ())
        elif e["type"] == "missing":
            msg = "required field is missing"
        elif e["type"] == "string_pattern_mismatch":
            msg = f"{e['input']!r} does not match the allowed pattern {e['ctx']['pattern']}"
        elif e["type"] == "enum" or e["type"] == "literal_error":
            msg = f"{e['input']!r} is not allowed; {msg[0].lower()}{msg[1:]}"
        path = _path(e["loc"])
        problems.append((f"{prefix}{path}" if path != "(root)" else prefix.rstrip(".") or path, msg))
    return problems


def parse_spec(spec: dict[str, Any]) -> FeatureStoreSpec:
    """Validate a raw ``spec`` dict; raise :class:`SpecError` with ``spec.``-prefixed field paths."""
    try:
        return FeatureStoreSpec.model_validate(spec)
    except ValidationError as err:
        raise SpecError(_problems(err, "spec.", FeatureStoreSpec)) from None


def parse_featurestore(obj: dict[str, Any]) -> FeatureStore:
    """Validate a whole FeatureStore manifest/object; raise :class:`SpecError` naming each field."""
    if not isinstance(obj, dict):
        raise SpecError([("(root)", "a FeatureStore manifest must be a mapping")])
    problems: list[tuple[str, str]] = []
    if obj.get("apiVersion") != API_VERSION or obj.get("kind") != KIND:
        problems.append(
            (
                "apiVersion/kind",
                f"expected apiVersion {API_VERSION} and kind {KIND}, got {obj.get('apiVersion')!r}/{obj.get('kind')!r}",
            )
        )
    try:
        fs = FeatureStore.model_validate(obj)
    except ValidationError as err:
        problems.extend(_problems(err, model=FeatureStore))
        raise SpecError(problems) from None
    ray = fs.spec.compute.ray
    if ray is not None and ray.address and (msg := address_problem(ray.address, fs.metadata.namespace)):
        problems.append(("spec.compute.ray.address", msg))
    if problems:
        raise SpecError(problems)
    return fs


def _looks_like_featurestore(doc: dict[str, Any]) -> bool:
    kind = str(doc.get("kind") or "")
    group = str(doc.get("apiVersion") or "").partition("/")[0]
    near_kind = difflib.SequenceMatcher(None, kind.lower(), KIND.lower()).ratio() >= 0.8
    return kind == KIND or near_kind or group == GROUP


def select_featurestores(docs: list[Any], source: str) -> list[dict[str, Any]]:
    """The FeatureStore manifests among ``docs`` (other kinds, e.g. the feature repo's ConfigMap,
    are skipped; a file of other kinds only gives []). A near miss - a misspelled kind or group,
    the Feast Operator's feast.dev kind - is an error, never a silent no-op."""
    found: list[dict[str, Any]] = []
    problems: list[tuple[str, str]] = []
    for i, doc in enumerate(docs):
        if not isinstance(doc, dict):
            problems.append((f"{source}: document {i + 1}", "not a mapping"))
        elif doc.get("apiVersion") == API_VERSION and doc.get("kind") == KIND:
            found.append(doc)
        elif _looks_like_featurestore(doc):
            hint = (
                " (feast.dev is the Feast Operator's FeatureStore, not this operator's)"
                if str(doc.get("apiVersion", "")).startswith("feast.dev/")
                else ""
            )
            problems.append(
                (
                    f"{source}: document {i + 1}",
                    f"apiVersion {doc.get('apiVersion')!r} kind {doc.get('kind')!r} is not a FeatureStore of this "
                    f"operator; expected apiVersion {API_VERSION} and kind {KIND}{hint}",
                )
            )
    if problems:
        raise SpecError(problems)
    return found
