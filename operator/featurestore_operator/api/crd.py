"""Generate the FeatureStore CustomResourceDefinition from the pydantic models.

The CRD in ``crds/`` is this function's output (``featurestore-operator crd``); a unit test fails
when the committed file drifts from the model.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from . import resource as r
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
}


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
        variants = [v for v in node.pop("anyOf") if v.get("type") != "null"]
        types = {v.get("type") for v in variants}
        if types == {"string", "integer"}:
            node["x-kubernetes-int-or-string"] = True
        elif len(variants) == 1:
            inner = _structural(variants[0], defs)
            node = {**inner, **{k: v for k, v in node.items() if k in ("description", "default")}}
        else:
            raise ValueError(f"cannot express union {variants} in a structural schema")
    if "const" in node:
        node["enum"] = [node.pop("const")]
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
    if out.get("additionalProperties") is False:
        out.pop("additionalProperties")
    if out.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
    if out.get("default") in (None, "", [], {}):
        # Kubernetes 1.20 rejects empty-string defaults; empty ones say nothing anyway.
        out.pop("default", None)
    return out


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return _structural(raw, raw.get("$defs", {}))


def crd() -> dict[str, Any]:
    spec = model_schema(FeatureStoreSpec)
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
                "categories": ["kubeflow", "feast"],
            },
            "versions": [
                {
                    "name": r.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                        {"name": "Online", "type": "string", "jsonPath": ".status.endpoints.onlineStore"},
                        {"name": "Server", "type": "string", "jsonPath": ".status.endpoints.featureServer"},
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


CRD_FILE = f"{r.PLURAL}.{r.GROUP}.yaml"
