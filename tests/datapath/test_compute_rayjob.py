"""``compute.ray.kubeRay`` for real: each materialization run is a Ray job on the cluster. A local Ray
head (dashboard and Jobs API on, Ray token authentication on every node, as KubeRay's
``authOptions`` sets it) and a worker stand in for the store's RayCluster; the RENDERED CronJob
container (its exact command, env, Secrets and config, run by ``tests/support/podrunner.py``)
submits the run to the head's Jobs API, follows it and reports freshness. The same store with the
local engine materializes into a second redis-server; both must hold exactly the same rows.

What this host lacks of a cluster is swapped in, nothing else: the head Service's DNS name in the
container's Jobs API URL becomes the local head's address, and the store's bucket becomes a
directory under /var/tmp that the pods and the Ray nodes both see: it backs the store's volume
claim (``feast apply`` writes the registry there through /data), and the job config's paths under
/data name it directly, as a RayCluster reaches gs:// (the operator refuses kubeRay with an
in-cluster volume).
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.datapath.test_compute_ray import DATA_PARENT, VIEW, Run, _rows, _run, baseline, mount_points  # noqa: F401
from tests.support import feature_repo
from tests.support.prerequisites import need_module
from tests.support.ray_cluster import LocalRayCluster

pytestmark = pytest.mark.timeout(900)

need_module("aiohttp_cors", "ray[default] (the test extra) is needed for the Ray Jobs API", module=True)

from featurestore_operator.render import rayjob  # noqa: E402
from featurestore_operator.render.compute import JOB_CONFIG_KEY  # noqa: E402
from featurestore_operator.render.freshness import parse_summary  # noqa: E402
from featurestore_operator.render.inputs import DATA_MOUNT  # noqa: E402

#: The Jobs API URL the operator rendered, before the local head's address replaced it.
RENDERED_URLS: list[str] = []
KUBE_RAY = {"engine": "ray", "ray": {"kubeRay": {"workers": 1}, "writeConcurrency": 2}}


def _container(rendered: Any) -> dict[str, Any]:
    cron = next(o for o in rendered.objects if o["kind"] == "CronJob")
    return cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]


def _adapt(cluster: LocalRayCluster, bucket: Path):
    def adapt(rendered: Any) -> None:
        for cm in (o for o in rendered.objects if o["kind"] == "ConfigMap" and JOB_CONFIG_KEY in o["data"]):
            cm["data"][JOB_CONFIG_KEY] = cm["data"][JOB_CONFIG_KEY].replace(f"{DATA_MOUNT}/", f"{bucket}/")
        for env in _container(rendered)["env"]:
            if env["name"] == rayjob.JOBS_URL_ENV:
                RENDERED_URLS.append(env["value"])
                env["value"] = cluster.jobs_url

    return adapt


@pytest.fixture(scope="module")
def runs(mount_points, baseline):  # noqa: F811
    """The Ray job's run of the driver data, beside the local run test_compute_ray made of the same
    data (the ``baseline``: one per session)."""
    data_dir = Path(tempfile.mkdtemp(prefix="feast-rayjob-", dir=DATA_PARENT))
    token = uuid.uuid4().hex + uuid.uuid4().hex
    cluster = LocalRayCluster(workers=1, token=token, dashboard=True)
    done: list[Run] = []
    try:
        bucket = data_dir / "bucket"
        bucket.mkdir()
        secret = {"drivers-ray": {rayjob.TOKEN_KEY: token}}  # the Secret KubeRay generates for the cluster
        done.append(
            _run(
                KUBE_RAY,
                baseline.repo,
                [],
                cluster.temp,
                adapt=_adapt(cluster, bucket),
                secrets=secret,
                retrieve=False,
                data=bucket,
            )
        )
        yield {"local": baseline.local, "rayjob": done[0], "cluster": cluster, "token": token}
    finally:
        for run in done:
            run.runner.close()
            run.redis.stop()
        cluster.close()
        shutil.rmtree(data_dir, ignore_errors=True)


def test_rendered_container_submits_to_the_heads_jobs_api_with_the_clusters_token(runs):
    run = runs["rayjob"]
    env = {e["name"]: e for e in _container(run.rendered)["env"]}
    assert env["RAY_AUTH_MODE"]["value"] == "token"
    assert env["RAY_AUTH_TOKEN"]["valueFrom"] == {"secretKeyRef": {"name": "drivers-ray", "key": "auth_token"}}
    assert RENDERED_URLS == [f"http://drivers-ray-head-svc.team-a.svc.cluster.local:{rayjob.DASHBOARD_PORT}"]
    assert "submitted Ray job feast-materialize-" in run.log, run.log[-3000:]
    assert "Ray job feast-materialize-" in run.log and ": SUCCEEDED" in run.log, run.log[-3000:]


def test_the_jobs_api_refuses_a_caller_without_the_token(runs):
    import requests

    url = runs["cluster"].jobs_url + "/api/jobs/"
    assert requests.get(url, timeout=30).status_code in (401, 403)
    bad = {"Authorization": "Bearer " + "0" * 64}
    assert requests.get(url, headers=bad, timeout=30).status_code in (401, 403)
    good = {"Authorization": f"Bearer {runs['token']}"}
    jobs = requests.get(url, headers=good, timeout=30)
    assert jobs.status_code == 200, jobs.text
    [job] = [j for j in jobs.json() if j["status"] == "SUCCEEDED"]
    assert job["status"] == "SUCCEEDED" and job["metadata"] == {"featurestore": "drivers"}, job
    # the Redis AUTH string travelled in the uploaded working_dir, never in the listed runtime_env
    assert "env_vars" not in (job.get("runtime_env") or {}), job["runtime_env"]


def test_ray_job_writes_the_same_rows_as_local(runs):
    local, ray_rows = _rows(runs["local"].redis), _rows(runs["rayjob"].redis)
    assert len(local) == len(feature_repo.DRIVERS), local.keys()
    assert ray_rows == local, "the Ray job's Redis rows differ from the local engine's"


def test_ray_job_run_reports_freshness_in_the_termination_message(runs):
    run = runs["rayjob"]
    summary = parse_summary(run.summary)
    assert summary is not None, (run.summary, run.log[-3000:])
    views = {v.name: v.materialized_until for v in summary.views}
    assert set(views) == {VIEW}, views
    started, ended = run.window
    assert started - 1 <= views[VIEW].timestamp() <= ended, (views, run.window)
    assert time.time() >= ended


def _jobs(runs) -> list[dict[str, Any]]:
    import requests

    good = {"Authorization": f"Bearer {runs['token']}"}
    answer = requests.get(runs["cluster"].jobs_url + "/api/jobs/", headers=good, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_terminated_run_stops_its_ray_job(runs):
    """The kubelet's SIGTERM (activeDeadlineSeconds, deletion) reaches the submitting program, which
    stops the Ray job: the cluster does not go on with a run the CronJob counts as failed."""
    run = runs["rayjob"]
    before = {j["submission_id"] for j in _jobs(runs)}
    pod = run.runner.pod(run.runner.find("CronJob"))
    running = pod.start(pod.prepare("materialize"))
    try:
        deadline = time.time() + 300
        while "submitted Ray job" not in running.log(200) and time.time() < deadline:
            assert running.proc.poll() is None, running.log(200)
            time.sleep(0.5)
        assert "submitted Ray job" in running.log(200), running.log(200)
    finally:
        running.stop(timeout=120)
    assert "stopping Ray job" in running.log(200), running.log(200)
    [new] = [j for j in _jobs(runs) if j["submission_id"] not in before]
    deadline = time.time() + 120
    while new["status"] not in ("STOPPED", "SUCCEEDED", "FAILED") and time.time() < deadline:
        time.sleep(1)
        [new] = [j for j in _jobs(runs) if j["submission_id"] == new["submission_id"]]
    assert new["status"] == "STOPPED", new
