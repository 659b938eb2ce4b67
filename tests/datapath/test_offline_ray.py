"""Historical retrieval over gs:// with the store's engine, for real (render/offline.py).

The offline server the operator renders for a ``compute.engine: ray`` store (its exact command,
env, volumes and ``offline-server.yaml``, run by ``tests/support/podrunner.py``) runs Feast's ray
offline store with Ray inside its pod and answers ``get_historical_features`` from a parquet
FileSource on gs:// in the store's bucket. The same store rendered with the local engine (the file
offline store) answers the same entity frame; a notebook-style client with the RENDERED client
config (``offline_store: remote``) gets both answers, which must be equal row for row and hold the
values the data says.

GCS is the ENFORCING stand-in: fake-gcs-server behind ``GcsBucketOverlay(callers=...)``; the bucket
and its grants are made by the operator's own GCS backend (the store's GSA: objectAdmin + bucket
reader; the namespace's notebook GSA: the issue 26 read grant). Every pod gets its token from a GKE
metadata stand-in that answers as its identity (the store's pods as the store's GSA, the notebook as
the profile's GSA). What this host lacks of a cluster is supplied as test-only env: where the GCS
API and the metadata server are (the same variables tests/e2e/test_node.py gives real pods), and the
offline server's Service name in the client config becomes 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.prerequisites import missing, need_module

need_module("feast", "feast[redis,gcp]==0.67.0 is needed for the offline server", module=True)
need_module("ray", "ray (the test extra) is needed for the ray offline store", module=True)

from featurestore_operator import render  # noqa: E402
from featurestore_operator.api import FeatureStore, OperatorConfig, resolve  # noqa: E402
from featurestore_operator.backends import naming  # noqa: E402
from featurestore_operator.backends.base import Ready  # noqa: E402
from featurestore_operator.backends.gcs import GcsBackend  # noqa: E402
from featurestore_operator.render import Endpoints, OfflineEndpoint, OnlineEndpoint, RepoSource, SecretKey  # noqa: E402
from featurestore_operator.render.feast_config import FEAST_CONFIG_FILE  # noqa: E402
from featurestore_operator.render.names import Names  # noqa: E402
from featurestore_operator.render.offline import OFFLINE_CONFIG_KEY  # noqa: E402

from tests.datapath.test_notebook_bucket_access import (  # noqa: E402
    NOTEBOOK_GSA,
    OPERATOR,
    STORE_GSA,
    client,
    config,
    ctx,
    make_fs,
)
from tests.support import feature_repo  # noqa: E402
from tests.support.gcs_emulator import GcsEmulator  # noqa: E402
from tests.support.gke_metadata import GkeMetadataServer, Identity, TokenBook  # noqa: E402
from tests.support.iam_fake import GcsBucketOverlay  # noqa: E402
from tests.support.podrunner import PodRunner, Running, unshare_available  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402

pytestmark = pytest.mark.timeout(900)

if unshare_available():
    missing(f"podrunner: {unshare_available()}", module=True)

NAME, NAMESPACE = "demo", "team-a"
DATA = "offline/driver_stats.parquet"
FEATURES = feature_repo.FEATURE_REFS + [feature_repo.RATING_REF]

#: A notebook: the rendered client feature_store.yaml, the entity frame in, the rows out.
NOTEBOOK = r"""
import json, sys
import pandas as pd
from feast import FeatureStore
store = FeatureStore(repo_path=sys.argv[1])
rows = json.loads(sys.argv[2])
entity_df = pd.DataFrame({"driver_id": [r[0] for r in rows],
                          "event_timestamp": pd.to_datetime([r[1] for r in rows], utc=True)})
