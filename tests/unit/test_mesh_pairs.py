"""Every caller -> server pair docs/security/mesh.md promises, evaluated against the rendered
AuthorizationPolicies plus Kubeflow's default Istio policies (vendored: global-deny-all, the Sidecar
egress pruning, the profile controller's ns-owner-access-istio) with tests/support/istio_authz.py.
Istio itself does not run here (docs/support.md). Fails when a promised pair is not admitted by the
policies the table names, or a promised refusal is admitted."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from featurestore_operator.api import OperatorConfig, parse_featurestore, resolve
from featurestore_operator.backends.planned import planned_endpoints
from featurestore_operator.render import RepoSource, render

from tests.support.istio_authz import Request, Workload, evaluate, kubeflow_defaults

DOC = Path(__file__).resolve().parents[2] / "docs" / "security" / "mesh.md"
NS = "kubeflow-user-example-com"
PORTS_HTTP = {6566: True, 6570: True, 8815: True, 8888: True, 6379: False}  # gRPC is HTTP/2 to Istio


def _store(native: bool) -> tuple[list[dict[str, Any]], OperatorConfig]:
    doc = {
        "apiVersion": "featurestore.kubeflow.org/v1alpha1",
        "kind": "FeatureStore",
        "metadata": {"name": "demo", "namespace": NS, "uid": "0b5e9a52-8c1e-4a43-9b2e-5c0d7f6b1a11"},
        "spec": {
            "project": "demo",
            "provider": "local",
            "featureRepo": {"configMap": {"name": "demo-feature-repo"}},
            "registry": {"server": {"enabled": True}},
            "offlineServer": {"enabled": True},
            "kubeflow": {"allowedNamespaces": ["kserve-models"]},
        },
    }
    config = OperatorConfig(istio=True, istio_native_sidecars=native)
    fs = parse_featurestore(doc)
    fs = fs.model_copy(update={"spec": resolve(fs.spec, config)})
    return render(fs, planned_endpoints(fs), config, repo=RepoSource("r")).objects, config


def _rows() -> list[dict[str, str]]:
    text = DOC.read_text()
    table = text[text.index("| caller | namespace / ServiceAccount |") :]
    rows = [line for line in table.splitlines() if line.startswith("|")][2:]
    keys = ["caller", "identity", "server", "port", "admitted"]
    return [dict(zip(keys, (c.strip() for c in r.strip("|").split("|")), strict=True)) for r in rows]


def _documented_sidecar() -> dict[str, Any]:
    block = re.search(r"```yaml\n(.*?)```", DOC.read_text(), re.S)
    assert block, "docs/security/mesh.md shows the calling namespace's Sidecar"
    return yaml.safe_load(block.group(1).replace("STORE_NAMESPACE", NS))


def _template(objects: list[dict[str, Any]], kind: str, component: str) -> dict[str, Any]:
    for o in objects:
        if o["kind"] == kind and o["metadata"]["labels"]["app.kubernetes.io/component"] == component:
            spec = o["spec"]["jobTemplate"]["spec"] if kind == "CronJob" else o["spec"]
            return spec["template"]
    raise AssertionError(f"no {kind} {component} rendered")


def _workload(template: dict[str, Any], namespace: str = NS) -> Workload:
    meta = template["metadata"]
    return Workload(
        namespace,
        template["spec"].get("serviceAccountName", "default"),
        dict(meta["labels"]),
        (meta.get("annotations") or {}).get("sidecar.istio.io/inject") != "false",
    )


SERVERS = {
    "feature-server": ("Deployment", "feature-server"),
    "registry-server": ("Deployment", "registry-server"),
    "offline-server": ("Deployment", "offline-server"),
    "online-store": ("StatefulSet", "online-store"),
}
RENDERED_CALLERS = {
    "feature server": ("Deployment", "feature-server"),
    "materialization Job": ("CronJob", "materialization"),
    "feast apply Job": ("Job", "feature-repo"),
}


def _caller(row: dict[str, str], objects: list[dict[str, Any]]) -> Workload:
    ns, sa = (s.strip() for s in row["identity"].split("/"))
    for prefix, (kind, component) in RENDERED_CALLERS.items():
        if row["caller"].startswith(prefix):
            rendered = _workload(_template(objects, kind, component))
            assert rendered.service_account == sa, f"the table's identity of {row['caller']} is not the rendered one"
            return rendered
    return Workload(ns, sa, {"app": row["caller"].split()[0].lower()})  # Kubeflow injects sidecars in profiles


ROWS = _rows()


def test_the_table_covers_every_server_and_a_refusal():
    assert {r["server"] for r in ROWS} == set(SERVERS)
    assert any(r["admitted"] == "refused" for r in ROWS)


@pytest.mark.parametrize("row", ROWS, ids=[f"{r['caller']}->{r['server']}" for r in ROWS])
def test_promised_pair(row):
    native = "no native sidecars" not in row["caller"]
    objects, _ = _store(native)
    mesh = [o for o in objects if o["kind"] == "AuthorizationPolicy"] + kubeflow_defaults(NS)
    if "with the Sidecar above" in row["caller"]:
        mesh.append(_documented_sidecar())
    kind, component = SERVERS[row["server"]]
    port = int(row["port"])
    req = Request(_caller(row, objects), _workload(_template(objects, kind, component)), port, PORTS_HTTP[port])
    decision = evaluate(req, mesh)
    if row["admitted"] == "refused":
        assert not decision.allowed, f"promised refused, admitted by {decision.by}"
        return
    assert decision.allowed, f"promised {row['admitted']}, but {decision.by}"
    if row["admitted"] == "no sidecar on the server":
        assert decision.by.startswith("no sidecar on the server"), decision.by
        return
    expected = sorted(f"{NS}/{name.strip()}" for name in row["admitted"].split(","))
    assert decision.by.split(", ") == expected
