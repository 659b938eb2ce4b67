"""What the docs name still exists: a file or module path (``runtime/kube.py``,
``tests/unit/test_render.py``), a FeatureStore field (``spec.registry.server``), a chart value
(``--set images.feast=…``, ``policy.notebookBucketRead``). Code moves (``reconcile/kube.py`` became
``runtime/kube.py``); a page that still names the old place sends a reader nowhere, so it fails here
naming the page and line.

Pages: README.md, CONTRIBUTING.md, SECURITY.md, every page of docs/, the chart's values.yaml (its
comments become the chart README) and the sample operator configuration."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "operator" / "featurestore_operator"
CHART = ROOT / "charts" / "featurestore-operator"
#: generated from the model (tests/unit/test_docs.py): its descriptions name pod fields (status.podIP)
GENERATED = ROOT / "docs" / "reference" / "featurestore.md"
PAGES = [
    ROOT / "README.md",
    ROOT / "CONTRIBUTING.md",
    ROOT / "SECURITY.md",
    *sorted(p for p in (ROOT / "docs").rglob("*.md") if p != GENERATED),
    CHART / "values.yaml",
    ROOT / "examples" / "operator-config.yaml",
]

#: a path-like token ending in a file extension; not part of a longer name or of a URL/annotation
PATH = re.compile(r"(?<![\w./:-])((?:\.\./)?[\w.-]+(?:/[\w.-]+)*\.(?:py|sh|yaml|yml|json|toml|md|txt|tpl))(?![\w/-])")
#: names the docs use for a reader's own files, not files of this repository
READERS_FILES = {"operator.yaml", "team-a.yaml", "repo.yaml", "near.yaml", "values-gke.yaml", "../compute.md"}
#: a field path of a FeatureStore (spec.x.y / status.x.y); not a file name (api/spec.py)
FIELD = re.compile(r"(?<![\w.$/-])((?:spec|status)(?:\.[a-zA-Z]\w*)+)(?![\w(/-])(?!\.py)")
#: field paths of other kinds the docs name, and the misspelling the CLI page shows on purpose
OTHER_FIELDS = {
    "spec.predictor": "KServe InferenceService",
    "spec.audiences": "TokenRequest",
    "status.audiences": "TokenReview",
    "status.authenticated": "TokenReview",
    "spec.authOptions": "RayCluster (KubeRay)",
    "spec.owner.name": "Kubeflow Profile",
    "spec.featureServer.replica": "docs/reference/cli.md: the typo `validate` answers with a suggestion",
}
#: chart values set on a command line, and admin policy keys named as policy.x
CHART_VALUE = re.compile(r"--set(?:-json|-string)?[ =]([\w.]+)=|(?<![\w.])((?:policy|feastPodSettings)(?:\.\w+)+)")


def _lines() -> list[tuple[str, str]]:
    return [
        (f"{page.relative_to(ROOT)}:{n}", line)
        for page in PAGES
        for n, line in enumerate(page.read_text().splitlines(), 1)
    ]


def _repo_names() -> set[str]:
    return {p.name for p in ROOT.rglob("*") if ".git" not in p.parts and p.is_file()}


def _code_text() -> str:
    """The source of the product, the test support and the scripts: names they write (hosts.toml)."""
    files = [*PACKAGE.rglob("*.py"), *(ROOT / "tests" / "support").glob("*.py"), *(ROOT / "hack").glob("*")]
    return "\n".join(p.read_text() for p in sorted(files) if p.is_file())


def missing_paths(lines: list[tuple[str, str]]) -> list[str]:
    """Path tokens that name nothing: a path is looked up from the repository root, the package
    (``render/pods.py``), the chart (``templates/x.yaml``), the page's folder and tests/support; a
    bare file name must be a file of the repository or a name its code writes."""
    names, code = _repo_names(), _code_text()
    bases = (ROOT, PACKAGE, CHART, ROOT / "docs", ROOT / "tests" / "support")
    broken = []
    for where, line in lines:
        page = ROOT / where.rpartition(":")[0]
        for token in PATH.findall(line):
            if token in READERS_FILES or any((b / token).exists() for b in (*bases, page.parent)):
                continue
            if "/" not in token and (token in names or token in code):
                continue
            broken.append(f"{where}: {token}")
    return broken


def crd_fields() -> set[str]:
    """Every field path of the FeatureStore CRD's schema (spec.* and status.*)."""
    crd = yaml.safe_load((ROOT / "crds" / "featurestores.featurestore.kubeflow.org.yaml").read_text())
    fields: set[str] = set()

    def walk(schema: dict, path: str) -> None:
        fields.add(path)
        for name, sub in schema.get("properties", {}).items():
            walk(sub, f"{path}.{name}")
        for key in ("items", "additionalProperties"):
            if isinstance(schema.get(key), dict):
                walk(schema[key], path)

    root = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    for top in ("spec", "status"):
        walk(root[top], top)
    return fields


def unknown_fields(lines: list[tuple[str, str]]) -> list[str]:
    known = crd_fields()
    return [
        f"{where}: {field}"
        for where, line in lines
        for field in FIELD.findall(line)
        if field not in known and field not in OTHER_FIELDS
    ]


