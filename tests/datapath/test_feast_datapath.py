"""Feast data path proven end to end: the rendered config and container specs run real Feast on a
real Redis (TLS + AUTH, shaped like Memorystore) and GCS (fake-gcs-server).

What is real here and what stands in:

* A FeatureStore (provider gcp: Memorystore online store, GCS offline store + registry, feature
  repo from a ConfigMap, feature server metrics on) is resolved with an OperatorConfig and
  rendered with the endpoints the backends would report. Every process below is a container of
  the rendered Deployment / CronJob / apply Job, run by ``tests/support/podrunner.py`` with its
  exact command + args (kubelet ``$(VAR)`` expansion), env (secretKeyRef/configMapKeyRef resolved
  from the Secret the operator would write: ``password`` + ``ca.crt``), workingDir and volumes
  bind-mounted at the rendered paths (/etc/feast/feature_store.yaml, /etc/feast/redis-tls/ca.crt,
  /repo, /tmp) in a private mount namespace, with ``readOnlyRootFilesystem`` enforced. ConfigMap
  and Secret volumes have the kubelet's layout (``..data`` -> ``..<timestamp>/``, a symlink per
  key): `feast apply` straight on such a volume fails (it imports ``..<timestamp>/features.py`` as
  the module ``..2026_...features``), which is why the apply Job copies the ConfigMap's files into
  an emptyDir in its ``copy-repo`` init container first.
* The only env added to the containers is ``GcsEmulator.env()`` (STORAGE_EMULATOR_HOST,
  GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false, GOOGLE_CLOUD_PROJECT): it stands in for GKE's metadata
  server / Workload Identity. The host's Feast install stands in for the image (its PATH).
* The feature repo's parquet data is a local file outside /tmp (pyarrow's own GCS filesystem
  ignores STORAGE_EMULATOR_HOST, so a gs:// FileSource hangs against the emulator); the registry
  is on gs:// in the emulator bucket, as rendered.
* The notebook check runs a "notebook" pod built from the rendered PodDefault (its env, volumes
  and mounts merged the way the PodDefault webhook does) with the cluster's service names mapped
  to 127.0.0.1 by a hosts file bind-mounted over /etc/hosts in its namespace.

Needs redis-server, fake-gcs-server and ``feast[redis,gcp]`` (the registry-server test also
feast's ``grpcio`` extra); without feast or root/``unshare`` (mount namespaces) the module skips,
naming why - and fails under CI (tests/support/prerequisites.py). Containers bind the host's ports (6566, 8000, 6570):
a taken port fails with a message naming it. ~45 s on an idle 2-CPU machine.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.prerequisites import missing  # noqa: E402

try:
    import feast  # noqa: F401 - the data path needs it importable
except ImportError as err:  # a broken Feast install: named, and a failure under CI
    missing(
        f"feast (pip install 'feast[redis,gcp]==0.67.0') is not importable ({err}): the Feast data-path tests need it",
        module=True,
    )

ROOT = Path(__file__).resolve().parents[2]

from featurestore_operator import render  # noqa: E402
from featurestore_operator.api import FeatureStore, OperatorConfig, resolve  # noqa: E402
from featurestore_operator.api.pods import PodSettings  # noqa: E402
from featurestore_operator.render import (  # noqa: E402
    Endpoints,
    OfflineEndpoint,
    OnlineEndpoint,
    RepoSource,
    SecretKey,
)
from featurestore_operator.render.names import Names  # noqa: E402

from tests.support import feature_repo  # noqa: E402
from tests.support.gcs_emulator import GcsEmulator  # noqa: E402
from tests.support.podrunner import Mount, PodRunner, Running, expand, pod_spec_of, unshare_available  # noqa: E402
from tests.support.redis_server import RedisServer, no_retry  # noqa: E402
from tests.support.waiting import wait_for  # noqa: E402

pytestmark = pytest.mark.timeout(300)

FS_NAME = "drivers"
NAMESPACE = "team-a"
VIEW = "driver_hourly_stats"
#: Offline data must be visible to every container but not under /tmp (an emptyDir covers it).
DATA_PARENT = "/var/tmp"


def _skip_reasons() -> str | None:
    why = unshare_available()
    if why:
        return f"podrunner: {why}"
    if not os.path.isdir(DATA_PARENT):
        return f"{DATA_PARENT} missing"
    return None


if _skip_reasons():
    missing(str(_skip_reasons()), module=True)


# --------------------------------------------------------------------------- fixtures


@dataclass
class Stack:
    redis: RedisServer
    gcs: GcsEmulator
    bucket: str
    fs: FeatureStore
    config: OperatorConfig
    endpoints: Endpoints
    secrets: dict[str, dict[str, str]]
    repo: dict[str, str]
    expected: dict[int, dict[str, object]]
    runner: PodRunner
    rendered: render.Rendered
    names: Names
    data_dir: Path
    logs: dict[str, str] = field(default_factory=dict)

    def render(self, revision: str) -> render.Rendered:
        return render.render(self.fs, self.endpoints, self.config, repo=RepoSource(revision))

    def registry_blob(self):
        return self.gcs.client().bucket(self.bucket).get_blob("registry.pb")


def _featurestore(config: OperatorConfig) -> FeatureStore:
    fs = FeatureStore.model_validate(
        {
            "apiVersion": "featurestore.kubeflow.org/v1alpha1",
            "kind": "FeatureStore",
            "metadata": {"name": FS_NAME, "namespace": NAMESPACE, "uid": str(uuid.uuid4())},
            "spec": {
                "project": feature_repo.PROJECT,
                "provider": "gcp",
                "onlineStore": {"memorystore": {"tier": "BASIC", "memorySizeGb": 1}},
                "offlineStore": {"gcs": {}},
                "featureRepo": {"configMap": {"name": "driver-feature-repo"}},
                "featureServer": {"metrics": {"enabled": True}},
                "materialization": {"featureViews": [VIEW]},
            },
        }
    )
    return fs.model_copy(update={"spec": resolve(fs.spec, config)})


@pytest.fixture(scope="module")
def stack():
    config = OperatorConfig(default_provider="gcp", gcp_project="test-project", gcp_region="us-central1")
    fs = _featurestore(config)
    names = Names(fs)
    password = str(uuid.uuid4())  # Memorystore AUTH strings are UUIDs
    data_dir = Path(tempfile.mkdtemp(prefix="feast-datapath-", dir=DATA_PARENT))
    with RedisServer(tls=True, password=password) as redis_srv, GcsEmulator() as gcs:
        bucket = f"fso-{FS_NAME}-{secrets.token_hex(4)}"
        gcs.client().create_bucket(bucket)
        endpoints = Endpoints(
            online=OnlineEndpoint(
                host=redis_srv.host,
                port=redis_srv.port,
                tls=True,
                password=SecretKey(names.online_secret, "password"),
                ca=SecretKey(names.online_secret, "ca.crt"),
            ),
            offline=OfflineEndpoint(bucket=bucket),
        )
        parquet = data_dir / "driver_stats.parquet"
        expected = feature_repo.write_driver_stats(parquet)
        repo = feature_repo.repo_files(parquet)
        rendered = render.render(fs, endpoints, config, repo=RepoSource("r1-good"))
        # The Secret the Memorystore backend writes: the AUTH string and the server CA.
        secret_data = {names.online_secret: {"password": password, "ca.crt": redis_srv.ca_pem}}
        runner = PodRunner(
            rendered.objects,
            secrets=secret_data,
            config_maps={"driver-feature-repo": repo},
            extra_env=gcs.env(),
            namespace=NAMESPACE,
        )
        st = Stack(
            redis_srv,
            gcs,
            bucket,
            fs,
            config,
            endpoints,
            secret_data,
            repo,
            expected,
            runner,
            rendered,
            names,
            data_dir,
        )
        try:
            yield st
        finally:
            runner.close()
            shutil.rmtree(data_dir, ignore_errors=True)


def _run_apply(st: Stack, rendered: render.Rendered, repo: dict[str, str]):
    job = next(o for o in rendered.objects if o["kind"] == "Job")
    runner = PodRunner(
        rendered.objects,
        secrets=st.secrets,
        config_maps={"driver-feature-repo": repo},
        extra_env=st.gcs.env(),
        namespace=NAMESPACE,
    )
    try:
        pod = runner.pod(job)
        prepared = pod.prepare()
        return prepared, pod.run_job(timeout=240)
    finally:
        runner.close()


@pytest.fixture(scope="module")
def applied(stack: Stack):
    """The rendered apply Job has run successfully once; returns the registry blob's generation."""
    _, res = _run_apply(stack, stack.rendered, stack.repo)
    stack.logs["apply"] = res.stdout + res.stderr
    assert res.returncode == 0, f"feast apply failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
    blob = stack.registry_blob()
    assert blob is not None, "feast apply exited 0 but wrote no gs://BUCKET/registry.pb"
    return blob.generation


