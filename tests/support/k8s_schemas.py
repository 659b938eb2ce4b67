"""Current Kubernetes without a current API server: the strict OpenAPI schemas `kubernetes-validate`
ships (Kubernetes 1.25 .. 1.37, generated from each release's OpenAPI document, ``additionalProperties:
false`` everywhere: an unknown field is an error, as ``kubectl apply`` / server-side apply with
``fieldValidation=Strict`` refuses it).

* :func:`served` - the discovery a version serves: every (group, version, kind) that carries an
  ``x-kubernetes-group-version-kind`` in that release's definitions (the same extension the API
  server's own OpenAPI document puts on each top-level resource it serves).
* :func:`problems` - validate one object strictly; validators are built once per (version, apiVersion,
  kind) and the 1-2 MB definitions file is read once per version (kubernetes_validate.validate reads
  it again on every call: ~50 ms an object).
* :func:`crd_problems` - objects of the vendored upstream CRDs (tests/support/crds) against their
  ``openAPIV3Schema``, with unknown fields refused where the CRD does not preserve them.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from referencing import Registry, Resource

GVK = tuple[str, str, str]  # (group, version, kind); group "" is the core group

SCHEMAS = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
SUPPORT_CRDS = Path(__file__).parent / "crds"

#: The versions every rendered object is validated against, and why each is here. GKE keeps a minor for
#: ~14 months of standard and ~10 more of extended support after it reaches the Regular channel
#: (https://cloud.google.com/kubernetes-engine/versioning, "GKE minor version lifecycle"; dates in
#: https://cloud.google.com/kubernetes-engine/docs/release-schedule). Reasoned for early December 2026:
#: 1.31 reached Regular in autumn 2024, so its 24 months are over; 1.32 (Regular early 2025) is the
#: oldest in extended support, 1.34 the oldest in standard support; 1.37 (upstream August 2026) is the
#: newest GKE offers and the newest the package ships. 1.25 is the oldest schema set: it still serves
#: autoscaling/v2beta2, so the picker is seen preferring v2 where both are served.
VERSIONS: dict[str, str] = {
    "1.25.0": "oldest schemas in kubernetes-validate; still serves autoscaling/v2beta2 beside v2",
    "1.32.0": "oldest GKE minor still supported (extended support) in December 2026",
    "1.34.0": "oldest GKE minor in standard support in December 2026",
    "1.37.0": "newest GKE minor (Rapid channel) and newest schemas in kubernetes-validate",
}


class SchemaMissing(LookupError):
    """No schema of this apiVersion/kind in that Kubernetes version (a CRD, or not served there)."""


def _dir(version: str) -> Path:
    path = SCHEMAS / f"v{version}-local-strict"
    if not path.is_dir():
        raise SchemaMissing(f"kubernetes-validate {kubernetes_validate.__version__} has no schemas of {version}")
    return path


@cache
def _definitions(version: str) -> dict[str, Any]:
    return json.loads((_dir(version) / "_definitions.json").read_text())


@cache
def served(version: str) -> frozenset[GVK]:
    """Every (group, version, kind) Kubernetes ``version`` serves."""
    return frozenset(
        (g["group"], g["version"], g["kind"])
        for schema in _definitions(version)["$defs"].values()
        for g in schema.get("x-kubernetes-group-version-kind", [])
    )


def api_version_of(gvk: GVK) -> str:
    group, version, _ = gvk
    return f"{group}/{version}" if group else version


@cache
def _validator(version: str, api_version: str, kind: str) -> jsonschema.protocols.Validator:
    group, _, ver = api_version.rpartition("/")
    if (group, ver, kind) not in served(version):
        raise SchemaMissing(f"Kubernetes {version} serves no {kind} in {api_version}")
    # kubernetes-validate's file naming: the group's first label, then the version
    short = group.split(".")[0]
    name = f"{kind.lower()}-{short}-{ver}.json" if group else f"{kind.lower()}-{ver}.json"
    schema = json.loads((_dir(version) / name).read_text())
    registry: Registry = Resource.from_contents(_definitions(version)) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def problems(obj: dict[str, Any], version: str) -> list[str]:
    """Why ``obj`` is invalid for Kubernetes ``version`` (empty: valid). Raises :class:`SchemaMissing`."""
    validator = _validator(version, obj["apiVersion"], obj["kind"])
    return [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(obj)]


# --------------------------------------------------------------------------- vendored CRDs


def _strict(schema: Any) -> Any:
    """A CRD's structural schema as JSON schema, refusing unknown fields (``fieldValidation=Strict``)
    wherever the CRD lists properties and does not preserve unknown fields."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items() if not k.startswith("x-kubernetes-")}
    if schema.get("x-kubernetes-int-or-string"):
        out["type"] = ["integer", "string"]
    if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
        out.setdefault("additionalProperties", False)
    if schema.get("nullable"):
        out.pop("nullable")
        if "type" in out:
            out["type"] = [out["type"], "null"]
    return out


#: The vendored CRDs that are upstream's own (the others in tests/support/crds are minimal stand-ins
#: that preserve unknown fields, so validating against them would prove nothing).
UPSTREAM_CRDS = {"certificates.cert-manager.io.yaml": "cert-manager v1 Certificate (upstream CRD)"}


@cache
def _crd_validators() -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    out = {}
    for file in UPSTREAM_CRDS:
        crd = yaml.load((SUPPORT_CRDS / file).read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        for v in crd["spec"]["versions"]:
            schema = _strict(v["schema"]["openAPIV3Schema"])
            schema["properties"]["metadata"] = {"type": "object"}  # ObjectMeta is the API server's
            api_version = f"{crd['spec']['group']}/{v['name']}"
            out[(api_version, crd["spec"]["names"]["kind"])] = jsonschema.Draft202012Validator(schema)
    return out


def crd_problems(obj: dict[str, Any]) -> list[str]:
    """Why ``obj`` is invalid for its vendored upstream CRD. Raises :class:`SchemaMissing`."""
    validator = _crd_validators().get((obj["apiVersion"], obj["kind"]))
    if validator is None:
        raise SchemaMissing(f"no vendored upstream CRD for {obj['kind']} {obj['apiVersion']}")
    return [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(obj)]
