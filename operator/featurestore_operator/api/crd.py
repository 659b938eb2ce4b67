"""Generate the FeatureStore CustomResourceDefinition from the pydantic models.

The CRD in ``crds/`` is this function's output (``featurestore-operator crd``); a unit test fails
when the committed file drifts from the model.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from . import resource as r
from .immutable import IMMUTABLE, description
from .spec import FeatureStoreSpec
from .status import FeatureStoreStatus

# JSON-schema keywords that have a meaning in a structural OpenAPI v3 schema; the rest is dropped.
_KEEP = {
    "type",
    "description",
    "default",
    "enum",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "required",
    "properties",
    "additionalProperties",
    "items",
    "nullable",
    "x-kubernetes-int-or-string",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-preserve-unknown-fields",
    "uniqueItems",
    "oneOf",
}


def _fold_any_of(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Optional[X] (anyOf X|null) into X; int|str into x-kubernetes-int-or-string."""
    variants = [v for v in node.pop("anyOf") if v.get("type") != "null"]
    types = {v.get("type") for v in variants}
    if types == {"string", "integer"}:
        node["x-kubernetes-int-or-string"] = True
        return node
    if len(variants) != 1:
        raise ValueError(f"cannot express union {variants} in a structural schema")
    inner = _structural(variants[0], defs)
    own = {k: v for k, v in node.items() if k in ("description", "default", "type") or k.startswith("x-kubernetes-")}
    return {**inner, **own}


def _structural(node: Any, defs: dict[str, Any]) -> Any:
    """Turn pydantic's JSON schema into a structural schema: inline $refs, fold Optional[X]
    (anyOf X|null) into X, int|str into x-kubernetes-int-or-string, const into enum."""
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "$ref" in node:
        target = defs[node.pop("$ref").split("/")[-1]]
        node = {**target, **node}  # the field's own description/default win over the class's
    if "anyOf" in node:
        node = _fold_any_of(node, defs)
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if "patternProperties" in node and "additionalProperties" not in node:
        # a map whose keys pydantic constrains by pattern (label keys): structural schemas have no
        # patternProperties, so the values' schema becomes additionalProperties (keys are checked
        # by the operator, which reports them in the Spec condition)
        (values,) = node.pop("patternProperties").values()
        node["additionalProperties"] = values
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key not in _KEEP:
            continue
        if key == "properties":
            out[key] = {name: _structural(sub, defs) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _structural(value, defs)
        elif key == "description":
            out[key] = " ".join(value.split())
        else:
            out[key] = value
    if "properties" in out:
        # structural schemas forbid properties together with additionalProperties; unknown
        # fields are pruned by the API server and reported by `featurestore-operator validate`.
        out.pop("additionalProperties", None)
        out["type"] = "object"
    if out.get("additionalProperties") in (False, True) or out.get("x-kubernetes-preserve-unknown-fields"):
        # free-form objects (e.g. affinity) say so with x-kubernetes-preserve-unknown-fields
        out.pop("additionalProperties", None)
    if out.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
    if out.get("default") in (None, "", [], {}):
        # Kubernetes 1.20 rejects empty-string defaults; empty ones say nothing anyway.
        out.pop("default", None)
    return out


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return _structural(raw, raw.get("$defs", {}))


_READY = '.status.conditions[?(@.type=="Ready")]'

#: `kubectl get fs`: is it OK and, if not, why; `-o wide` (priority 1) adds the message and the
#: feature server URL, which status carries only once the feature server is available.
PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Ready", "type": "string", "jsonPath": f"{_READY}.status"},
    {"name": "Reason", "type": "string", "jsonPath": f"{_READY}.reason"},
    {"name": "Online", "type": "string", "jsonPath": ".status.endpoints.onlineStore"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {"name": "Message", "type": "string", "priority": 1, "jsonPath": f"{_READY}.message"},
    {"name": "Server", "type": "string", "priority": 1, "jsonPath": ".status.endpoints.featureServer"},
    # the git commit the feature server serves (status.featureRepo: resolved/applied are in -o yaml)
    {"name": "Commit", "type": "string", "priority": 1, "jsonPath": ".status.featureRepo.servingCommit"},
]


def _mark_immutable(spec: dict[str, Any]) -> None:
    """Append the immutable-field note (api/immutable.py) to each such field's description. The
    refusal itself is the admission webhook's: 1.20 has no CEL (x-kubernetes-validations)."""
    for row in IMMUTABLE:
        node = spec
        for name in row.path.split(".")[1:]:
            node = node["properties"][name]
        node["description"] = f"{node.get('description', '')} {description(row.path)}".strip()


def crd() -> dict[str, Any]:
    spec = model_schema(FeatureStoreSpec)
    _mark_immutable(spec)
    status = model_schema(FeatureStoreStatus)
    status["properties"]["conditions"].update({"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]})
    schema = {
        "type": "object",
        "description": "A Feast feature store: online store, offline store and registry, feature "
        "servers and materialization, run by the featurestore operator.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": "featurestore.kubeflow.org/v1alpha1"},
            "kind": {"type": "string", "description": "FeatureStore"},
            "metadata": {
                "type": "object",
                "properties": {
                    "name": {
                        "type": "string",
                        "maxLength": r.MAX_NAME_LENGTH,
                        "pattern": r.NAME_PATTERN,
                        "description": "Lowercase letters, digits and '-', at most 40 characters.",
                    }
                },
            },
            "spec": spec,
            "status": status,
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{r.PLURAL}.{r.GROUP}",
            "labels": {"app.kubernetes.io/name": "featurestore-operator", "app.kubernetes.io/part-of": "kubeflow"},
        },
        "spec": {
            "group": r.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": r.KIND,
                "listKind": f"{r.KIND}List",
                "plural": r.PLURAL,
                "singular": r.SINGULAR,
                "shortNames": r.SHORT_NAMES,
                # Not "feast": the Feast Operator's CRD (featurestores.feast.dev) has short name
                # `feast`, and a category would take `kubectl get feast` away from it.
                "categories": ["kubeflow"],
            },
            "versions": [
                {
                    "name": r.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


CRD_FILE = f"{r.PLURAL}.{r.GROUP}.yaml"
