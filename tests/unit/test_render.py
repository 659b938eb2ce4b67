"""Pure rendering: golden files per example, invariants every object must hold, Feast loads the config."""

from __future__ import annotations

import json
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from featurestore_operator.api import OperatorConfig, parse_featurestore, resolve
from featurestore_operator.backends.planned import planned_endpoints
from featurestore_operator.cli import _dump
from featurestore_operator.render import (
    ApiVersions,
    Endpoints,
    OnlineEndpoint,
    RepoSource,
    SecretKey,
    programs,
    render,
)
from featurestore_operator.render.names import CONFIG_HASH_ANNOTATION

from tests.support import golden
from tests.support.prerequisites import missing
from tests.support.versions import V120

ROOT = Path(__file__).resolve().parents[2]
# the FeatureStore examples (examples/operator-config.yaml is the CLI's operator configuration)
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.yaml") if "\nkind: FeatureStore\n" in p.read_text())
GOLDEN = Path(__file__).parent / "golden"
CONFIG = OperatorConfig(gcp_project="my-gcp-project", gcp_region="us-central1", compute_enabled=True)
UID = "0b5e9a52-8c1e-4a43-9b2e-5c0d7f6b1a11"


def load(path: Path):
    doc = yaml.safe_load(path.read_text())
    doc["metadata"]["uid"] = UID
    fs = parse_featurestore(doc)
    return fs.model_copy(update={"spec": resolve(fs.spec, CONFIG)})


def rendered(path: Path, versions: ApiVersions | None = None):
    fs = load(path)
    repo = RepoSource(revision="a1b2c3d4e5f60718") if fs.spec.feature_repo else None
    return fs, render(fs, planned_endpoints(fs), CONFIG, versions, repo)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_golden(example):
    _, out = rendered(example)
    text = _dump(out.objects, "yaml")
    # the one way to (re)write goldens (UPDATE_GOLDEN=1: then review the diff)
    golden.check(
        GOLDEN / f"{example.stem}.yaml", text, f"render output of examples/{example.name}", f"pytest {__file__}"
    )


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_every_object_is_owned_labelled_and_valid(example):
    fs, out = rendered(example)
    names = set()
    for obj in out.objects:
        meta = obj["metadata"]
        key = (obj["kind"], meta["name"])
        assert key not in names, f"duplicate {key}"
        names.add(key)
        assert meta["namespace"] == fs.metadata.namespace
        assert meta["ownerReferences"][0]["uid"] == UID and meta["ownerReferences"][0]["controller"] is True
        labels = meta["labels"]
        for k in ("name", "instance", "component", "managed-by", "part-of"):
            assert f"app.kubernetes.io/{k}" in labels
        assert len(meta["name"]) <= 63
        if obj["apiVersion"].startswith(("kubeflow.org", "security.istio.io")):
            continue  # not in the Kubernetes schema set
        kubernetes_validate.validate(obj, kubernetes_validate.latest_version(), strict=True)


def test_legacy_api_versions_are_used_when_served():
    _, out = rendered(ROOT / "examples" / "gcp-memorystore.yaml", V120)
    by_kind = {o["kind"]: o for o in out.objects}
    assert by_kind["PodDisruptionBudget"]["apiVersion"] == "policy/v1beta1"
    assert by_kind["HorizontalPodAutoscaler"]["apiVersion"] == "autoscaling/v2beta2"
    assert by_kind["CronJob"]["apiVersion"] == "batch/v1beta1"
    # The legacy shapes are accepted by the real 1.20 API server in the control-plane tier;
    # autoscaling/v2beta2 is still in the 1.25 schema set, so check it here too.
    kubernetes_validate.validate(by_kind["HorizontalPodAutoscaler"], "1.25.0", strict=True)
    _, git = rendered(ROOT / "examples" / "git-hourly.yaml", V120)
    cron = next(o for o in git.objects if o["kind"] == "CronJob")
    assert "timeZone" not in cron["spec"], "1.20 has no CronJob.spec.timeZone"


def test_no_secret_values_anywhere():
    fs = load(ROOT / "examples" / "gcp-memorystore.yaml")
    endpoints = Endpoints(
        online=OnlineEndpoint(
            "10.0.0.3", 6378, tls=True, password=SecretKey("s", "password"), ca=SecretKey("s", "ca.crt")
        ),
        offline=planned_endpoints(fs).offline,
    )
    out = render(fs, endpoints, CONFIG)
    blob = json.dumps(out.objects)
    assert "${REDIS_PASSWORD}" in out.server_yaml
    for obj in out.objects:
        assert obj["kind"] != "Secret"
        for c in _containers(obj):
            for env in c.get("env", []):
                if "PASSWORD" in env["name"] or "TOKEN" in env["name"]:
                    assert "value" not in env and "secretKeyRef" in env["valueFrom"]
    assert "BEGIN CERTIFICATE" not in blob