@pytest.fixture(scope="module")
def materialized(stack: Stack, applied):
    cron = stack.runner.find("CronJob")
    pod = stack.runner.pod(cron)
    res = pod.run_job(timeout=240)
    stack.logs["materialize"] = res.stdout + res.stderr
    assert res.returncode == 0, f"materialization failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
    return res


class ServerSlot:
    """The feature server Deployment's container; one at a time (it binds the rendered port)."""

    def __init__(self, st: Stack):
        self.st = st
        self.running: Running | None = None

    def ensure(self) -> Running:
        if self.running is None or self.running.proc.poll() is not None:
            self.running = self.start_variant()
        return self.running

    def start_variant(self, *, drop_env: tuple[str, ...] = ()) -> Running:
        deployment = self.st.runner.find("Deployment", self.st.names.feature_server)
        pod = self.st.runner.pod(deployment)
        prepared = pod.prepare("feature-server")
        for name in drop_env:
            prepared.env.pop(name, None)
        running = pod.start(prepared)
        try:
            running.wait_ready(timeout=90)
        except Exception:
            running.stop()
            raise
        return running

    def stop(self) -> None:
        if self.running is not None:
            self.running.stop()
            self.running = None


@pytest.fixture(scope="module")
def server_slot(stack: Stack, materialized):
    slot = ServerSlot(stack)
    try:
        yield slot
    finally:
        slot.stop()


