"""The kind end-to-end run (tests/e2e/run-kind-e2e.sh) as a test, plus checks of its assets that need
no cluster.

`test_kind_e2e` runs the script when Docker (with a reachable daemon), kind, kubectl and helm are
there, and skips naming what is missing otherwise (the same scenario runs on a node assembled on
this machine: test_node.py). The other tests keep the scripts and the example feature repo
(examples/feature-repos/demo.yaml) honest without a cluster: shell syntax (and shellcheck when
installed), and the feature repo through real Feast against the operator's own rendered
feature_store.yaml and a real redis-server: apply without data, generate, materialize, read the
online values the scenario asserts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.controlplane import find_tool, tool_path_dirs
from tests.support.prerequisites import missing as missing_prerequisite
from tests.support.prerequisites import not_here

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SCRIPT = HERE / "run-kind-e2e.sh"
SCENARIO = HERE / "scenario.sh"
REPO_CONFIGMAP = ROOT / "examples" / "feature-repos" / "demo.yaml"


def _missing_for_kind() -> list[str]:
    """What keeps the kind e2e from running here (empty: it can run)."""
    missing = []
    docker = shutil.which("docker")
    if not docker:
        missing.append("docker CLI not installed")
    else:
        try:
            info = subprocess.run(
                [docker, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=60
            )
            reason = None if info.returncode == 0 else (info.stderr.strip().splitlines() or ["docker info failed"])[-1]
        except subprocess.TimeoutExpired:
            reason = "docker info timed out"
        if reason:
            missing.append(f"docker daemon not reachable ({reason})")
    if not shutil.which("kind"):
        missing.append("kind not installed")
    for tool in ("kubectl", "helm"):
        if not find_tool(tool):
            missing.append(f"{tool} not installed")
    for tool in ("curl", "python3"):
        if not shutil.which(tool):
            missing.append(f"{tool} not installed")
    return missing


def test_kind_e2e(tmp_path):
    missing = _missing_for_kind()
    if missing:
        not_here("kind e2e needs Docker + kind: " + "; ".join(missing))
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([env.get("PATH", ""), *tool_path_dirs()])
    log = tmp_path / "kind-e2e.log"
    with log.open("w") as out:
        proc = subprocess.run(
            ["bash", str(SCRIPT)], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT, timeout=3600
        )
    text = log.read_text(errors="replace")
    assert proc.returncode == 0, f"run-kind-e2e.sh exited {proc.returncode}; last lines:\n" + "\n".join(
        text.splitlines()[-80:]
    )
    assert "[e2e" in text and "PASSED" in text


SCRIPTS = [
    SCRIPT,
    SCENARIO,
    HERE / "scenario-gcp.sh",
    *(ROOT / "hack" / f"{name}.sh" for name in ("provision-node", "release", "local-registry", "lock-images")),
]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_syntax(script):
    out = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert subprocess.run(["bash", "-n", str(HERE / "lib.sh")], capture_output=True).returncode == 0
    assert os.access(script, os.X_OK), f"{script.name} must be executable"
    text = script.read_text()
    assert "set -euo pipefail" in text or "set -Eeuo pipefail" in text
    shellcheck = shutil.which("shellcheck")
    if shellcheck:
        out = subprocess.run([shellcheck, "-S", "warning", str(script)], capture_output=True, text=True)
        assert out.returncode == 0, out.stdout


def test_kind_runs_the_shared_scenario():
    """One copy of the steps: the kind script hands the cluster to scenario.sh."""
    text = SCRIPT.read_text()
    assert 'bash "$E2E/scenario.sh"' in text
    assert "upgrade --install" not in text and "examples/local.yaml" not in text


def test_example_matches_script():
    """The scenario assumes examples/local.yaml's namespace, name and feature repo ConfigMap, which
    examples/feature-repos/demo.yaml ships in the same namespace."""
    [fs] = [d for d in yaml.safe_load_all((ROOT / "examples" / "local.yaml").read_text()) if d]
    [cm] = [d for d in yaml.safe_load_all(REPO_CONFIGMAP.read_text()) if d]
    text = SCENARIO.read_text()
    assert f"NS={fs['metadata']['namespace']}" in text
    assert f"STORE={fs['metadata']['name']}" in text
    assert cm["kind"] == "ConfigMap" and cm["metadata"]["namespace"] == fs["metadata"]["namespace"]
    assert fs["spec"]["featureRepo"]["configMap"]["name"] == cm["metadata"]["name"]
    assert set(cm["data"]) == {"features.py", "generate_data.py"}
    assert fs["spec"].get("provider", "local") == "local"


# --------------------------------------------------------------------------- the feature repo, for real


def _feast() -> str:
    feast = Path(sys.executable).parent / "feast"
    if not feast.exists():
        missing_prerequisite("feast is not installed in this environment (pip install -e '.[test]')")
    return str(feast)


def test_feature_repo_applies_materializes_and_serves(tmp_path):
    """What the kind e2e does, without Kubernetes: the operator's rendered feature_store.yaml (Redis
    with a password, file registry and offline store on the data volume) with /data and the Redis
    host pointed at a temp dir and a local redis-server."""
    feast = _feast()
    from tests.support.redis_server import RedisServer, RedisServerError, find_redis_server

    try:
        find_redis_server()
    except RedisServerError as err:
        missing_prerequisite(f"redis-server not available: {err}")
    rendered = subprocess.run(
        [sys.executable, "-m", "featurestore_operator.cli", "render", "-f", str(ROOT / "examples" / "local.yaml")],
        capture_output=True,
        text=True,
        check=True,
    )
    [config_map] = [
        d
        for d in yaml.safe_load_all(rendered.stdout)
        if d and d["kind"] == "ConfigMap" and d["metadata"]["name"] == "demo-feast-config"
    ]
    fs_yaml = config_map["data"]["feature_store.yaml"]
    data = tmp_path / "data"
    repo = tmp_path / "repo"
    data.mkdir()
    repo.mkdir()
    [cm] = [d for d in yaml.safe_load_all(REPO_CONFIGMAP.read_text()) if d]
    for name, text in cm["data"].items():
        (repo / name).write_text(text)
    repo.chmod(0o555)  # mounted read-only from a ConfigMap in the cluster
    with RedisServer(password="e2e-secret") as redis:
        host = yaml.safe_load(fs_yaml)["online_store"]["connection_string"].split(",")[0]
        config = fs_yaml.replace(host, f"127.0.0.1:{redis.port}").replace("/data/", f"{data}/")
        (tmp_path / "feature_store.yaml").write_text(config)
        env = {
            **os.environ,
            "REDIS_PASSWORD": "e2e-secret",
            "FEAST_USAGE": "False",
            "PYTHONDONTWRITEBYTECODE": "1",
            "FEAST_E2E_DATA": str(data / "driver_stats.parquet"),
            "FEAST_FS_YAML_FILE_PATH": str(tmp_path / "feature_store.yaml"),
        }

        def run(*args: str) -> str:
            out = subprocess.run(list(args), capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
            assert out.returncode == 0, f"{' '.join(args)}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
            return out.stdout + out.stderr

        # as the apply Job: before the data exists
        run(feast, "-f", str(tmp_path / "feature_store.yaml"), "--chdir", str(repo), "apply")
        # as the e2e's generate Job, then the CronJob's script
        run(sys.executable, str(repo / "generate_data.py"), str(data / "driver_stats.parquet"))
        run(
            "sh",
            "-c",
            'exec "$0" -f "$FEAST_FS_YAML_FILE_PATH" materialize-incremental "$(date -u +%Y-%m-%dT%H:%M:%S)"',
            feast,
        )
        check = run(
            sys.executable,
            "-c",
            """
import math, os
from feast import FeatureStore
store = FeatureStore(fs_yaml_file=__import__("pathlib").Path(os.environ["FEAST_FS_YAML_FILE_PATH"]))
got = store.get_online_features(features=["driver_hourly_stats:conv_rate", "driver_hourly_stats:avg_daily_trips"],
                                entity_rows=[{"driver_id": 1001}, {"driver_id": 1003}, {"driver_id": 9999}]).to_dict()
assert math.isclose(got["conv_rate"][0], 0.1, rel_tol=1e-5), got
assert math.isclose(got["conv_rate"][1], 0.3, rel_tol=1e-5), got
assert got["avg_daily_trips"][:2] == [1, 3] and got["conv_rate"][2] is None, got
print("ONLINE-OK", got["conv_rate"])
""",
        )
        assert "ONLINE-OK" in check