df = store.get_historical_features(entity_df=entity_df, features=json.loads(sys.argv[3])).to_df()
df["event_timestamp"] = pd.to_datetime(df["event_timestamp"], utc=True).astype(str)
df = df.astype(object).where(df.notna(), None)
rows = sorted(df.to_dict("records"), key=lambda r: (r["driver_id"], r["event_timestamp"]))
print("RESULT " + json.dumps(rows, default=str))
"""


def gcs_env(api: str, metadata: str) -> dict[str, str]:
    """How a pod reaches the GCS API and its metadata server here (tests/e2e/test_node.py's variables;
    never STORAGE_EMULATOR_HOST, which makes google-cloud-storage send no token)."""
    return {
        "API_ENDPOINT_OVERRIDE": api,  # google-cloud-storage (Feast's gs:// registry)
        "FSSPEC_GCS_ENDPOINT_URL": api,  # gcsfs (the file offline store's dask)
        "CLOUD_STORAGE_EMULATOR_ENDPOINT": api,  # google-cloud-cpp (pyarrow's GcsFileSystem: Ray Data)
        "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
        "GCE_METADATA_HOST": metadata,  # google-auth
        "GCE_METADATA_IP": metadata,
        "GCE_METADATA_ROOT": metadata,  # google-cloud-cpp
        "GOOGLE_CLOUD_PROJECT": "test-project",
    }


def store(engine: str) -> FeatureStore:
    fs = FeatureStore.model_validate(
        {
            "apiVersion": "featurestore.kubeflow.org/v1alpha1",
            "kind": "FeatureStore",
            "metadata": {"name": NAME, "namespace": NAMESPACE, "uid": f"uid-{NAME}"},
            "spec": {
                "project": feature_repo.PROJECT,
                "provider": "local",
                "featureRepo": {"configMap": {"name": "driver-feature-repo"}},
                "offlineServer": {"enabled": True, "resources": {"limits": {"cpu": "1", "memory": "2Gi"}}},
                "compute": {"engine": engine},
            },
        }
    )
    return fs.model_copy(update={"spec": resolve(fs.spec, OperatorConfig())})


def metadata_server(gsa: str, book: TokenBook) -> GkeMetadataServer:
    """GKE's metadata server as seen from pods acting as ``gsa`` (Workload Identity granted)."""
    who = Identity(f"{NAMESPACE}/pod", gsa, f"serviceAccount:{gsa}")
    return GkeMetadataServer("127.0.0.1", 0, project="test-project", identity=lambda ip: who, book=book)


@pytest.fixture(scope="module")
def world():
    book = TokenBook()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with (
        GcsEmulator() as gcs,
        GcsBucketOverlay(gcs, callers=book.member, project_roles={OPERATOR: {"roles/storage.admin"}}) as api,
        metadata_server(STORE_GSA, book) as store_md,
        metadata_server(NOTEBOOK_GSA, book) as notebook_md,
        RedisServer(password=uuid.uuid4().hex) as redis_srv,
    ):
        # the operator's own backend makes the bucket and its grants (the notebook's: issue 26)
        backend = GcsBackend(config(), client_factory=lambda project: client(api, book.mint(OPERATOR), project))
        out = asyncio.run(backend.ensure(make_fs(NAME, NAMESPACE), ctx(config(), NOTEBOOK_GSA)))
        assert isinstance(out, Ready), out
        bucket = naming.bucket_name(make_fs(NAME, NAMESPACE))
        with tempfile.TemporaryDirectory(prefix="offline-ray-") as tmp:
            local = Path(tmp) / "driver_stats.parquet"
            feature_repo.write_driver_stats(local, now)
            blob = client(api, book.mint(f"serviceAccount:{STORE_GSA}")).bucket(bucket).blob(DATA)
            blob.upload_from_filename(str(local))
            yield {
                "book": book,
                "api": api,
                "redis": redis_srv,
                "bucket": bucket,
                "now": now,
                "store_env": gcs_env(api.endpoint, f"127.0.0.1:{store_md.port}"),
                "notebook_env": gcs_env(api.endpoint, f"127.0.0.1:{notebook_md.port}"),
                "tmp": Path(tmp),
            }


def rendered(world: dict[str, Any], engine: str) -> render.Rendered:
    fs = store(engine)
    names = Names(fs)
    redis_srv = world["redis"]
    endpoints = Endpoints(
        online=OnlineEndpoint(redis_srv.host, redis_srv.port, password=SecretKey(names.online_secret, "password")),
        offline=OfflineEndpoint(bucket=world["bucket"]),
    )
    return render.render(fs, endpoints, OperatorConfig(), repo=RepoSource("r1"))