@pytest.fixture
def server(server_slot: ServerSlot) -> Running:
    return server_slot.ensure()


def _post(url: str, body: dict[str, Any], timeout: float = 30) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, raw.decode(errors="replace")


def _online(server: Running, drivers: list[int], features: list[str]) -> tuple[int, Any]:
    return _post(server.url("http", "/get-online-features"), {"features": features, "entities": {"driver_id": drivers}})


def _by_feature(body: dict[str, Any]) -> dict[str, dict[str, list[Any]]]:
    """Feature server JSON -> {feature name: {"values": [...], "statuses": [...]}}."""
    names = body["metadata"]["feature_names"]
    return {n: body["results"][i] for i, n in enumerate(names)}


def _approx(v: object) -> object:
    return pytest.approx(v, rel=1e-6) if isinstance(v, float) else v


# --------------------------------------------------------------------------- tests


def test_containers_run_as_rendered(stack: Stack):
    """What the runner executes is the rendered container: argv after the kubelet's $(VAR)
    expansion is unchanged (the shell script's "$@", "$(date ...)" and "$FEAST_..." pass through),
    the Secret env and files are wired, and read-only mounts/root filesystem are enforced."""
    assert expand("$(A)/$$/$(B)/$(date -u +%s)/$X/${Y:-}/$", {"A": "a"}) == "a/$/$(B)/$(date -u +%s)/$X/${Y:-}/$"
    job = next(o for o in stack.rendered.objects if o["kind"] == "Job")
    for obj in (stack.runner.find("CronJob"), job, stack.runner.find("Deployment", stack.names.feature_server)):
        pod = stack.runner.pod(obj)
        c = pod.spec["containers"][0]
        prepared = pod.prepare(c["name"])
        assert prepared.argv == c["command"] + c.get("args", []), obj["kind"]
        assert prepared.env["REDIS_PASSWORD"] == stack.redis.password
        assert prepared.read_only_root, obj["kind"]
        mounts = {m.target: m for m in prepared.mounts}
        assert mounts["/etc/feast"].read_only and not mounts["/tmp"].read_only
        assert (Path(mounts["/etc/feast"].source) / "feature_store.yaml").read_text() == stack.rendered.server_yaml
        assert (Path(mounts["/etc/feast/redis-tls"].source) / "ca.crt").read_text() == stack.redis.ca_pem
        if obj is job:
            assert mounts["/repo"].read_only
            # The ConfigMap volume (kubelet layout: ..data, ..<timestamp>/, one symlink per key) is
            # copied into the /repo emptyDir by the copy-repo init container.
            copy = pod.prepare("copy-repo", init=True)
            source = {m.target: m for m in copy.mounts}["/repo-source"]
            assert source.read_only
            names = os.listdir(source.source)
            assert "..data" in names and sorted(n for n in names if not n.startswith("..")) == sorted(stack.repo)
    cron_args = pod_spec_of(stack.runner.find("CronJob"))["containers"][0]["args"]
    assert cron_args[-2:] == ["--views", VIEW]
    # The password reaches Feast only through the env placeholder, never the config file.
    assert stack.redis.password not in stack.rendered.server_yaml
    assert "password=${REDIS_PASSWORD}" in stack.rendered.server_yaml


