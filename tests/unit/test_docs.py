"""The reference pages (docs/reference/featurestore.md, operator-config.md) are generated from the
models and must not drift."""

from __future__ import annotations

import re
from pathlib import Path

from featurestore_operator.api.reference import config_markdown, markdown

from tests.support import golden

PAGE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "featurestore.md"
CONFIG_PAGE = PAGE.parent / "operator-config.md"
CONFIG_SECTION = re.compile(r"(<!-- config-reference:start -->\n)(.*?)(<!-- config-reference:end -->)", re.S)
SECTION = re.compile(r"(<!-- reference:start -->\n)(.*?)(<!-- reference:end -->)", re.S)


def test_reference_page_matches_model():
    text = PAGE.read_text()
    match = SECTION.search(text)
    assert match, "docs/reference/featurestore.md lost its reference markers"
    if golden.rewriting():
        golden.rewrite(PAGE, SECTION.sub(lambda m: m.group(1) + markdown() + m.group(3), text))
    assert match.group(2) == markdown(), (
        "docs/reference/featurestore.md drifted from the model: run UPDATE_GOLDEN=1 pytest tests/unit/test_docs.py"
    )


def test_reference_covers_every_documented_field():
    ref = markdown()
    for field in (
        "spec.onlineStore.memorystore.memorySizeGb",
        "spec.materialization.schedule",
        "spec.featureRepo.git.url",
        "spec.kubeflow.allowedNamespaces",
    ):
        assert f"`{field}`" in ref


def test_operator_config_page_matches_model():
    text = CONFIG_PAGE.read_text()
    match = CONFIG_SECTION.search(text)
    assert match, "docs/reference/operator-config.md lost its config-reference markers"
    if golden.rewriting():
        golden.rewrite(CONFIG_PAGE, CONFIG_SECTION.sub(lambda m: m.group(1) + config_markdown() + m.group(3), text))
    assert match.group(2) == config_markdown(), (
        "docs/reference/operator-config.md drifted from api/config.py: "
        "run UPDATE_GOLDEN=1 pytest tests/unit/test_docs.py"
    )


def test_operator_config_table_names_every_setting_and_its_default():
    table = config_markdown()
    for row in ("| `FSO_GCP_PROJECT` |", "| `FSO_RESYNC_SECONDS` | `300.0` |", "| `FSO_ISTIO` | `true` |"):
        assert row in table, row
