"""The CLI as a user runs it: exit codes and messages."""

from __future__ import annotations

from pathlib import Path

import yaml
from featurestore_operator.api.crd import CRD_FILE
from featurestore_operator.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_render_prints_every_object(capsys):
    assert main(["render", "-f", str(ROOT / "examples" / "local.yaml")]) == 0
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    kinds = [d["kind"] for d in docs]
    for kind in (
        "ServiceAccount",
        "ConfigMap",
        "Deployment",
        "Service",
        "StatefulSet",
        "PersistentVolumeClaim",
        "CronJob",
        "Job",
        "PodDefault",
    ):
        assert kind in kinds


def test_render_shows_pending_endpoints(capsys):
    assert main(["render", "-f", str(ROOT / "examples" / "gcp-memorystore.yaml"), "-o", "json"]) == 0
    assert "<pending>:6378" in capsys.readouterr().out


def test_render_in_cert_manager_mode_mounts_the_issued_secret(capsys, monkeypatch):
    """With an issuer configured the servers mount cert-manager's Secret, not the operator CA's."""
    monkeypatch.setenv("FSO_TLS_ISSUER", "ClusterIssuer/corp-ca")
    assert main(["render", "-f", str(ROOT / "examples" / "authenticated.yaml")]) == 0
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    [server] = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-feature-server")]
    secrets = {v["secret"]["secretName"] for v in server["spec"]["template"]["spec"]["volumes"] if "secret" in v}
    assert any(s.endswith("-feast-cert") for s in secrets), secrets
    assert not any(s.endswith("-feast-tls") for s in secrets), secrets


def test_crd_command_equals_committed(capsys):
    assert main(["crd"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == yaml.safe_load((ROOT / "crds" / CRD_FILE).read_text())


def test_validate_reports_field_and_fix(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: featurestore.kubeflow.org/v1alpha1\nkind: FeatureStore\nmetadata: {name: x}\n"
        "spec: {project: p, onlineStore: {memorystore: {memorySizeGb: 1000}}, materialization: {schedule: 'nope'}}\n"
    )
    assert main(["validate", "-f", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "spec.onlineStore.memorystore.memorySizeGb" in err and "300" in err
    assert "spec.materialization.schedule" in err


def test_validate_ok(capsys):
    assert main(["validate", "-f", str(ROOT / "examples" / "local.yaml")]) == 0
    assert "valid" in capsys.readouterr().out


def test_missing_file_is_a_clear_error(capsys):
    assert main(["render", "-f", "/nonexistent.yaml"]) == 1
    assert "no such file" in capsys.readouterr().err


def test_bad_yaml_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "b.yaml"
    bad.write_text("spec: [unclosed")
    assert main(["validate", "-f", str(bad)]) == 1
    assert "not valid YAML" in capsys.readouterr().err


FOREIGN_GSA = """apiVersion: featurestore.kubeflow.org/v1alpha1
kind: FeatureStore
metadata: {name: sneaky, namespace: team-a}
spec:
  project: p
  provider: gcp
  gcp: {serviceAccount: featurestore-operator@my-gcp-project.iam.gserviceaccount.com}
"""


def test_validate_applies_the_admin_policy_from_a_config_file(tmp_path, capsys):
    config = tmp_path / "operator.yaml"
    config.write_text(
        "FSO_GCP_PROJECT: my-gcp-project\ngcpRegion: us-central1\n"
        "gcp_service_account: featurestore-operator@my-gcp-project.iam.gserviceaccount.com\n"
        "policy: {maxMemorystoreSizeGb: 4}\n"
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text(FOREIGN_GSA)
    assert main(["validate", "--config", str(config), "-f", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "featurestore/sneaky: spec.gcp.serviceAccount" in err and "deniedServiceAccounts" in err
    # the example asks for 5 GB: over this policy's ceiling
    assert main(["validate", "--config", str(config), "-f", str(ROOT / "examples" / "gcp-memorystore.yaml")]) == 1
    assert "maxMemorystoreSizeGb 4" in capsys.readouterr().err


def test_validate_applies_the_admin_policy_from_fso_variables(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FSO_GCP_PROJECT", "my-gcp-project")
    monkeypatch.setenv("FSO_GCP_REGION", "us-central1")
    assert main(["validate", "-f", str(ROOT / "examples" / "gcp-memorystore.yaml")]) == 0
    monkeypatch.setenv("FSO_POLICY", '{"allowedProjects": ["other-project"]}')
    assert main(["validate", "-f", str(ROOT / "examples" / "gcp-memorystore.yaml")]) == 1
    assert "allowedProjects" in capsys.readouterr().err


def test_gsa_prints_the_default_service_account_of_any_namespace(capsys, monkeypatch):
    """An admin creates these GSAs: a Kubeflow namespace over 24 characters gets a valid id too."""
    monkeypatch.setenv("FSO_GCP_PROJECT", "my-proj")
    assert main(["gsa", "team-a", "kubeflow-user-example-com"]) == 0
    out = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    assert out["team-a"] == "feast-team-a@my-proj.iam.gserviceaccount.com"
    gsa_id = out["kubeflow-user-example-com"].split("@")[0]
    assert gsa_id.startswith("feast-kubeflo-") and len(gsa_id) == 30