def test_apply_job_registers_repo_in_bucket(stack: Stack, applied):
    from feast.protos.feast.core.Registry_pb2 import Registry

    blob = stack.registry_blob()
    assert blob.generation == applied
    registry = Registry.FromString(blob.download_as_bytes())
    views = {fv.spec.name for fv in registry.feature_views if fv.spec.project == feature_repo.PROJECT}
    assert {VIEW, "driver_rating"} <= views, views
    assert "driver_activity" in {s.spec.name for s in registry.feature_services}
    assert "driver_stats_push_source" in {d.name for d in registry.data_sources}
    # The job ran with the rendered config: the registry path is the rendered gs:// one.
    assert f"gs://{stack.bucket}/registry.pb" in stack.rendered.server_yaml


def _redis_key(driver_id: int) -> bytes:
    from feast.infra.online_stores.helpers import _redis_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    return _redis_key(
        feature_repo.PROJECT,
        EntityKey(join_keys=["driver_id"], entity_values=[Value(int64_val=driver_id)]),
        entity_key_serialization_version=3,
    )


def test_materialization_cronjob_writes_rows_to_redis(stack: Stack, materialized):
    import redis
    from feast.infra.online_stores.helpers import _mmh3
    from feast.protos.feast.types.Value_pb2 import Value

    r = redis.Redis(
        host=stack.redis.host,
        port=stack.redis.port,
        ssl=True,
        ssl_ca_certs=stack.redis.ca_path,
        password=stack.redis.password,
        socket_timeout=5,
        retry=no_retry(),
    )
    assert r.dbsize() >= len(feature_repo.DRIVERS)
    for d in feature_repo.DRIVERS:
        h = r.hgetall(_redis_key(d))
        assert h, f"no Redis hash for driver {d} after the CronJob's materialization"
        assert f"_ts:{VIEW}".encode() in h
        # --views driver_hourly_stats: the other view was not materialized.
        assert b"_ts:driver_rating" not in h
        conv = Value.FromString(h[_mmh3(f"{VIEW}:conv_rate")]).float_val
        city = Value.FromString(h[_mmh3(f"{VIEW}:city")]).string_val
        assert conv == pytest.approx(stack.expected[d]["conv_rate"], rel=1e-6)  # newest row won
        assert city == stack.expected[d]["city"]
    assert r.hgetall(_redis_key(feature_repo.UNKNOWN_DRIVER)) == {}