def runner(world: dict[str, Any], out: render.Rendered) -> PodRunner:
    names = Names(store("local"))
    return PodRunner(
        out.objects,
        secrets={names.online_secret: {"password": world["redis"].password}},
        config_maps={"driver-feature-repo": feature_repo.repo_files(f"gs://{world['bucket']}/{DATA}")},
        namespace=NAMESPACE,
        extra_env=world["store_env"],
    )


def entity_rows(now: dt.datetime) -> list[list[Any]]:
    """Each driver now (its newest row) and 3 h ago (its stale row), and a driver without data."""
    rows = [[d, (now - dt.timedelta(hours=h)).isoformat()] for d in feature_repo.DRIVERS for h in (0, 3)]
    return rows + [[feature_repo.UNKNOWN_DRIVER, now.isoformat()]]


def notebook(world: dict[str, Any], out: render.Rendered, name: str) -> list[dict[str, Any]]:
    """get_historical_features with the rendered client config, as the profile's notebook."""
    repo = world["tmp"] / f"notebook-{name}"
    repo.mkdir()
    names = Names(store("local"))
    text = out.client_yaml
    for service in (names.offline_server, names.registry_server):  # no cluster DNS: both run here
        text = text.replace(names.svc_host(service), "127.0.0.1")
    (repo / FEAST_CONFIG_FILE).write_text(text)
    env = {"PATH": os.environ["PATH"], "HOME": str(repo), **world["notebook_env"]}
    argv = [sys.executable, "-c", NOTEBOOK, str(repo), json.dumps(entity_rows(world["now"])), json.dumps(FEATURES)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"notebook retrieval failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def serve(pods: PodRunner, out: render.Rendered, *components: str) -> list[tuple[Running, Path]]:
    """Start the rendered Deployments' servers at once (neither waits for the other), then wait
    until each is ready; (its process, the host directory of its /tmp) for each."""
    started = []
    for component in components:
        deployment = next(
            o for o in out.objects if o["kind"] == "Deployment" and o["metadata"]["name"].endswith(component)
        )
        pod = pods.pod(deployment)
        prepared = pod.prepare(component)
        pods_tmp = next(m.source for m in prepared.mounts if m.target == "/tmp")
        started.append((pod.start(prepared), Path(pods_tmp)))
    for running, _ in started:
        running.wait_ready(timeout=120)
    return started


@pytest.fixture(scope="module")
def answers(world):
    """Each engine's rendered offline server answering the notebook, one after the other (port 8815)."""
    result: dict[str, Any] = {}
    for engine in ("local", "ray"):
        out = rendered(world, engine)
        with runner(world, out) as pods:
            if engine == "local":  # feast apply: the registry in the bucket (both stores read it)
                apply = pods.pod(next(o for o in out.objects if o["kind"] == "Job")).run_job(timeout=300)
                assert apply.returncode == 0, f"feast apply failed:\n{apply.stdout[-3000:]}\n{apply.stderr[-6000:]}"
            (registry, _), (running, pod_tmp) = serve(pods, out, "registry-server", "offline-server")
            try:
                try:
                    rows = notebook(world, out, engine)
                    # Ray's sessions (its node's sockets, logs) in the pod's own /tmp, read while the pod lives
                    sessions = sorted(p.name for p in (pod_tmp / "ray").glob("session_2*/logs/raylet.out"))
                    result[engine] = {"rendered": out, "rows": rows, "sessions": sessions, "log": running.log(200)}
                    if engine == "ray":
                        result[engine]["ray"] = ray_probe(world, pod_tmp)
                finally:
                    running.stop(timeout=30)
                if engine == "ray":  # the offline server is gone: the notebook has no other way to the data
                    result["without_server"] = notebook_fails(world, out)
            finally:
                registry.stop(timeout=30)
    return result


#: Call the pod's Ray GCS (it listens on every address of the pod) from another process.
PROBE = r"""
import sys
from ray._raylet import GcsClient
try:
    print("CONNECTED nodes:", len(GcsClient(address=sys.argv[1]).get_all_node_info(timeout=10)))
except Exception as e:
    print("REFUSED", type(e).__name__, str(e)[:200])
"""


def ray_probe(world: dict[str, Any], pod_tmp: Path) -> dict[str, str]:
    """The GCS port Ray wrote into its session in the pod's /tmp; the token it generated at start
    (RAY_AUTH_MODE=token, HOME=/tmp) next to it."""
    # (session_latest is an absolute link: meaningful inside the pod only)
    ports = list((pod_tmp / "ray").glob("session_2*/gcs_server_port_*"))
    if len(ports) != 1:
        return dict.fromkeys(("anonymous", "forged", "token"), f"no single Ray GCS in the pod: {ports}")
    port_file = ports[0]
    address = f"127.0.0.1:{port_file.read_text().strip()}"
    token = (pod_tmp / ".ray" / "auth_token").read_text().strip()
    out: dict[str, str] = {"address": address}
    for who, extra in (
        ("anonymous", {"RAY_AUTH_MODE": "disabled"}),
        ("forged", {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "0" * len(token)}),
        ("token", {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}),
    ):
        home = world["tmp"] / f"probe-{who}"
        home.mkdir()
        env = {"PATH": os.environ["PATH"], "HOME": str(home), "RAY_USAGE_STATS_ENABLED": "0", **extra}
        done = subprocess.run(
            [sys.executable, "-c", PROBE, address], env=env, capture_output=True, text=True, timeout=180
        )
        out[who] = done.stdout + done.stderr[-2000:]
    return out


def notebook_fails(world: dict[str, Any], out: render.Rendered) -> str:
    try:
        notebook(world, out, "after")
    except AssertionError as err:
        return str(err)
    return ""


def expected(now: dt.datetime) -> list[dict[str, Any]]:
    """What the data says for entity_rows(now): the newest values now, the stale ones 3 h ago."""
    rows = []
    for d, ts in entity_rows(now):
        at = dt.datetime.fromisoformat(ts)
        newest = at >= now - dt.timedelta(hours=1) and d in feature_repo.DRIVERS
        values = feature_repo.latest_values(d) if newest else feature_repo._stale_values(d)
        if d not in feature_repo.DRIVERS:
            values = dict.fromkeys(values)
        rows.append({"driver_id": d, "event_timestamp": str(at), **values})
    return sorted(rows, key=lambda r: (r["driver_id"], r["event_timestamp"]))


def comparable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def value(v: Any) -> Any:
        return round(v, 3) if isinstance(v, float) else v

    return [{k: value(v) for k, v in r.items()} for r in rows]


def test_ray_offline_server_answers_row_for_row_as_the_file_store(world, answers):
    ray_rows, file_rows = answers["ray"]["rows"], answers["local"]["rows"]
    assert len(ray_rows) == len(entity_rows(world["now"])), ray_rows
    assert comparable(ray_rows) == comparable(file_rows), (
        "the Ray offline server's answer differs from the file store's"
    )
    assert comparable(file_rows) == expected(world["now"]), "both answers differ from the data"


def test_the_offline_server_read_the_bucket_with_ray_in_its_own_pod(answers):
    data = answers["ray"]
    config = data["rendered"].objects
    server_cm = next(o for o in config if o["kind"] == "ConfigMap" and OFFLINE_CONFIG_KEY in o["data"])
    assert "type: ray" in server_cm["data"][OFFLINE_CONFIG_KEY]
    assert data["sessions"] == ["raylet.out"], f"no Ray node in the offline server's /tmp:\n{data['log']}"
    assert answers["local"]["sessions"] == [], "the file store's server started Ray"


def test_the_pods_ray_refuses_callers_without_its_token(answers):
    probe = answers["ray"]["ray"]
    assert "REFUSED" in probe["anonymous"] and "CONNECTED" not in probe["anonymous"], probe["anonymous"]
    assert "REFUSED" in probe["forged"] and "CONNECTED" not in probe["forged"], probe["forged"]
    assert "AuthenticationError" in probe["anonymous"] and "AuthenticationError" in probe["forged"], probe
    assert "CONNECTED nodes: 1" in probe["token"], f"the pod's own token must work: {probe['token']}"


def test_notebooks_reach_the_engine_through_the_offline_server_only(world, answers):
    client_cfg = answers["ray"]["rendered"].client_yaml
    assert "type: remote" in client_cfg and "port: 8815" in client_cfg, client_cfg
    assert answers["without_server"], "the notebook read historical data with the offline server gone"
    # the enforcing stand-in refused nothing the store's pods and the notebook did
    assert world["api"].refused == [], world["api"].refused
