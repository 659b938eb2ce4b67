"""Every store the operator renders in the schema and Pod Security tests: each FeatureStore in
examples/, the one each onboarding template in examples/onboarding/ creates in a profile (all
resolved with the shipped examples/operator-config.yaml, as `featurestore-operator render --config`
does), and two stores that switch on every optional component (all servers, metrics, PDB,
autoscaling; then authz + TLS with a cert-manager issuer), rendered with the API versions the
operator's discovery picks on a given cluster (:func:`tests.support.schema_cluster.discovered`)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from featurestore_operator.api import FeatureStore, OperatorConfig, parse_featurestore, resolve
from featurestore_operator.api.onboarding import OnboardingTemplate
from featurestore_operator.backends.planned import planned_endpoints
from featurestore_operator.cli_files import config_file
from featurestore_operator.render import ApiVersions, RepoSource, render

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
UID = "0b5e9a52-8c1e-4a43-9b2e-5c0d7f6b1a11"

_EVERY_SERVER = {
    "offlineServer": {"enabled": True, "autoscaling": {"minReplicas": 1, "maxReplicas": 3}},
    "ui": {"enabled": True},
    "registry": {"server": {"enabled": True}},
    "featureServer": {
        "metrics": {"enabled": True},
        "podDisruptionBudget": {"enabled": True},
        "autoscaling": {"minReplicas": 2, "maxReplicas": 4},
    },
    "featureRepo": {"git": {"url": "https://example.com/r.git", "secretRef": {"name": "git-creds"}}},
}
SYNTHETIC: dict[str, dict[str, Any]] = {
    "all-servers": _EVERY_SERVER,
    "all-secure": {**_EVERY_SERVER, "authz": {"type": "kubernetes"}, "tls": {"enabled": True}},
}


@cache
def config(tls_issuer: str | None = None) -> OperatorConfig:
    base = config_file(str(EXAMPLES / "operator-config.yaml"))
    return base.model_copy(update={"tls_issuer": tls_issuer}) if tls_issuer else base


def _store_docs() -> dict[str, dict[str, Any]]:
    docs = {}
    for path in sorted(EXAMPLES.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "FeatureStore":
                docs[f"{path.stem}/{doc['metadata']['name']}"] = doc
    for path in sorted((EXAMPLES / "onboarding").glob("*.yaml")):  # what onboarding creates in a profile
        template = OnboardingTemplate.model_validate(yaml.safe_load(path.read_text()))
        docs[f"onboarding/{path.stem}"] = template.manifest("kubeflow-user-alice")
    for name, spec in SYNTHETIC.items():
        docs[name] = {
            "apiVersion": "featurestore.kubeflow.org/v1alpha1",
            "kind": "FeatureStore",
            "metadata": {"name": name, "namespace": "team-a"},
            "spec": {"project": name.replace("-", "_"), "provider": "local", **spec},
        }
    return docs


def stores(cfg: OperatorConfig) -> dict[str, FeatureStore]:
    out = {}
    for key, doc in _store_docs().items():
        doc = {**doc, "metadata": {**doc["metadata"], "uid": UID}}
        fs = parse_featurestore(doc)
        out[key] = fs.model_copy(update={"spec": resolve(fs.spec, cfg)})
    return out


@cache
def rendered(versions: ApiVersions, tls_issuer: str | None = "ClusterIssuer/feast-ca") -> dict[str, list[dict]]:
    """{store: objects} for every store; with a cert-manager issuer the TLS stores get a Certificate.
    Cached (versions are hashable): callers must not change the objects."""
    cfg = config(tls_issuer)
    out = {}
    for key, fs in stores(cfg).items():
        repo = RepoSource(revision="a1b2c3d4e5f60718") if fs.spec.feature_repo else None
        out[key] = render(fs, planned_endpoints(fs, cfg), cfg, versions, repo).objects
    return out