def test_pod_settings_reach_the_running_feast(stack: Stack, materialized):
    """spec.materialization.pod: the CronJob rendered with a log level and env from a Secret
    (envFrom) runs as rendered; Feast logs at DEBUG only when asked, and the env var is there."""
    pod_settings = {"logLevel": "DEBUG", "envFrom": [{"secretRef": {"name": "team-env"}}]}
    spec = stack.fs.spec.model_copy(
        update={
            "materialization": stack.fs.spec.materialization.model_copy(
                update={"pod": PodSettings.model_validate(pod_settings)}
            )
        }
    )
    fs = stack.fs.model_copy(update={"spec": spec})
    rendered = render.render(fs, stack.endpoints, stack.config, repo=RepoSource("r1-good"))
    runner = PodRunner(
        rendered.objects,
        secrets={**stack.secrets, "team-env": {"TEAM_MARK": "fraud-team"}},
        extra_env=stack.gcs.env(),
        namespace=NAMESPACE,
    )
    try:
        pod = runner.pod(runner.find("CronJob"))
        prepared = pod.prepare()
        assert prepared.env["TEAM_MARK"] == "fraud-team"
        res = pod.run_job(timeout=240)
    finally:
        runner.close()
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    below_warning = re.compile(r"^(DEBUG|INFO):", re.M)  # Feast's log lines: LEVEL:logger:message
    assert below_warning.search(out), out[-3000:]
    assert not below_warning.search(stack.logs["materialize"])  # Feast's default level (warning) otherwise


def test_feature_server_health_metrics_and_online_features(stack: Stack, server: Running):
    with urllib.request.urlopen(server.url("http", "/health"), timeout=5) as resp:
        assert resp.status == 200
    drivers = [1001, 1002, 1003, feature_repo.UNKNOWN_DRIVER]
    status, body = _online(server, drivers, feature_repo.FEATURE_REFS + [feature_repo.RATING_REF])
    assert status == 200, body
    got = _by_feature(body)
    assert got["driver_id"]["values"] == drivers
    for feat in feature_repo.HOURLY_FEATURES:
        values, statuses = got[feat]["values"], got[feat]["statuses"]
        for i, d in enumerate(drivers[:-1]):
            assert values[i] == _approx(stack.expected[d][feat]), (feat, d, values)
            assert statuses[i] == "PRESENT"
        # Unknown entity: null. (Feast 0.67's Redis store returns an empty value map for a missing
        # key, so the status says PRESENT with a null value and a 1970 timestamp, not NOT_FOUND.)
        assert values[-1] is None, (feat, values, statuses)
    # Not in the CronJob's --views: nothing online for it.
    assert got["rating"]["values"] == [None] * len(drivers)
    # Feature service through the same endpoint.
    status, body = _post(
        server.url("http", "/get-online-features"),
        {"feature_service": "driver_activity", "entities": {"driver_id": [1004]}},
    )
    assert status == 200, body
    assert _by_feature(body)["avg_daily_trips"]["values"] == [stack.expected[1004]["avg_daily_trips"]]
    # --metrics (spec.featureServer.metrics.enabled) serves Prometheus on the rendered metrics port.
    with urllib.request.urlopen(server.url("http-metrics", "/metrics"), timeout=5) as resp:
        assert resp.status == 200
        assert b"feast_" in resp.read()


def test_push_updates_online_value(stack: Stack, server: Running):
    driver = 1005
    now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    status, body = _post(
        server.url("http", "/push"),
        {
            "push_source_name": "driver_stats_push_source",
            "df": {
                "driver_id": [driver],
                "event_timestamp": [now],
                "created": [now],
                "conv_rate": [0.777],
                "acc_rate": [0.111],
                "avg_daily_trips": [4242],
                "city": ["pushed-city"],
                "rating": [1.5],
            },
            "to": "online",
        },
    )
    assert status == 200, body
    status, body = _online(server, [driver], feature_repo.FEATURE_REFS)
    assert status == 200, body
    got = _by_feature(body)
    assert got["conv_rate"]["values"] == [pytest.approx(0.777, rel=1e-6)]
    assert got["avg_daily_trips"]["values"] == [4242]
    assert got["city"]["values"] == ["pushed-city"]


NOTEBOOK_SCRIPT = r"""
import json, os, sys
from feast import FeatureStore
entities = [{"driver_id": d} for d in json.loads(sys.argv[1])]
features = json.loads(sys.argv[2])
out = {"yaml_path": os.environ.get("FEAST_FS_YAML_FILE_PATH"), "cwd": os.getcwd()}
store = FeatureStore()  # "just works": FEAST_FS_YAML_FILE_PATH from the PodDefault
out["online_store_type"] = store.config.online_store.type
out["views"] = sorted(fv.name for fv in store.list_feature_views())
out["default"] = store.get_online_features(features=features, entity_rows=entities).to_dict()
explicit = FeatureStore(fs_yaml_file=os.environ["FEAST_FS_YAML_FILE_PATH"])
out["explicit"] = explicit.get_online_features(features=features, entity_rows=entities).to_dict()
print("RESULT " + json.dumps(out, default=str))
"""


