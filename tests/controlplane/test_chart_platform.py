"""What platform engineers expect of the chart, with the real helm binary: a strict values schema
(unknown keys refused at every level), a readiness probe on kopf's health endpoint, Prometheus
Operator objects only when asked for and served, alert rules checked by promtool, a Grafana
dashboard checked against its JSON model's schema, queries naming only metrics the operator
exports, one version for package, chart and image, and a chart README generated from values."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from typing import Any

import featurestore_operator
import jsonschema
import pytest
import yaml
from featurestore_operator import metrics as _metrics  # noqa: F401 - registers every metric
from featurestore_operator.api import OperatorConfig, parse_featurestore, resolve
from featurestore_operator.backends.planned import planned_endpoints
from featurestore_operator.render import render as render_store
from prometheus_client import REGISTRY

from tests.support.chart_values import ALL_MONITORING, MONITORING_APIS
from tests.support.helm import CHART, ROOT, find, helm, render

SCHEMA = json.loads((CHART / "values.schema.json").read_text())
DASHBOARD_SCHEMA = json.loads((ROOT / "tests" / "support" / "schemas" / "grafana-dashboard.schema.json").read_text())


def _operator_metric_names() -> set[str]:
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""]}
    names = set()
    for family in REGISTRY.collect():  # labelled metrics have no samples before their first use
        names.update(family.name + suffix for suffix in suffixes.get(family.type, [""]))
    return {n for n in names if n.startswith("featurestore_")}


def _metrics_in(expr: str) -> set[str]:
    return set(re.findall(r"\bfeaturestore_[a-z_]+\b", expr))


# --------------------------------------------------------------------------- values schema


def _objects(node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = []
    if "properties" in node:
        out.append((path or "(root)", node))
        for key, sub in node["properties"].items():
            out += _objects(sub, f"{path}.{key}")
    if isinstance(node.get("items"), dict):
        out += _objects(node["items"], path + "[]")
    return out


def test_every_schema_object_refuses_unknown_keys():
    loose = [p for p, n in _objects(SCHEMA) if n.get("additionalProperties") is not False]
    assert not loose, f"objects of values.schema.json that accept unknown keys: {loose}"


def _leaf_paths(values: Any, path: str = "") -> list[str]:
    if isinstance(values, dict) and values:
        return [p for k, v in values.items() for p in _leaf_paths(v, f"{path}.{k}" if path else k)]
    return [path]


def test_schema_covers_every_value():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for path in _leaf_paths(values):
        node = SCHEMA
        for key in path.split("."):
            props = node.get("properties") or {}
            if key not in props:
                assert "properties" not in node or node.get("additionalProperties") not in (False, None), path
                break
            node = props[key]


@pytest.mark.parametrize(
    "value",
    [
        "imageTag=x",
        "image.tags=x",
        "monitoring.podmonitor.enabled=true",
        "gcp.projectId=p",
        "metrics.service.prot=1",
        "readinessProbe.path=/x",
        "podDefaults.featureserver.env=x",
        "feastPodSettings.featureserver.env=x",
        "crds.instal=false",
    ],
)
def test_helm_refuses_unknown_keys(helm_bin, value):
    out = helm(helm_bin, "template", "fso", str(CHART), "--set", value, check=False)
    assert out.returncode != 0, out.stdout[:500]
    assert "not allowed" in out.stderr or "must be one of" in out.stderr, out.stderr


# --------------------------------------------------------------------------- probes, pod defaults


def test_readiness_and_liveness_endpoints(helm_bin):
    """Liveness: /healthz. Readiness: /readyz, the same answer and, with the webhook on, only once the
    replica serves it (the webhook Service sends reviews to ready pods: runtime/health.py)."""
    [dep] = find(render(helm_bin), "Deployment")
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    port = next(p for p in container["ports"] if p["name"] == "health")
    assert {"name": "FSO_HEALTH_PORT", "value": str(port["containerPort"])} in container["env"]


@pytest.mark.parametrize("name", ["feastPodSettings", "podDefaults"])  # podDefaults: the former name
def test_pod_defaults_reach_the_operator_as_valid_config(helm_bin, monkeypatch, name):
    value = {"all": {"nodeSelector": {"pool": "feast"}}, "featureServer": {"logLevel": "INFO"}}
    [dep] = find(render(helm_bin, "--set-json", f"{name}={json.dumps(value)}"), "Deployment")
    env = {e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    monkeypatch.setenv("FSO_POD_DEFAULTS", env["FSO_POD_DEFAULTS"])
    config = OperatorConfig()
    assert config.pod_defaults.all.node_selector == {"pool": "feast"}
    assert config.pod_defaults.feature_server.log_level == "INFO"


def _notes(helm_bin: str, *args: str) -> subprocess.CompletedProcess:
    return helm(helm_bin, "install", "fso", str(CHART), "--dry-run=client", *args, check=False)


def test_the_former_name_pod_defaults_warns_in_the_notes_and_cannot_be_mixed(helm_bin):
    value = json.dumps({"all": {"nodeSelector": {"pool": "feast"}}})
    assert "podDefaults is deprecated" in _notes(helm_bin, "--set-json", f"podDefaults={value}").stdout
    assert "deprecated" not in _notes(helm_bin, "--set-json", f"feastPodSettings={value}").stdout
    both = helm(
        helm_bin,
        "template",
        "fso",
        str(CHART),
        "--set-json",
        f"podDefaults={value}",
        "--set-json",
        f"feastPodSettings={value}",
        check=False,
    )
    assert both.returncode != 0 and "set feastPodSettings only" in both.stderr, both.stderr


# --------------------------------------------------------------------------- monitoring


def test_monitoring_objects_only_when_enabled_and_served(helm_bin):
    kinds = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}
    assert not kinds & {d["kind"] for d in render(helm_bin, *MONITORING_APIS)}  # served, not enabled
    without_crds = render(helm_bin, *ALL_MONITORING)  # enabled, not served: no failed install
    assert not kinds & {d["kind"] for d in without_crds}
    assert find(without_crds, "ConfigMap", "fso-featurestore-operator-dashboard")  # a plain ConfigMap
    docs = render(helm_bin, *ALL_MONITORING, *MONITORING_APIS)
    assert kinds <= {d["kind"] for d in docs}


def test_service_monitor_selects_the_metrics_service(helm_bin):
    docs = render(helm_bin, *ALL_MONITORING, *MONITORING_APIS)
    [sm] = find(docs, "ServiceMonitor")
    [svc] = [d for d in find(docs, "Service") if d["metadata"]["name"].endswith("-metrics")]
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert sm["spec"]["endpoints"][0]["port"] in {p["name"] for p in svc["spec"]["ports"]}


def test_pod_monitor_matches_rendered_feature_server_pods(helm_bin):
    docs = render(helm_bin, *ALL_MONITORING, *MONITORING_APIS)
    [pm] = find(docs, "PodMonitor")
    fs = parse_featurestore(
        {
            "apiVersion": "featurestore.kubeflow.org/v1alpha1",
            "kind": "FeatureStore",
            "metadata": {"name": "demo", "namespace": "team-a", "uid": "u"},
            "spec": {"project": "demo", "featureServer": {"metrics": {"enabled": True}}},
        }
    )
    config = OperatorConfig()
    fs = fs.model_copy(update={"spec": resolve(fs.spec, config)})
    [dep] = [
        o
        for o in render_store(fs, planned_endpoints(fs), config).objects
        if o["kind"] == "Deployment" and o["metadata"]["name"] == "demo-feature-server"
    ]
    pod = dep["spec"]["template"]
    assert pm["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    ports = {p["name"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
    assert pm["spec"]["podMetricsEndpoints"][0]["port"] in ports
    assert pm["spec"]["namespaceSelector"] == {"any": True}
    # watching some namespaces: only those
    [scoped] = find(render(helm_bin, *ALL_MONITORING, *MONITORING_APIS, "--set", "watchNamespaces={a,b}"), "PodMonitor")
    assert scoped["spec"]["namespaceSelector"] == {"matchNames": ["a", "b"]}


def test_alert_rules_pass_promtool_and_use_exported_metrics(helm_bin, tmp_path):
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: hack/setup.sh installs Debian's prometheus package for it"
    [rule] = find(
        render(helm_bin, *ALL_MONITORING, *MONITORING_APIS, "--set", "monitoring.prometheusRule.notReadyMinutes=20"),
        "PrometheusRule",
    )
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    assert set(alerts) == {"FeatureStoreNotReady", "FeatureStoreMaterializationFailing", "FeatureStoreFeaturesStale"}
    assert alerts["FeatureStoreNotReady"]["for"] == "20m"
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump(rule["spec"]))
    out = subprocess.run([promtool, "check", "rules", str(rules_file)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "SUCCESS: 3 rules found" in out.stdout, out.stdout + out.stderr
    exported = _operator_metric_names()
    for name, r in alerts.items():
        used = _metrics_in(r["expr"])
        assert used and used <= exported, f"{name} queries {used - exported}, which the operator does not export"


def test_dashboard_matches_its_schema_and_exported_metrics(helm_bin):
    [cm] = find(render(helm_bin, *ALL_MONITORING), "ConfigMap", "fso-featurestore-operator-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(cm["data"]["featurestore-operator.json"])
    jsonschema.validate(dashboard, DASHBOARD_SCHEMA)
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    exported = _operator_metric_names()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            used = _metrics_in(target["expr"])
            assert used and used <= exported, f"{panel['title']}: {used - exported} not exported"


def test_dashboard_schema_rejects_a_broken_dashboard():
    broken = {"uid": "x", "title": "t", "schemaVersion": 39, "panels": [{"id": 1, "title": "p", "type": "timeseries"}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, DASHBOARD_SCHEMA)


# --------------------------------------------------------------------------- versions, README


def test_one_version_for_package_chart_and_image(helm_bin):
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["version"] == chart["appVersion"] == featurestore_operator.__version__ == version
    [dep] = find(render(helm_bin), "Deployment")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == f"featurestore-operator:{version}"


def test_chart_readme_is_generated_from_values():
    out = subprocess.run(
        [sys.executable, str(ROOT / "hack" / "chart-readme.py"), "--check"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    readme = (CHART / "README.md").read_text()
    for key in (
        "podDefaults",
        "feastPodSettings",
        "monitoring.prometheusRule.notReadyMinutes",
        "crds.install",
        "readinessProbe.periodSeconds",
    ):
        assert f"`{key}`" in readme
