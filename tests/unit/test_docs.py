"""README's FeatureStore reference is generated from the model and must not drift."""

from __future__ import annotations

import os
import re
from pathlib import Path

from featurestore_operator.api.reference import markdown

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = re.compile(r"(<!-- reference:start -->\n)(.*?)(<!-- reference:end -->)", re.S)


def test_readme_reference_matches_model():
    text = README.read_text()
    match = SECTION.search(text)
    assert match, "README.md lost its reference markers"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        README.write_text(SECTION.sub(lambda m: m.group(1) + markdown() + m.group(3), text))
        return
    assert match.group(2) == markdown(), "README reference drifted: run UPDATE_GOLDEN=1 pytest tests/unit/test_docs.py"


def test_reference_covers_every_documented_field():
    ref = markdown()
    for field in ("spec.onlineStore.memorystore.memorySizeGb", "spec.materialization.schedule",
                  "spec.featureRepo.git.url", "spec.kubeflow.allowedNamespaces"):
        assert f"`{field}`" in ref
