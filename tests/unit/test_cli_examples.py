"""The CLI on the examples as shipped: with the sample operator configuration every FeatureStore in
examples/ validates and renders; files without one are skipped with a note (exit 0); a misspelled key
gets the nearest real one; `validate -o json` is one report a CI pipeline can read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from featurestore_operator.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
CONFIG = EXAMPLES / "operator-config.yaml"
FILES = sorted(p for p in EXAMPLES.rglob("*") if p.suffix in (".yaml", ".yml", ".json"))


def _kinds(path: Path) -> list[str]:
    return [d.get("kind") for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]


STORE_FILES = [p for p in FILES if "FeatureStore" in _kinds(p)]
OTHER_FILES = [p for p in FILES if "FeatureStore" not in _kinds(p)]


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(EXAMPLES)) for p in paths]


def test_examples_hold_stores_and_other_files():
    assert len(STORE_FILES) >= 7 and CONFIG in OTHER_FILES


@pytest.mark.parametrize("path", STORE_FILES, ids=_ids(STORE_FILES))
def test_every_example_validates_with_the_shipped_config(path, capsys):
    assert main(["validate", "-f", str(path), "--config", str(CONFIG)]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert out.count(": valid") == _kinds(path).count("FeatureStore"), out


@pytest.mark.parametrize("path", STORE_FILES, ids=_ids(STORE_FILES))
def test_every_example_renders_with_the_shipped_config(path, capsys):
    assert main(["render", "-f", str(path), "--config", str(CONFIG)]) == 0, capsys.readouterr().err
    objects = [o for o in yaml.safe_load_all(capsys.readouterr().out) if o]
    stores = [
        d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict) and d.get("kind") == "FeatureStore"
    ]
    for store in stores:
        name = store["metadata"]["name"]
        mine = [o for o in objects if o["metadata"].get("labels", {}).get("app.kubernetes.io/instance") == name]
        # engines that would copy the Redis AUTH into a ConfigMap get no CronJob (docs/security/compute-engines.md)
        copies_config = store["spec"].get("compute", {}).get("engine") in ("kubernetes", "sparkApplication")
        wanted = {"ConfigMap", "Deployment"} | (set() if copies_config else {"CronJob"})
        assert wanted <= {o["kind"] for o in mine}, (name, [o["kind"] for o in mine])


@pytest.mark.parametrize("command", ["validate", "render"])
@pytest.mark.parametrize("path", OTHER_FILES, ids=_ids(OTHER_FILES))
def test_files_without_a_featurestore_are_skipped_with_a_note(path, command, capsys):
    assert main([command, "-f", str(path), "--config", str(CONFIG)]) == 0
    out, err = capsys.readouterr()
    assert out == "" and f"note: {path}: no FeatureStore in this file" in err, err


def test_the_whole_directory_validates_in_one_call(capsys):
    assert main(["validate", "-f", str(EXAMPLES), "--config", str(CONFIG)]) == 0
    out, err = capsys.readouterr()
    assert out.count(": valid") == sum(_kinds(p).count("FeatureStore") for p in STORE_FILES)
    assert err.count("note: ") >= len(OTHER_FILES)


def test_the_compute_examples_need_the_shipped_config(capsys):
    """Without an operator configuration (no GCP project) the gcp compute examples are refused:
    the sample configuration is what makes them pass, not a lenient CLI."""
    path = EXAMPLES / "kubernetes-compute.yaml"
    assert main(["render", "-f", str(path)]) == 1
    assert "spec.gcp.project" in capsys.readouterr().err
    assert main(["render", "-f", str(path), "--config", str(CONFIG)]) == 0
    objects = [o for o in yaml.safe_load_all(capsys.readouterr().out) if o]
    # computeEnabled: true in the sample -> the engine's RoleBinding to the chart's ClusterRole is rendered
    bindings = [o for o in objects if o["kind"] == "RoleBinding" and o["roleRef"]["kind"] == "ClusterRole"]
    assert bindings and all(o["metadata"]["namespace"] == "team-a" for o in bindings), bindings


TYPO = """apiVersion: featurestore.kubeflow.org/v1alpha1
kind: FeatureStore
metadata: {name: typo, namespace: team-a}
spec:
  project: p
  featureServer:
    replica: 2
    pod: {tolerations: [{key: k, efect: NoSchedule}]}
  materialisation: {schedule: "@daily"}
  zzzzz: 1