def _containers(obj):
    spec = obj.get("spec", {})
    tpl = spec.get("template") or spec.get("jobTemplate", {}).get("spec", {}).get("template") or {}
    pod = tpl.get("spec", {})
    return pod.get("containers", []) + pod.get("initContainers", [])


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_every_feast_process_writes_the_registry_whole(example):
    """Every container of the Feast image runs Python with the prelude that makes file registry
    writes atomic (render/programs/registry_writes.py): a Feast process started any other way (the
    bare `feast` CLI) rewrites the registry in place, and the store's other pods read it torn."""
    fs, out = rendered(example)
    prelude = programs.source(programs.PRELUDE)
    shells = {"copy-repo", "add-permissions"}  # init containers of the Feast image running sh scripts
    feast = [c for o in out.objects for c in _containers(o) if c["image"] == fs.spec.images.feast]
    feast = [c for c in feast if c["name"] not in shells]
    assert feast, "every example runs Feast"
    for c in feast:
        argv = [*c.get("command", []), *c.get("args", [])]
        program = argv[2].removeprefix(programs.source(programs.SKIP_TYPECHECKS) + "\n\n")
        assert argv[:2] == ["python", "-c"] and program.startswith(prelude), (c["name"], argv[:2])


def test_config_change_rolls_pods_and_only_then():
    fs = load(ROOT / "examples" / "local.yaml")
    a = render(fs, planned_endpoints(fs), CONFIG)
    b = render(fs, planned_endpoints(fs), CONFIG)
    assert a.objects == b.objects, "render must be deterministic"
    changed = fs.model_copy(
        update={
            "spec": fs.spec.model_copy(
                update={"registry": fs.spec.registry.model_copy(update={"cache_ttl_seconds": 5})}
            )
        }
    )
    c = render(changed, planned_endpoints(changed), CONFIG)

    def pod_hash(r):
        dep = next(
            o for o in r.objects if o["kind"] == "Deployment" and o["metadata"]["name"].endswith("feature-server")
        )
        return dep["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]

    assert pod_hash(a) == pod_hash(b) != pod_hash(c)


def test_pending_backends_render_no_workloads():
    fs = load(ROOT / "examples" / "gcp-memorystore.yaml")
    out = render(fs, Endpoints(), CONFIG)
    kinds = {o["kind"] for o in out.objects}
    assert not kinds & {"Deployment", "CronJob", "Job"}
    assert "<pending>" in out.server_yaml


def test_user_strings_never_reach_a_shell_string():
    fs = load(ROOT / "examples" / "git-hourly.yaml")
    out = render(fs, planned_endpoints(fs), CONFIG, repo=RepoSource("f" * 16))
    job = next(o for o in out.objects if o["kind"] == "Job")
    fetch = job["spec"]["template"]["spec"]["initContainers"][0]
    script = fetch["command"][2]
    assert fs.spec.feature_repo.git.url not in script and fs.spec.feature_repo.git.ref not in script
    assert fetch["args"] == [fs.spec.feature_repo.git.url, fs.spec.feature_repo.git.ref]
    cron = next(o for o in out.objects if o["kind"] == "CronJob")
    args = _containers(cron)[0]["args"]
    assert args[0] == "-c" and args[2] == "--views" and "transactions_1h" not in args[1]  # argv, not source


def test_workers_follow_cpu_limit():
    fs = load(ROOT / "examples" / "local.yaml")
    spec = fs.spec.model_copy(
        update={
            "feature_server": fs.spec.feature_server.model_copy(
                update={"resources": fs.spec.feature_server.resources.model_copy(update={"limits": {"cpu": "3500m"}})}
            )
        }
    )
    fs = fs.model_copy(update={"spec": spec})
    out = render(fs, planned_endpoints(fs), CONFIG)
    dep = next(o for o in out.objects if o["metadata"]["name"] == "demo-feature-server" and o["kind"] == "Deployment")
    args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--workers") + 1] == "3"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_feast_loads_rendered_configs(example, tmp_path, monkeypatch):
    try:
        from feast import repo_config
    except ImportError as err:
        missing(f"feast is not importable ({err}): pip install 'feast[redis,gcp]'")
    fs, out = rendered(example)
    monkeypatch.setenv("REDIS_PASSWORD", "placeholder")
    for name, text in (("server", out.server_yaml), ("client", out.client_yaml)):
        path = tmp_path / name / "feature_store.yaml"
        path.parent.mkdir()
        path.write_text(text.replace("<pending>", "10.0.0.3"))
        cfg = repo_config.load_repo_config(path.parent, path)
        assert cfg.project == yaml.safe_load(text)["project"]
        assert cfg.online_store.type in ("redis", "remote")
        if name == "server":  # materialization writes in batches (a window at once holds ~4 KB a row)
            batch = cfg.materialization_config.online_write_batch_size
            assert batch == fs.spec.materialization.write_batch_size
