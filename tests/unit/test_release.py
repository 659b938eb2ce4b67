"""The release's files (hack/release.py) and the image locks (images/*.lock, hack/lock-images.sh).

The locks are read as pip reads them: every package pinned to one version with its hashes (pip
--require-hashes refuses anything else), and the pins satisfy what pyproject.toml and
images/feast-runtime.in ask for (the Dockerfile's offline install of the inputs fails otherwise: a
build with a stale lock fails). The images' content keys (hack/lib/image-keys.sh), by which a release
reuses hack/provision-node.sh's builds. hack/release.sh itself runs end to end in
tests/e2e/test_node.py::test_scenario_on_node (a local registry, the node pulls, helm install oci://).
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "images"


def _release():
    spec = importlib.util.spec_from_file_location("release", ROOT / "hack" / "release.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _lock(name: str) -> dict[str, tuple[Version, str, list[str]]]:
    """package -> (version, environment marker, hashes), as pip reads a requirements file."""
    text = (IMAGES / name).read_text().replace("\\\n", " ")
    pins: dict[str, tuple[Version, str, list[str]]] = {}
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        req_text, *options = re.split(r"\s+(?=--)", line)
        req = Requirement(req_text)
        [spec] = list(req.specifier)
        assert spec.operator == "==", f"{name}: {line[:80]} is not pinned to one version"
        hashes = [o.split("=", 1)[1] for o in options if o.startswith("--hash=")]
        assert hashes and all(h.startswith("sha256:") and len(h) == 71 for h in hashes), (
            f"{name}: {req.name} has no hash"
        )
        assert len(hashes) == len(options), f"{name}: {req.name} has options other than --hash: {options}"
        pins[req.name.lower().replace("_", "-")] = (Version(spec.version), str(req.marker or ""), hashes)
    return pins


def _inputs(lines: list[str]) -> list[Requirement]:
    return [Requirement(s) for s in (x.split("#", 1)[0].strip() for x in lines) if s]


@pytest.mark.parametrize("name", ["operator.lock", "feast-runtime.lock"])
def test_every_locked_package_is_pinned_with_hashes(name):
    pins = _lock(name)
    assert len(pins) > 20, pins.keys()


@pytest.mark.parametrize(
    ("lock", "requirements"),
    [
        ("operator.lock", lambda: tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]),
        ("feast-runtime.lock", lambda: (IMAGES / "feast-runtime.in").read_text().splitlines()),
    ],
)
def test_the_lock_satisfies_its_input(lock, requirements):
    """What the Dockerfile checks offline at build: each input requirement (and its extras) is locked
    at a version it allows. A stale lock (a new dependency, a raised bound) fails here first."""
    pins = _lock(lock)
    for req in _inputs(requirements()):
        name = req.name.lower().replace("_", "-")
        assert name in pins, f"{lock} lacks {req.name}: run bash hack/lock-images.sh"
        assert req.specifier.contains(pins[name][0], prereleases=True), f"{lock}: {name}=={pins[name][0]} vs {req}"


def test_feast_runtime_carries_the_versions_the_operator_assumes():
    """Feast at the operator's FEAST_VERSION (also the Dockerfile's ARG, checked again in its build);
    Ray at the RayCluster's default rayVersion (KubeRay and Ray Client refuse a skew) and the kubernetes
    client the k8s and spark_application engines create objects with."""
    from featurestore_operator.api.compute import KubeRaySpec
    from featurestore_operator.api.config import FEAST_VERSION

    pins = _lock("feast-runtime.lock")
    assert str(pins["feast"][0]) == FEAST_VERSION
    assert f"ARG FEAST_VERSION={FEAST_VERSION}\n" in (ROOT / "Dockerfile").read_text()
    assert str(pins["ray"][0]) == KubeRaySpec.model_fields["ray_version"].default
    assert "kubernetes" in pins and "gcsfs" in pins
    assert pins["gcsfs"][0] == pins["fsspec"][0], "gcsfs needs the fsspec of its own release"


def test_the_operator_lock_holds_no_feast():
    assert "feast" not in _lock("operator.lock"), "the operator image stays lean"


def test_dockerfile_installs_each_lock_with_hashes_and_checks_it_offline():
    text = (ROOT / "Dockerfile").read_text()
    operator = text.split("AS operator-venv", 1)[1].split("FROM", 1)[0]
    feast = text.split("AS feast-venv", 1)[1].split("FROM", 1)[0]
    assert "pip install --require-hashes --no-deps -r /locks/operator.lock" in operator
    assert "pip install --no-index /wheels/" in operator and "pip check" in operator
    assert "pip install --require-hashes --no-deps -r /locks/feast-runtime.lock" in feast
    assert "pip install --no-index -r /locks/feast-runtime.in" in feast and "pip check" in feast
    # nothing else reaches an index unpinned
    assert not re.search(r"pip install (?!--require-hashes|--no-index)", operator + feast)
    assert "!images/" in (ROOT / ".dockerignore").read_text()


def test_license_is_the_apache_2_text_pyproject_declares():
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"] == "Apache-2.0"
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text and "APPENDIX" in text, "the full text"


def _tree(tmp_path: Path) -> Path:
    for site in [*{s.split("#")[0] for s in _release().VERSION_SITES}, "CHANGELOG.md", "LICENSE"]:
        (tmp_path / site).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / site, tmp_path / site)
    return tmp_path


def test_release_files_once_and_only_once(tmp_path):
    release = _release()
    root = _tree(tmp_path)
    unreleased = (root / "CHANGELOG.md").read_text().split("## Unreleased", 1)[1].split("\n## ", 1)[0]
    changed = release.prepare(root, "9.8.7", "2026-12-07")
    assert sorted(changed) == sorted(
        [
            "pyproject.toml",
            "operator/featurestore_operator/__init__.py",
            "charts/featurestore-operator/Chart.yaml",
            "CHANGELOG.md",
        ]
    )
    chart = (root / "charts/featurestore-operator/Chart.yaml").read_text()
    assert "\nversion: 9.8.7\n" in chart and '\nappVersion: "9.8.7"\n' in chart
    assert 'version = "9.8.7"' in (root / "pyproject.toml").read_text()
    assert '__version__ = "9.8.7"' in (root / "operator/featurestore_operator/__init__.py").read_text()
    log = (root / "CHANGELOG.md").read_text()
    assert log.startswith("# Changelog\n\n## Unreleased\n\n## 9.8.7 (2026-12-07)\n\n###")
    assert log.split("## 9.8.7 (2026-12-07)\n\n", 1)[1] == unreleased.strip() + "\n"
    before = {p: p.read_text() for p in root.rglob("*") if p.is_file()}
    assert release.prepare(root, "9.8.7", "2027-01-01") == [], "a second run changes nothing"
    assert before == {p: p.read_text() for p in root.rglob("*") if p.is_file()}
    # the next release: its own section above the previous one
    (root / "CHANGELOG.md").write_text(log.replace("## Unreleased\n", "## Unreleased\n- y\n", 1))
    release.prepare(root, "9.9.0", "2027-01-02")
    assert (
        (root / "CHANGELOG.md")
        .read_text()
        .startswith("# Changelog\n\n## Unreleased\n\n## 9.9.0 (2027-01-02)\n\n- y\n\n## 9.8.7 (2026-12-07)\n\n###")
    )


@pytest.mark.parametrize(
    ("version", "message"),
    [("v1.0", "not a semantic version"), ("1.0", "not a semantic version"), ("0.0.1", "is not newer")],
)
def test_release_refuses_bad_or_older_versions(tmp_path, version, message):
    release = _release()
    root = _tree(tmp_path)
    release.prepare(root, "0.2.0", "2026-12-07")
    (root / "CHANGELOG.md").write_text(
        (root / "CHANGELOG.md").read_text().replace("## Unreleased\n", "## Unreleased\n- x\n")
    )
    with pytest.raises(release.ReleaseError, match=message):
        release.prepare(root, version, "2026-12-08")


def test_release_refuses_an_empty_unreleased_section_and_a_missing_license(tmp_path):
    release = _release()
    root = _tree(tmp_path)
    release.prepare(root, "0.2.0", "2026-12-07")
    with pytest.raises(release.ReleaseError, match="nothing under 'Unreleased'"):
        release.prepare(root, "0.3.0", "2026-12-08")
    (root / "LICENSE").write_text("MIT License\n")
    with pytest.raises(release.ReleaseError, match="Apache License 2.0"):
        release.prepare(root, "0.2.0", "2026-12-08")


def _image_keys(root: Path) -> dict[str, str]:
    script = '. "$0/hack/lib/image-keys.sh"; b="$(base_image_key .)"; operator_image_key . "$b"; feast_image_key . "$b"'
    out = subprocess.run(["bash", "-c", script, str(ROOT)], cwd=root, capture_output=True, text=True, check=True)
    operator, feast = out.stdout.split()
    return {"operator": operator, "feast": feast}


def test_image_keys_change_with_the_image_inputs_only(tmp_path):
    """A release of the tree's own version (what the e2e tier pushes) keeps both images' content keys,
    so hack/release.sh pushes hack/provision-node.sh's builds; a new version changes the operator
    image (its package carries the version) but not feast-runtime; a feast input changes feast's."""
    root = _tree(tmp_path)
    for path in ("operator", "images"):
        shutil.copytree(ROOT / path, root / path, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    for path in ("Dockerfile", ".dockerignore", "README.md"):
        shutil.copy(ROOT / path, root / path)
    keys = _image_keys(root)
    version = tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]
    assert set(_release().prepare(root, version, "2026-12-07")) <= {"CHANGELOG.md"}
    (root / "README.md").write_text("another front page\n")
    assert _image_keys(root) == keys
    log = root / "CHANGELOG.md"
    log.write_text(log.read_text().replace("## Unreleased\n", "## Unreleased\n- x\n", 1))
    _release().prepare(root, "9.8.7", "2026-12-08")
    new = _image_keys(root)
    assert new["operator"] != keys["operator"] and new["feast"] == keys["feast"]
    (root / "images" / "feast-runtime.in").write_text("feast[redis]==0.0.1\n")
    assert _image_keys(root)["feast"] != new["feast"]
    for path, changes in (
        ("pyproject.toml", {"operator"}),
        ("images/operator.lock", {"operator"}),
        ("Dockerfile", {"operator", "feast"}),
    ):
        before = _image_keys(root)
        (root / path).write_text((root / path).read_text() + "\n# changed\n")
        after = _image_keys(root)
        assert {name for name in after if after[name] != before[name]} == changes, path
