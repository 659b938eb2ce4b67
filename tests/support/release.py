"""A release made by hack/release.sh into the local registry (hack/local-registry.sh), as the e2e tier
installs it: the script runs on a clone of this tree, so its release commit and tag stay there."""

from __future__ import annotations

import os
import subprocess
import time
import tomllib
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.support.node import node_cache

ROOT = Path(__file__).resolve().parents[2]
REGISTRY_SCRIPT = ROOT / "hack" / "local-registry.sh"
#: the manifest types a registry may hold for our images (Docker schema 2 from skopeo or buildah, OCI)
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)


@dataclass(frozen=True)
class Release:
    registry: str  # HOST:PORT, plain HTTP on the loopback address
    version: str
    output: str  # what hack/release.sh printed (stdout + stderr)
    seconds: float

    @property
    def chart(self) -> str:
        return f"oci://{self.registry}/charts/featurestore-operator"

    @property
    def operator_image(self) -> str:
        return f"{self.registry}/featurestore-operator:{self.version}"

    @property
    def feast_image(self) -> str:
        return f"{self.registry}/featurestore-feast:{self.version}"

    def digest(self, image: str) -> str:
        """The registry's digest of ``image`` (REGISTRY/REPO:TAG): what a pull by that tag resolves to."""
        name, tag = image.removeprefix(f"{self.registry}/").rsplit(":", 1)
        req = urllib.request.Request(
            f"http://{self.registry}/v2/{name}/manifests/{tag}", method="HEAD", headers={"Accept": MANIFEST_TYPES}
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.headers["Docker-Content-Digest"]


def registry_up(address: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{address}/v2/", timeout=5):
            return True
    except OSError:
        return False


def start_registry(port: int) -> str:
    """hack/local-registry.sh start PORT (idempotent): its HOST:PORT."""
    out = subprocess.run(
        ["bash", str(REGISTRY_SCRIPT), "start", str(port)], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def stop_registry(port: int) -> None:
    subprocess.run(["bash", str(REGISTRY_SCRIPT), "stop", str(port)], timeout=60, check=False)


def tree_version(root: Path) -> str:
    return tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]


def make_release(registry: str, workdir: Path, version: str | None = None, **env: str) -> Release:
    """Clone this tree's HEAD into ``workdir`` and run hack/release.sh there for ``version`` (default:
    the tree's own, whose images are the ones hack/provision-node.sh built) into ``registry``."""
    clone = workdir / "repo"
    subprocess.run(["git", "clone", "-q", "--no-tags", str(ROOT), str(clone)], check=True, timeout=300)
    version = version or tree_version(clone)
    started = time.monotonic()
    out = subprocess.run(
        ["bash", str(clone / "hack" / "release.sh"), version],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=3000,
        cwd=clone,
        env={**os.environ, "REGISTRY": registry, **env},
    )
    seconds = time.monotonic() - started
    print(out.stdout[-4000:])
    assert out.returncode == 0, "hack/release.sh failed:\n" + out.stdout[-6000:]
    return Release(registry, version, out.stdout, seconds)


def provisioned_keys_match(clone: Path) -> bool:
    """Whether hack/provision-node.sh's image archives were built from the clone's inputs (the content
    keys of hack/lib/image-keys.sh): then the release must reuse them instead of building."""
    script = (
        '. hack/lib/image-keys.sh; b="$(base_image_key .)"; '
        'echo "$(operator_image_key . "$b") $(feast_image_key . "$b")"'
    )
    keys = subprocess.run(["bash", "-c", script], cwd=clone, capture_output=True, text=True, check=True).stdout.split()
    images = node_cache() / "images"
    have = [
        (images / f"{n}.key").read_text().strip() if (images / f"{n}.key").exists() else ""
        for n in ("operator", "feast")
    ]
    return keys == have
