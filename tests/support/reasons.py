"""Condition reasons the operator can emit, collected statically from operator/ with ast:

* the first argument (or ``reason=``) of ``Pending(...)`` / ``Failed(...)`` (backend outcomes),
  ``reason=`` of ``Ready(...)``, the third argument (or ``reason=``) of ``Part(...)`` /
  ``Condition(...)`` (reconcile's condition builders);
* the values of module-level dicts whose name ends in ``REASONS`` (state -> reason tables);
* constants assigned to a variable named ``reason`` / ``*_reason``;
* f-strings ending in a constant suffix (``f"{verb}Failed"``) as ``*Failed`` patterns.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "operator" / "featurestore_operator"
_REASON = re.compile(r"^[A-Z][A-Za-z0-9]+$")
#: callee name -> position of the reason argument
_CALLS = {"Pending": 0, "Failed": 0, "Ready": None, "Part": 2, "Condition": 2, "_part": 2}


def _name(func: ast.expr) -> str:
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _reason(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and _REASON.match(node.value):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[-1], ast.Constant):
        suffix = str(node.values[-1].value)
        return "*" + suffix if _REASON.match(suffix) else None
    if isinstance(node, ast.IfExp):
        return _reason(node.body) or _reason(node.orelse)
    return None


def _conditional(node: ast.expr | None) -> list[str]:
    if isinstance(node, ast.IfExp):
        return [r for r in (_reason(node.body), _reason(node.orelse)) if r]
    r = _reason(node)
    return [r] if r else []


def emitted_reasons(source: Path = SOURCE) -> set[str]:
    found: set[str] = set()
    for path in source.rglob("*.py"):
        if "handlers" in path.relative_to(source).parts:  # handlers post Events, they set no condition
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _name(node.func) in _CALLS:
                pos = _CALLS[_name(node.func)]
                arg = node.args[pos] if pos is not None and len(node.args) > pos else None
                kw = next((k.value for k in node.keywords if k.arg == "reason"), None)
                found.update(_conditional(kw if kw is not None else arg))
            elif isinstance(node, ast.Assign):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
                if any(n.endswith("REASONS") for n in names) and isinstance(node.value, ast.Dict):
                    found.update(r for v in node.value.values if (r := _reason(v)))
                elif any(n == "reason" or n.endswith("_reason") for n in names):  # reason = "A" if x else "B"
                    found.update(_conditional(node.value))
    return found