def _has_value(values: dict, dotted: str) -> bool:
    node: object = values
    for key in dotted.split("."):
        if not (isinstance(node, dict) and key in node):
            return isinstance(node, dict) and dotted.startswith(("feastPodSettings.", "podDefaults.")) and node == {}
        node = node[key]
    return True


def unknown_chart_values(lines: list[tuple[str, str]]) -> list[str]:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    found = [(where, a or b) for where, line in lines for a, b in CHART_VALUE.findall(line)]
    return [
        f"{where}: {value}"
        for where, value in found
        if not value.endswith((".kubeflow.org", ".py")) and not _has_value(values, value.split(".all.")[0])
    ]


def test_the_pages_name_many_paths_fields_and_values():
    lines = _lines()
    assert sum(len(PATH.findall(line)) for _, line in lines) > 200
    assert sum(len(FIELD.findall(line)) for _, line in lines) > 60
    assert sum(len(CHART_VALUE.findall(line)) for _, line in lines) > 20


def test_every_file_path_the_docs_name_exists():
    assert not missing_paths(_lines()), "the docs name files that do not exist:\n" + "\n".join(missing_paths(_lines()))


def test_every_featurestore_field_the_docs_name_exists():
    broken = unknown_fields(_lines())
    assert not broken, "the docs name FeatureStore fields the CRD does not have:\n" + "\n".join(broken)


def test_every_chart_value_the_docs_set_exists():
    broken = unknown_chart_values(_lines())
    assert not broken, "the docs name chart values values.yaml does not have:\n" + "\n".join(broken)


def _commands() -> list[tuple[str, str]]:
    """(page:line, line) of the lines inside fenced code blocks: what a reader copies."""
    out, fenced = [], False
    for where, line in _lines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif fenced:
            out.append((where, line))
    return out


def test_every_kubectl_wait_has_a_timeout():
    """kubectl wait gives up after 30 s by default; a first store takes minutes (images, Memorystore)."""
    short = [where for where, line in _commands() if "kubectl wait" in line and "--timeout" not in line]
    assert not short, f"kubectl wait without --timeout (30 s by default): {short}"


@pytest.mark.parametrize(
    ("line", "checker"),
    [
        ("the client facade (`reconcile/kube.py`)", missing_paths),
        ("`handlers/workers.py` runs the queue", missing_paths),
        ("see tests/unit/test_nothing_here.py", missing_paths),
        ("run the store's registry server (`spec.registryServer`)", unknown_fields),
        ("`status.endpoints.nowhere`", unknown_fields),
        ("helm install x --set images.feastt=img", unknown_chart_values),
        ("`policy.notebookBucketReads: false`", unknown_chart_values),
    ],
)
def test_a_stale_name_is_caught(line, checker):
    assert checker([("README.md:1", line)]), line


@pytest.mark.parametrize(
    "line",
    [
        "`runtime/kube.py`, rules in `api/names.py`",
        "`tests/unit/test_render.py` and `templates/crds.yaml`",
        "Feast's `feature_store.yaml`",
        "`spec.registry.server.enabled` and `status.endpoints.bucket`",
        "--set images.feast=x --set-json 'feastPodSettings.all.env=[]' `policy.notebookBucketRead`",
        "annotation helm.sh/resource-policy: keep; https://example.com/a/b.yaml",
    ],
)
def test_a_live_name_passes(line):
    lines = [("README.md:1", line)]
    assert not missing_paths(lines) and not unknown_fields(lines) and not unknown_chart_values(lines), line


def _section(text: str, heading: str) -> str:
    return text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def test_the_readme_notebook_snippet_is_what_the_operator_renders(capsys):
    """README's "In a notebook": the label, the checkbox text and the variables it names are those
    of the PodDefault rendered for examples/local.yaml (store demo, the namespace's only store, so
    its default: issue 26's rule)."""
    from featurestore_operator.cli import main

    assert main(["render", "-f", str(ROOT / "examples" / "local.yaml")]) == 0
    pd = next(o for o in yaml.safe_load_all(capsys.readouterr().out) if o and o["kind"] == "PodDefault")
    section = _section((ROOT / "README.md").read_text(), "In a notebook")
    generic = {
        v for v in re.findall(r"FEAST_[A-Z_<>]*FS_YAML_FILE_PATH", section) if "<NAME>" in v or v.count("_") == 4
    }
    named = {v.replace("<NAME>", "DEMO") for v in generic}
    assert named == {e["name"] for e in pd["spec"]["env"]}, (named, pd["spec"]["env"])
    label = re.search(r'`(access-feast-<name>): "true"`', section)
    assert label and pd["spec"]["selector"]["matchLabels"] == {label.group(1).replace("<name>", "demo"): "true"}
    assert pd["spec"]["desc"] in section.replace("<name>", "demo")
    assert "store = FeatureStore()" in section and "docs/notebooks.md#several-stores-in-one-notebook" in section


def test_the_cli_page_lists_every_command():
    from featurestore_operator.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    page = (ROOT / "docs" / "reference" / "cli.md").read_text()
    absent = [c for c in sub.choices if f"| `featurestore-operator {c}" not in page]
    assert not absent, f"docs/reference/cli.md should list these commands: {absent}"
