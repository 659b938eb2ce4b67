"""The docs site builds strictly and the front page's links land.

`mkdocs build --strict` turns every warning into a failure: a link between pages to a file or a
heading that does not exist, a page that cannot be rendered. README.md is not part of the site
(GitHub renders it), so its links into docs/ (and to the files beside it) are checked here, anchors
included, the way GitHub and MkDocs both make them: lower-cased heading text, punctuation dropped,
spaces to hyphens.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support.prerequisites import missing

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    text = re.sub(r"[`*_\[\]()]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, re.M)}


def broken_links(page: Path) -> list[str]:
    """Relative links of a Markdown file that name a missing file or a missing heading."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    broken = []
    for target in _LINK.findall(text):
        if re.match(r"^[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.name}")
    return broken


def test_mkdocs_build_is_strict_and_clean(tmp_path):
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        missing("mkdocs and mkdocs-material (the `test` extra: pip install -e '.[test]')")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "--site-dir",
            str(tmp_path / "site"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=env,
    )
    assert out.returncode == 0, f"mkdocs build --strict failed:\n{out.stdout}\n{out.stderr}"
    assert "WARNING" not in out.stderr, out.stderr
    built = {p.relative_to(tmp_path / "site").as_posix() for p in (tmp_path / "site").rglob("index.html")}
    assert not set(SECTIONS) - built, f"the site lost a section: {sorted(set(SECTIONS) - built)}"
    assert not (ROOT / "site").exists(), "the build must not write into the repository"


#: the site's sections (issue 28): install, concepts, notebooks and models, security and tenancy,
#: compute engines, operations, reference, benchmarks; MkDocs builds page X.md as X/index.html
SECTIONS = [
    f"{page}/index.html"
    for page in (
        "install/gke",
        "install/kind",
        "install/feast-operator",
        "concepts",
        "notebooks",
        "security",
        "compute",
        "operations/monitoring",
        "operations/upgrade",
        "operations/troubleshooting",
        "reference/featurestore",
        "reference/operator-config",
        "reference/cli",
        "benchmarks",
        "support",
    )
]


def test_readme_links_resolve():
    links = _LINK.findall(README.read_text())
    assert sum(link.startswith("docs/") for link in links) >= 10, "README.md should link into docs/"
    assert not broken_links(README), broken_links(README)


def test_root_markdown_links_resolve():
    for name in ("CONTRIBUTING.md", "SECURITY.md", "CHANGELOG.md"):
        page = ROOT / name
        if page.exists():
            assert not broken_links(page), (name, broken_links(page))


def test_link_checker_sees_a_broken_link(tmp_path):
    (tmp_path / "a.md").write_text("# Top\n\n## Next step\n\n[ok](a.md#next-step) [gone](b.md) [bad](a.md#nope)\n")
    assert broken_links(tmp_path / "a.md") == ["b.md: no such file", "a.md#nope: no heading #nope in a.md"]


def test_readme_is_a_front_page():
    text = README.read_text()
    lines = text.count("\n")
    assert 120 <= lines <= 200, f"README.md has {lines} lines: keep it a front page (150-200), move detail to docs/"
    for command in ("bash hack/demo.sh", "bash hack/test.sh"):
        assert command in text, command
    assert "```mermaid" in text and "FeatureStore()" in text and "docs/install/gke.md" in text


def test_ci_runs_the_readme_test_command():
    """.ci/run is exactly the README's test command, so what a newcomer runs is what CI runs."""
    ci = (ROOT / ".ci" / "run").read_text()
    command = re.search(r"^exec (.+)$", ci, re.M)
    assert command, ".ci/run should exec one command"
    assert f"\n{command.group(1)} " in README.read_text(), f"README.md should show `{command.group(1)}`"