def _notebook_pod(runner: PodRunner, args: list[str]) -> dict[str, Any]:
    """A notebook pod as the PodDefault webhook would mutate it (env, volumes, volumeMounts)."""
    pd = runner.find("PodDefault")["spec"]
    container = {
        "name": "notebook",
        "command": [sys.executable, "-c", NOTEBOOK_SCRIPT],
        "args": args,
        "workingDir": "/home/jovyan",
        "env": [{"name": "HOME", "value": "/home/jovyan"}, *pd.get("env", [])],
        "volumeMounts": [{"name": "workspace", "mountPath": "/home/jovyan"}, *pd.get("volumeMounts", [])],
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "notebook-0", "namespace": NAMESPACE, "labels": dict(pd["selector"]["matchLabels"])},
        "spec": {"containers": [container], "volumes": [{"name": "workspace", "emptyDir": {}}, *pd.get("volumes", [])]},
    }


def _hosts_file(rendered: render.Rendered, directory: Path) -> tuple[Path, set[str]]:
    """/etc/hosts for the notebook: the host's entries plus the cluster service names in the
    rendered client config mapped to 127.0.0.1 (where the rendered servers listen here)."""
    import yaml

    client = yaml.safe_load(rendered.client_yaml)
    hosts = set()
    for value in (
        client["online_store"].get("path", ""),
        client["registry"].get("path", ""),
        str(client["offline_store"].get("host", "")),
    ):
        host = value.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
        if host.endswith(".svc.cluster.local"):
            hosts.add(host)
    path = directory / "hosts"
    path.write_text(Path("/etc/hosts").read_text() + "\n127.0.0.1 " + " ".join(sorted(hosts)) + "\n")
    return path, hosts


def _run_notebook(runner: PodRunner, rendered: render.Rendered, directory: Path, drivers: list[int]) -> dict[str, Any]:
    hosts_path, hosts = _hosts_file(rendered, directory)
    assert f"{FS_NAME}-feature-server.{NAMESPACE}.svc.cluster.local" in hosts
    pod = runner.pod(_notebook_pod(runner, [json.dumps(drivers), json.dumps(feature_repo.FEATURE_REFS)]))
    prepared = pod.prepare(extra_mounts=[Mount(str(hosts_path), "/etc/hosts", read_only=True)])
    assert prepared.env["FEAST_FS_YAML_FILE_PATH"] == f"/etc/feast/{FS_NAME}/feature_store.yaml"
    res = pod.run(prepared, timeout=180)
    assert res.returncode == 0, f"notebook failed:\n{res.stdout}\n{res.stderr}"
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def _assert_notebook_reads(stack: Stack, out: dict[str, Any], drivers: list[int]) -> None:
    assert out["online_store_type"] == "remote"
    assert {VIEW, "driver_rating"} <= set(out["views"])
    for variant in ("default", "explicit"):
        got = out[variant]
        assert got["driver_id"] == drivers
        for feat in feature_repo.HOURLY_FEATURES:
            assert got[feat][:-1] == [_approx(stack.expected[d][feat]) for d in drivers[:-1]], (
                variant,
                feat,
                got[feat],
            )
            assert got[feat][-1] is None, (variant, feat, got[feat])


def test_client_config_via_pod_default_reads_through_feature_server(stack: Stack, server: Running, tmp_path):
    """gcp default (no registry server): registry read from gs:// with the notebook's identity,
    online features through the feature server (remote online store)."""
    import yaml

    client = yaml.safe_load(stack.rendered.client_yaml)
    assert client["online_store"] == {
        "type": "remote",
        "path": f"http://{stack.names.svc_host(stack.names.feature_server)}:6566",
    }
    assert client["registry"]["path"] == f"gs://{stack.bucket}/registry.pb"
    drivers = [1001, 1002, feature_repo.UNKNOWN_DRIVER]
    _assert_notebook_reads(stack, _run_notebook(stack.runner, stack.rendered, tmp_path, drivers), drivers)


