"""The FeatureStore reference page (docs/reference/featurestore.md) is generated from the model and must not drift."""

from __future__ import annotations

import os
import re
from pathlib import Path

from featurestore_operator.api.reference import markdown

PAGE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "featurestore.md"
SECTION = re.compile(r"(<!-- reference:start -->\n)(.*?)(<!-- reference:end -->)", re.S)


def test_reference_page_matches_model():
    text = PAGE.read_text()
    match = SECTION.search(text)
    assert match, "docs/reference/featurestore.md lost its reference markers"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        PAGE.write_text(SECTION.sub(lambda m: m.group(1) + markdown() + m.group(3), text))
        return
    assert match.group(2) == markdown(), (
        "docs/reference/featurestore.md drifted from the model: run UPDATE_GOLDEN=1 pytest tests/unit/test_docs.py"
    )


def test_reference_covers_every_documented_field():
    ref = markdown()
    for field in ("spec.onlineStore.memorystore.memorySizeGb", "spec.materialization.schedule",
                  "spec.featureRepo.git.url", "spec.kubeflow.allowedNamespaces"):
        assert f"`{field}`" in ref
