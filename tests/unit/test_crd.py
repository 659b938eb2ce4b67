"""The committed CRD is generated from the model and is a valid structural schema."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import yaml
from featurestore_operator.api.crd import CRD_FILE, crd

ROOT = Path(__file__).resolve().parents[2]


def test_committed_crd_matches_model():
    committed = yaml.safe_load((ROOT / "crds" / CRD_FILE).read_text())
    assert committed == crd(), "crds/ drifted from the model: run `featurestore-operator crd > crds/" + CRD_FILE + "`"


def _walk(node: dict, path: str = ""):
    yield path, node
    for name, sub in (node.get("properties") or {}).items():
        yield from _walk(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{path}{{}}")


def test_schema_is_structural_and_described():
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema["properties"]["spec"], "spec"):
        assert not {"$ref", "anyOf", "allOf", "$defs", "title"} & node.keys(), path
        # structural schemas allow oneOf only as pure value validation (here: which field is required)
        assert all(set(alt) == {"required"} for alt in node.get("oneOf", [])), path
        assert node.get("type") or node.get("x-kubernetes-int-or-string"), f"{path} has no type"
        if "properties" in node:
            assert "additionalProperties" not in node, path
        if not path.endswith("{}") and not path.endswith("[]"):
            assert node.get("description"), f"{path} has no description (kubectl explain shows nothing)"


def test_schema_carries_constraints():
    spec = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    ms = spec["onlineStore"]["properties"]["memorystore"]["properties"]
    assert ms["memorySizeGb"]["minimum"] == 1 and ms["memorySizeGb"]["maximum"] == 300
    assert ms["tier"]["enum"] == ["BASIC", "STANDARD_HA"]
    assert ms["tier"]["default"] == "BASIC"
    assert spec["onlineStore"]["maxProperties"] == 1
    assert spec["project"]["pattern"]


def test_crd_is_valid_apiextensions_v1():
    kubernetes_validate.validate(crd(), kubernetes_validate.latest_version(), strict=True)


def test_printer_columns_and_names():
    doc = crd()
    version = doc["spec"]["versions"][0]
    columns = {c["name"]: c.get("priority", 0) for c in version["additionalPrinterColumns"]}
    assert columns == {"Ready": 0, "Reason": 0, "Online": 0, "Age": 0, "Message": 1, "Server": 1, "Commit": 1}
    assert version["subresources"] == {"status": {}}
    assert doc["spec"]["names"]["shortNames"] == ["fs"]
    # the Feast Operator's CRD has short name `feast`: a category of that name would shadow it
    assert "feast" not in doc["spec"]["names"]["categories"]
