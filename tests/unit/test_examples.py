"""examples/ apply as written: every feature repo ConfigMap an example references is shipped under
examples/feature-repos/, in the example's namespace."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


SHIPPED = {
    (d["metadata"].get("namespace"), d["metadata"]["name"])
    for p in (EXAMPLES / "feature-repos").glob("*.yaml")
    for d in _docs(p)
    if d["kind"] == "ConfigMap"
}
STORES = [(p.name, d) for p in sorted(EXAMPLES.rglob("*.yaml")) for d in _docs(p) if d.get("kind") == "FeatureStore"]


def test_examples_are_found():
    assert len(STORES) >= 5 and SHIPPED


@pytest.mark.parametrize("name, store", STORES, ids=[n for n, _ in STORES])
def test_referenced_feature_repo_configmaps_are_shipped(name: str, store: dict):
    ref = ((store["spec"].get("featureRepo") or {}).get("configMap") or {}).get("name")
    if ref:
        assert (store["metadata"].get("namespace"), ref) in SHIPPED, (
            f"{name}: ship ConfigMap {ref} in examples/feature-repos/"
        )
