"""The FeatureStore field reference in Markdown, generated from the CRD schema (so from the model).

docs/reference/featurestore.md embeds it (and operator-config.md the settings table) between
markers; a unit test fails when they drift.
"""

from __future__ import annotations

import json
from typing import Any

from .crd import crd


def _type(node: dict[str, Any]) -> str:
    if node.get("x-kubernetes-int-or-string"):
        return "int or string"
    t = node.get("type", "")
    if t == "array":
        return f"list of {_type(node.get('items', {}))}"
    if t == "object" and isinstance(node.get("additionalProperties"), dict):
        return f"map of {_type(node['additionalProperties'])}"
    return t


def _constraints(node: dict[str, Any]) -> str:
    out = []
    if "enum" in node:
        out.append("one of " + ", ".join(f"`{v}`" for v in node["enum"]))
    if "minimum" in node or "maximum" in node:
        out.append(f"{node.get('minimum', '')}..{node.get('maximum', '')}")
    if "maxLength" in node:
        out.append(f"≤ {node['maxLength']} chars")
    if "default" in node:
        out.append(f"default `{node['default']}`")
    return "; ".join(out)


def _shape(node: dict[str, Any]) -> str:
    """A large object's fields without its own description: equal for every use of one model."""
    return json.dumps(node.get("properties"), sort_keys=True)


def _rows(node: dict[str, Any], path: str, seen: dict[str, str]) -> list[str]:
    rows = []
    required = set(node.get("required", []))
    for name, sub in (node.get("properties") or {}).items():
        p = f"{path}.{name}"
        desc = sub.get("description", "").replace("|", "\\|")
        extra = _constraints(sub)
        req = " **required**" if name in required else ""
        props = sub.get("properties") or {}
        first = seen.get(_shape(sub)) if len(props) > 4 else None
        if first:  # a model used in several places (e.g. pod settings) is listed once
            desc += f" Same fields as `{first}`."
        rows.append(f"| `{p}` | {_type(sub)}{req} | {desc}{' (' + extra + ')' if extra else ''} |")
        if first:
            continue
        if len(props) > 4:
            seen[_shape(sub)] = p
        if sub.get("type") == "array" and (sub.get("items") or {}).get("properties"):
            rows += _rows(sub["items"], p + "[]", seen)
        elif props:
            rows += _rows(sub, p, seen)
    return rows


def markdown() -> str:
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    lines = ["| field | type | description |", "|---|---|---|", *_rows(schema, "spec", {})]
    return "\n".join(lines) + "\n"


def _default(value: Any) -> str:
    if value is None or value == [] or value == "":
        return ""
    if hasattr(value, "model_dump"):
        return "(its fields' defaults)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if hasattr(value, "value"):  # an enum
        return f"`{value.value}`"
    return f"`{value}`"


def config_markdown() -> str:
    """The operator's settings (api/config.py) as a Markdown table: variable, default, description."""
    from .config import OperatorConfig

    lines = ["| variable | default | description |", "|---|---|---|"]
    for name, info in OperatorConfig.model_fields.items():
        desc = " ".join((info.description or "").split()).replace("|", "\\|")
        default = _default(info.get_default(call_default_factory=True))
        lines.append(f"| `FSO_{name.upper()}` | {default} | {desc} |")
    return "\n".join(lines) + "\n"
