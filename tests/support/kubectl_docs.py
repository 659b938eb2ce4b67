"""The kubectl commands README.md, the docs site (docs/**/*.md) and the chart's NOTES.txt tell
users to type, and which of them name a FeatureStore resource (so they must resolve to ours beside
the Feast Operator's CRD)."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").rglob("*.md")),
    ROOT / "charts" / "featurestore-operator" / "templates" / "NOTES.txt",
]

#: Verbs whose first positional argument is a resource (TYPE, TYPE/NAME or, for explain, TYPE.FIELD).
RESOURCE_VERBS = {"get", "describe", "wait", "delete", "edit", "explain", "patch", "label", "annotate"}
#: Flags that take a separate value.
VALUE_FLAGS = {"-n", "--namespace", "-o", "--output", "-f", "--filename", "--for", "--timeout", "-l", "--selector"}
#: Every name kubectl could take for a FeatureStore, ours or the Feast Operator's.
FEATURESTORE_NAMES = {
    "fs",
    "feast",
    "featurestore",
    "featurestores",
    "featurestore.featurestore.kubeflow.org",
    "featurestores.featurestore.kubeflow.org",
}
#: Names that are ours alone when featurestores.feast.dev is installed too.
UNAMBIGUOUS = {"fs", "featurestores.featurestore.kubeflow.org", "featurestore.featurestore.kubeflow.org"}

_KUBECTL = re.compile(r"kubectl [^`\n|]*")


@dataclass(frozen=True)
class DocCommand:
    source: str  # path relative to the repository root
    text: str
    verb: str
    resource: str  # the resource type as written (fs, featurestores.featurestore.kubeflow.org, ...)


def _resource_type(arg: str, verb: str) -> str:
    head = arg.split("/", 1)[0]
    if verb == "explain":  # TYPE.FIELD.PATH: the type is a known name or its longest dotted prefix
        for name in sorted(FEATURESTORE_NAMES, key=len, reverse=True):
            if head == name or head.startswith(name + "."):
                return name
    return head


def _parse(source: str, text: str) -> DocCommand | None:
    text = text.strip().rstrip("\\").strip()
    try:
        tokens = shlex.split(text.replace("<", "").replace(">", ""), comments=True)
    except ValueError:
        return None
    if len(tokens) < 3 or tokens[1] not in RESOURCE_VERBS:
        return None
    skip = False
    for tok in tokens[2:]:
        if skip:
            skip = False
            continue
        if tok in VALUE_FLAGS:
            skip = True
            continue
        if tok.startswith("-"):
            continue
        return DocCommand(source, text, tokens[1], _resource_type(tok, tokens[1]))
    return None


def documented_commands() -> list[DocCommand]:
    out: list[DocCommand] = []
    for path in DOCS:
        for match in _KUBECTL.finditer(path.read_text()):
            cmd = _parse(path.relative_to(ROOT).as_posix(), match.group(0))
            if cmd is not None:
                out.append(cmd)
    return out


def featurestore_commands() -> list[DocCommand]:
    return [c for c in documented_commands() if c.resource.lower() in FEATURESTORE_NAMES]
