"""What the CLI reads: manifest files (one, several, a directory, stdin) and an operator
configuration file. Errors name the file and the key as written there."""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .api import OperatorConfig, SpecError
from .api.resource import select_featurestores, unknown_field

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass
class Manifests:
    """The FeatureStores of one file, or why the file holds none (``skipped``)."""

    source: str
    stores: list[dict[str, Any]] = field(default_factory=list)
    skipped: str | None = None


def sources(paths: list[str]) -> list[str]:
    """Files named by -f: a file, - (stdin), or a directory (its manifests, recursively, sorted)."""
    out: list[str] = []
    for path in paths:
        p = Path(path)
        if path != "-" and p.is_dir():
            out += [str(f) for f in sorted(p.rglob("*")) if f.is_file() and f.suffix in MANIFEST_SUFFIXES]
        else:
            out.append(path)
    return out


def _what(docs: list[Any]) -> str:
    kinds = Counter(str(d.get("kind") or "document without kind") if isinstance(d, dict) else "other" for d in docs)
    return ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "no documents"


def load(source: str) -> Manifests:
    """The FeatureStores in ``source``. A file with none (a feature repo ConfigMap, an operator
    configuration, a template) is skipped with a note; a near miss (misspelled kind or group, the
    Feast Operator's kind) and YAML that does not parse are errors (:class:`SpecError`)."""
    text = sys.stdin.read() if source == "-" else Path(source).read_text()
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as err:
        raise SpecError([(source, f"not valid YAML: {err}")]) from None
    stores = select_featurestores(docs, source)
    if stores:
        return Manifests(source, stores)
    return Manifests(source, skipped=f"no FeatureStore in this file ({_what(docs)}): skipped")


def _snake(key: str) -> str:
    key = key.removeprefix("FSO_").removeprefix("fso_")
    return "".join("_" + c.lower() if c.isupper() and not key.isupper() else c.lower() for c in key).lstrip("_")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def config_file(path: str) -> OperatorConfig:
    """Operator settings from a YAML/JSON file: keys as FSO_ variables (FSO_GCP_PROJECT), snake_case
    or camelCase (gcpProject); the environment fills what the file leaves out."""
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as err:
        raise SpecError([(path, f"not valid YAML: {err}")]) from None
    if not isinstance(data, dict):
        raise SpecError([(path, "an operator config file must be a mapping of settings")])
    written = {_snake(str(k)): str(k) for k in data}
    try:
        return OperatorConfig(**{_snake(str(k)): v for k, v in data.items()})
    except ValidationError as err:
        raise SpecError(_config_problems(err, path, written)) from None


def _config_problems(err: ValidationError, path: str, written: dict[str, str]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for e in err.errors(include_url=False):
        loc = e["loc"]
        top = str(loc[0]) if loc else ""
        shown = ".".join([written.get(top, top), *(str(x) for x in loc[1:])])
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = unknown_field(OperatorConfig, loc, "docs/reference/operator-config.md")
            if len(loc) == 1:  # a top-level key: suggest it in the style it was written
                msg = _restyle(msg, written.get(top, top))
        problems.append((f"{path}: {shown}", msg))
    return problems


def _restyle(msg: str, typed: str) -> str:
    """'did you mean 'gcp_project'?' as the user writes keys: FSO_GCP_PROJECT or gcpProject."""
    start = msg.find("did you mean '")
    if start < 0:
        return msg
    name = msg[start + 14 : msg.index("'", start + 14)]
    styled = f"FSO_{name.upper()}" if typed.upper() == typed else name if "_" in typed else _camel(name)
    return msg.replace(f"'{name}'", f"'{styled}'")
