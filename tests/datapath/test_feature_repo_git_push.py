"""A push to the followed branch reaches the online features, with real Feast, Redis and git:

commit one -> the rendered resolver reports it -> the rendered apply Job of that commit fetches it
(private HTTPS git server, token from the Secret) and `feast apply`s it -> materialization -> the
rendered feature server serves it; a developer pushes commit two adding a feature view -> the
resolver reports the new commit -> the apply Job rendered for it -> materialization -> the same
running feature server serves the new feature view (it re-reads the registry after
registry.cacheTtlSeconds).

Every process is a container of the objects the operator renders, run by tests/support/podrunner.py
(provider local: the registry on the data volume shared by the store's pods; the Redis endpoint is a
real redis-server on loopback)."""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from tests.support.prerequisites import missing

try:
    import feast  # noqa: F401
except ImportError as err:
    missing(f"feast (pip install 'feast[redis,gcp]==0.67.0') is not importable ({err})", module=True)

from featurestore_operator import render
from featurestore_operator.api import FeatureStore, OperatorConfig, resolve
from featurestore_operator.backends.planned import planned_endpoints
from featurestore_operator.render import OnlineEndpoint, RepoSource, SecretKey
from featurestore_operator.render.gitref import parse_report
from featurestore_operator.render.names import Names

from tests.support import feature_repo
from tests.support.git_server import GitServer
from tests.support.podrunner import PodRunner, unshare_available
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(900)  # ~2.5 min idle; 7.5 min seen on a loaded 2-CPU machine
TOKEN = "s3cret"
TRIPS_VIEW = """

driver_trips = FeatureView(
    name="driver_trips",
    entities=[driver],
    ttl=timedelta(days=2),
    schema=[Field(name="avg_daily_trips", dtype=Int64)],
    online=True,
    source=driver_stats_source,
)
"""

if unshare_available():
    missing(f"podrunner: {unshare_available()}", module=True)


def _store(url: str) -> FeatureStore:
    fs = FeatureStore.model_validate(
        {
            "metadata": {"name": "drivers", "namespace": "team-a", "uid": str(uuid.uuid4())},
            "spec": {
                "project": feature_repo.PROJECT,
                "featureRepo": {"git": {"url": url, "ref": "main", "secretRef": {"name": "git"}}},
                "registry": {"cacheTtlSeconds": 2},
            },
        }
    )
    config = OperatorConfig()
    return fs.model_copy(update={"spec": resolve(fs.spec, config)})


def _job(objects: list[dict], part: str) -> dict:
    [job] = [o for o in objects if o["kind"] == "Job" and part in o["metadata"]["name"]]
    return job


def _online(url: str, features: list[str]) -> tuple[int, dict]:
    import urllib.error
    import urllib.request

    body = json.dumps({"features": features, "entities": {"driver_id": feature_repo.DRIVERS}}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {}


def test_a_pushed_commit_reaches_the_online_features():
    data = Path(tempfile.mkdtemp(prefix="git-push-", dir="/var/tmp"))
    git = GitServer(TOKEN)
    password = str(uuid.uuid4())
    try:
        parquet = data / "driver_stats.parquet"
        expected = feature_repo.write_driver_stats(parquet)
        files = {"features.py": feature_repo.repo_files(parquet)["features.py"]}
        git.create("features", files)
        with RedisServer(password=password) as redis:
            fs = _store(git.url("features"))
            names = Names(fs)
            online = OnlineEndpoint(redis.host, redis.port, password=SecretKey(names.online_secret, "password"))
            endpoints = replace(planned_endpoints(fs), online=online)
            config = OperatorConfig()
            secrets = {"git": {"token": TOKEN}, names.online_secret: {"password": password}}
            env = {"GIT_SSL_CAINFO": str(git.ca_file)}

            def rendered(commit: str | None) -> list[dict]:
                return render.render(
                    fs, endpoints, config, repo=RepoSource(f"rev-{commit}", commit) if commit else None
                ).objects

            base = rendered(None)
            with PodRunner(base, secrets=secrets, extra_env=env, namespace="team-a") as runner:

                def resolve_commit() -> str:
                    pod = runner.pod(_job(base, "-resolve-"))
                    assert pod.run_job(timeout=60).returncode == 0
                    report = parse_report(pod.termination_message("resolve"), "main")
                    assert report is not None and hasattr(report, "commit"), report
                    return report.commit  # type: ignore[union-attr]

                def apply_and_materialize(commit: str) -> None:
                    objects = rendered(commit)
                    res = runner.pod(_job(objects, "-apply-")).run_job(timeout=240)
                    assert res.returncode == 0, res.stderr[-3000:]
                    cron = next(
                        o for o in objects if o["kind"] == "CronJob" and o["metadata"]["name"] == names.materialize
                    )
                    res = runner.pod(cron).run_job(timeout=240)
                    assert res.returncode == 0, res.stderr[-3000:]

                first = resolve_commit()
                assert first == git.head("features")
                apply_and_materialize(first)
                deployment = next(
                    o
                    for o in rendered(first)
                    if o["kind"] == "Deployment" and o["metadata"]["name"] == names.feature_server
                )
                server_pod = runner.pod(deployment)
                server = server_pod.start(server_pod.prepare("feature-server"))
                server.wait_ready(timeout=90)
                url = server.url("http", "/get-online-features")
                status, body = _online(url, ["driver_hourly_stats:conv_rate"])
                assert status == 200, body
                assert _online(url, ["driver_trips:avg_daily_trips"])[0] != 200, "a view of the next commit served"

                # A developer pushes a new feature view to the followed branch.
                second = git.push("features", {"features.py": files["features.py"] + TRIPS_VIEW})
                assert resolve_commit() == second != first
                apply_and_materialize(second)

                def served():
                    status, body = _online(url, ["driver_trips:avg_daily_trips"])
                    return body if status == 200 else None

                body = wait_for(served, timeout=60, interval=1, what="the new feature view served")
                got = dict(zip(body["results"][0]["values"], body["results"][1]["values"], strict=True))
                assert got == {d: expected[d]["avg_daily_trips"] for d in feature_repo.DRIVERS}, body
                server.stop()
    finally:
        git.close()
        shutil.rmtree(data, ignore_errors=True)