def test_registry_server_and_remote_registry_client_config(stack: Stack, server: Running, tmp_path):
    """registry.server.enabled: the rendered `feast serve_registry` Deployment serves the gs://
    registry over gRPC and the client config's remote registry reads it."""
    import importlib.util

    import yaml

    if importlib.util.find_spec("grpc_health") is None:
        missing(
            "`feast serve_registry` needs feast's grpcio extra (grpcio-health-checking, grpcio-reflection): "
            "pip install 'feast[redis,gcp,grpcio]==0.67.0'"
        )
    spec = stack.fs.spec.model_copy(
        update={
            "registry": stack.fs.spec.registry.model_copy(
                update={"server": stack.fs.spec.registry.server.model_copy(update={"enabled": True})}
            )
        }
    )
    fs = stack.fs.model_copy(update={"spec": spec})
    rendered = render.render(fs, stack.endpoints, stack.config, repo=RepoSource("r1-good"))
    # Same server config: the running feature server stands for this variant's too.
    assert rendered.server_yaml == stack.rendered.server_yaml
    client = yaml.safe_load(rendered.client_yaml)
    assert client["registry"] == {
        "registry_type": "remote",
        "path": f"{FS_NAME}-registry-server.{NAMESPACE}.svc.cluster.local:6570",
    }
    runner = PodRunner(rendered.objects, secrets=stack.secrets, extra_env=stack.gcs.env(), namespace=NAMESPACE)
    try:
        deployment = runner.find("Deployment", f"{FS_NAME}-registry-server")
        pod = runner.pod(deployment)
        registry_server = pod.start(pod.prepare("registry-server"))
        registry_server.wait_ready(timeout=90)
        drivers = [1003, 1004, feature_repo.UNKNOWN_DRIVER]
        out = _run_notebook(runner, rendered, tmp_path, drivers)
        assert registry_server.proc.poll() is None, registry_server.log()
        _assert_notebook_reads(stack, out, drivers)
    finally:
        runner.close()


def test_failed_apply_exits_nonzero_and_previous_registry_still_serves(stack: Stack, applied, server: Running):
    before = stack.registry_blob()
    broken_repo = {**stack.repo, feature_repo.BROKEN_FILE[0]: feature_repo.BROKEN_FILE[1]}
    rendered = stack.render("r2-broken")
    job = next(o for o in rendered.objects if o["kind"] == "Job")
    assert job["metadata"]["name"] != next(o for o in stack.rendered.objects if o["kind"] == "Job")["metadata"]["name"]
    _, res = _run_apply(stack, rendered, broken_repo)
    assert res.returncode != 0, f"feast apply of a broken repo exited 0:\n{res.stdout}\n{res.stderr}"
    assert "deliberately broken" in res.stdout + res.stderr
    after = stack.registry_blob()
    # (Not compared with the first apply's generation: materialization records its interval in
    # the registry, so the object has been rewritten since.)
    assert after.generation == before.generation, "a failed apply must not rewrite the registry"
    status, body = _online(server, [1001], feature_repo.FEATURE_REFS)
    assert status == 200, body
    assert _by_feature(body)["conv_rate"]["values"] == [pytest.approx(stack.expected[1001]["conv_rate"], rel=1e-6)]


def test_feature_server_without_password_env_cannot_read(stack: Stack, server_slot: ServerSlot):
    """Negative: the same rendered container minus the Secret-backed REDIS_PASSWORD cannot read."""
    server_slot.stop()
    running = server_slot.start_variant(drop_env=("REDIS_PASSWORD",))
    try:
        assert "REDIS_PASSWORD" not in running.prepared.env
        status, body = _online(running, [1001], feature_repo.FEATURE_REFS)
        assert status >= 500, f"expected a Redis AUTH failure, got {status}: {body}"
        auth_errors = ("AuthenticationError", "invalid username-password", "WRONGPASS", "NOAUTH")
        wait_for(lambda: any(s in running.log(200) for s in auth_errors), timeout=30, what="the AUTH error in its log")
    finally:
        running.stop()