"""


def test_unknown_fields_get_the_nearest_real_one(tmp_path, capsys):
    path = tmp_path / "typo.yaml"
    path.write_text(TYPO)
    assert main(["validate", "-f", str(path)]) == 1
    err = capsys.readouterr().err
    assert "spec.featureServer.replica: unknown field; did you mean 'replicas'?" in err, err
    assert "spec.featureServer.pod.tolerations[0].efect: unknown field; did you mean 'effect'?" in err, err
    assert "spec.materialisation: unknown field; did you mean 'materialization'?" in err, err
    assert "spec.zzzzz: unknown field; remove it or check its spelling" in err, err


def test_unknown_config_keys_get_the_nearest_real_one_in_their_style(tmp_path, capsys):
    config = tmp_path / "operator.yaml"
    config.write_text("gcpProjet: p\nFSO_GCP_REGOIN: r\ncompute_enabeld: true\npolicy: {allowedProject: [p]}\n")
    assert main(["validate", "-f", str(EXAMPLES / "local.yaml"), "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert f"{config}: gcpProjet: unknown field; did you mean 'gcpProject'?" in err, err
    assert "FSO_GCP_REGOIN: unknown field; did you mean 'FSO_GCP_REGION'?" in err, err
    assert "compute_enabeld: unknown field; did you mean 'compute_enabled'?" in err, err
    assert "policy.allowedProject: unknown field; did you mean 'allowedProjects'?" in err, err


def test_validate_json_is_one_report(tmp_path, capsys):
    bad = tmp_path / "typo.yaml"
    bad.write_text(TYPO)
    near_miss = tmp_path / "near.yaml"
    near_miss.write_text(TYPO.replace("kind: FeatureStore", "kind: FeatureStor"))
    args = ["validate", "-o", "json", "--config", str(CONFIG), "-f", str(EXAMPLES / "local.yaml")]
    args += ["-f", str(EXAMPLES / "feature-repos" / "demo.yaml"), "-f", str(bad), "-f", str(near_miss)]
    assert main(args) == 1
    out, err = capsys.readouterr()
    assert err == ""
    report = json.loads(out)
    assert report["valid"] is False
    by_name = {s["name"]: s for s in report["featureStores"]}
    assert by_name["demo"]["valid"] is True and by_name["demo"]["errors"] == []
    assert by_name["typo"]["valid"] is False and by_name["typo"]["file"] == str(bad)
    fields = {e["field"]: e["message"] for e in by_name["typo"]["errors"]}
    assert "did you mean 'replicas'?" in fields["spec.featureServer.replica"], fields
    assert [s["file"] for s in report["skipped"]] == [str(EXAMPLES / "feature-repos" / "demo.yaml")]
    assert [e["file"] for e in report["errors"]] == [str(near_miss)] and "FeatureStor" in report["errors"][0]["message"]


def test_validate_json_of_valid_examples_exits_zero(capsys):
    assert main(["validate", "-o", "json", "--config", str(CONFIG), "-f", str(EXAMPLES)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] and len(report["featureStores"]) >= 7 and report["errors"] == []


def test_validate_json_reports_a_bad_config_file_as_json(tmp_path, capsys):
    config = tmp_path / "operator.yaml"
    config.write_text("gcpProjet: p\n")
    assert main(["validate", "-o", "json", "--config", str(config), "-f", str(EXAMPLES / "local.yaml")]) == 1
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert err == "" and report["valid"] is False
    assert report["errors"][0]["file"] == str(config) and "did you mean 'gcpProject'" in report["errors"][0]["message"]
