"""A current cluster as discovery sees it, without running one: the built-in kinds a Kubernetes version
serves (from its OpenAPI schemas, :mod:`tests.support.k8s_schemas`) plus the CRDs of a Kubeflow
install. The operator's own :class:`Discovery` probes it exactly as it probes a live API server
(``Kube.served``: a one-item list, 404 means not served), so the versions a render gets here are
the ones the operator would pick on that cluster.

The stand-in refuses what the facade refuses (a kind/version outside the kinds table, a bad
namespace: ``check_listing`` is the facade's own check) and answers only what the cluster serves.
"""

from __future__ import annotations

import asyncio
from functools import cache
from pathlib import Path

import yaml
from featurestore_operator.reconcile.versions import discovery
from featurestore_operator.render import ApiVersions
from featurestore_operator.runtime.kube import check_listing

from tests.support import k8s_schemas
from tests.support.k8s_schemas import GVK

ROOT = Path(__file__).resolve().parents[2]


def _crd_versions(path: Path) -> set[GVK]:
    crd = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    spec = crd["spec"]
    return {(spec["group"], v["name"], spec["names"]["kind"]) for v in spec["versions"] if v.get("served", True)}


@cache
def kubeflow_crds() -> frozenset[GVK]:
    """The CRDs of a current Kubeflow on GKE: ours (crds/), the vendored Kubeflow, Istio, cert-manager
    and Spark Operator CRDs (tests/support/crds: the versions they serve), and KubeRay's RayCluster
    (ray.io/v1 since KubeRay 1.1; not vendored)."""
    files = [*(ROOT / "crds").glob("*.yaml"), *(ROOT / "tests" / "support" / "crds").glob("*.yaml")]
    return frozenset(set().union(*(_crd_versions(f) for f in files)) | {("ray.io", "v1", "RayCluster")})


class SchemaApiServer:
    """The part of the client facade discovery uses, answering as Kubernetes ``version`` with ``crds``."""

    def __init__(self, version: str, crds: frozenset[GVK] = frozenset()):
        self.gvks = k8s_schemas.served(version) | crds
        self.probes: list[tuple[str, str]] = []

    async def served(self, kind: str, api_version: str, namespace: str | None = None) -> bool:
        check_listing(kind, api_version, namespace, None)
        self.probes.append((kind, api_version))
        group, _, version = api_version.rpartition("/")
        return (group, version, kind) in self.gvks


def discovered(version: str, crds: frozenset[GVK] | None = None) -> ApiVersions:
    """The ApiVersions the operator's discovery picks on Kubernetes ``version`` (with Kubeflow's CRDs
    unless ``crds`` says otherwise)."""
    api = SchemaApiServer(version, kubeflow_crds() if crds is None else crds)
    return asyncio.run(discovery(api, namespace="team-a").versions())  # type: ignore[arg-type]
