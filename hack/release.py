"""The file edits of a release (hack/release.sh runs them): the version everywhere it is written and
the CHANGELOG's "Unreleased" section moved under the version's heading. Idempotent: a second run for
the same version changes nothing; a run for a version older than the CHANGELOG's newest one fails.

    python3 hack/release.py VERSION [--date YYYY-MM-DD]
"""

from __future__ import annotations

import argparse
import datetime
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: semantic version, optionally with a pre-release (0.2.0, 1.0.0-rc.1); Helm needs SemVer 2
VERSION = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?$")
UNRELEASED = "## Unreleased"
#: file -> (pattern whose group 2 is the version, replacement template)
VERSION_SITES = {
    "pyproject.toml": r'(?m)^(version = ")([^"]*)(")$',
    "operator/featurestore_operator/__init__.py": r'(?m)^(__version__ = ")([^"]*)(")$',
    "charts/featurestore-operator/Chart.yaml": r"(?m)^(version: )(\S+)()$",
    "charts/featurestore-operator/Chart.yaml#app": r'(?m)^(appVersion: ")([^"]*)(")$',
}


class ReleaseError(Exception):
    pass


def check_version(version: str) -> str:
    if not VERSION.match(version):
        raise ReleaseError(f"version {version!r} is not a semantic version like 0.2.0 or 1.0.0-rc.1")
    return version


def set_version(text: str, pattern: str, version: str, where: str) -> str:
    new, count = re.subn(pattern, lambda m: f"{m.group(1)}{version}{m.group(3)}", text)
    if count != 1:
        raise ReleaseError(f"{where}: expected one version line matching {pattern}, found {count}")
    return new


def _key(version: str) -> tuple[int, ...]:
    m = VERSION.match(version)
    assert m
    return tuple(int(g) for g in m.groups()[:3])


def changelog(text: str, version: str, date: str) -> str:
    """Move what is under "## Unreleased" to "## VERSION (DATE)" and leave an empty Unreleased."""
    heading = f"## {version} ("
    if heading in text:
        return text  # released already: nothing to move (idempotent)
    if UNRELEASED not in text:
        raise ReleaseError(f"CHANGELOG.md has no '{UNRELEASED}' section")
    released = re.findall(r"(?m)^## (\d+\.\d+\.\d+\S*) \(", text)
    if released and _key(released[0]) >= _key(version):
        raise ReleaseError(f"CHANGELOG.md already has {released[0]}: {version} is not newer")
    head, rest = text.split(UNRELEASED, 1)
    body, sep, tail = rest.partition("\n## ")
    if not body.strip():
        raise ReleaseError("CHANGELOG.md: nothing under 'Unreleased' to release")
    after = f"\n## {tail}" if sep else ""
    return f"{head}{UNRELEASED}\n\n{heading}{date})\n\n{body.strip()}\n{after}"


def prepare(root: Path, version: str, date: str) -> list[str]:
    """Write the release's edits under root; the files changed."""
    check_version(version)
    edits: dict[Path, str] = {}
    for site, pattern in VERSION_SITES.items():
        path = root / site.split("#")[0]
        text = edits.get(path, path.read_text())
        edits[path] = set_version(text, pattern, version, site)
    path = root / "CHANGELOG.md"
    edits[path] = changelog(path.read_text(), version, date)
    license_text = (root / "LICENSE").read_text() if (root / "LICENSE").exists() else ""
    if "Apache License" not in license_text or "Version 2.0, January 2004" not in license_text:
        raise ReleaseError("LICENSE is not the Apache License 2.0 text that pyproject.toml declares")
    changed = []
    for path, text in edits.items():
        if path.read_text() != text:
            path.write_text(text)
            changed.append(str(path.relative_to(root)))
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("version")
    parser.add_argument("--date", default=datetime.date.today().isoformat())
    parser.add_argument("--root", type=Path, default=ROOT)
    args = parser.parse_args(argv)
    try:
        changed = prepare(args.root, args.version, args.date)
    except ReleaseError as e:
        print(f"release: {e}", file=sys.stderr)
        return 1
    print("\n".join(changed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
