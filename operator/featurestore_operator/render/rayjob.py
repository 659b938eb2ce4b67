"""``compute.ray.kubeRay``: each materialization run is a Ray job on the store's RayCluster.

Feast 0.67's Ray engine reads with Ray Data, which does not run through Ray Client (``ray://``,
ray-project/ray#48682), so the driver must be a Ray node. The CronJob's pod therefore only triggers
and watches the run (``SUBMIT_PROGRAM``), through the head's Ray Jobs API (the dashboard port,
in-namespace Service, Ray token authentication):

1. it reads the Job's feature_store.yaml as Feast does (``os.path.expandvars``: the Redis AUTH
   string from the pod's Secret env) and writes it into a private working directory, with the
   online store's CA certificate (public; its path made relative) the only files of the job's
   ``runtime_env.working_dir``: Ray uploads it to the cluster through the same
   authenticated Jobs API, and the driver (started by the head's job supervisor, a Ray node, with
   ``RAY_ADDRESS`` set) runs ``feast -f feature_store.yaml materialize-incremental END [--views V]``
   in it. So the Ray pods hold no store config and no Secret between runs (a rotated AUTH string
   reaches the next run), and the secret never appears in the job's listed ``runtime_env``
   (env_vars would be shown by ``ray job list`` and the dashboard);
2. it prints the job's logs as they grow, stops the job when the pod is terminated (deadline,
   deletion), and exits with the job's result;
3. then ``jobs``' freshness summary runs in the pod as for the local engine (it reads the registry).

``RAY_AUTH_MODE=token`` and ``RAY_AUTH_TOKEN`` (from the Secret KubeRay generates for the cluster,
named like it, key ``auth_token``) make Ray's SDK send the token on every request.
"""

from __future__ import annotations

from typing import Any

from . import freshness

#: The head's dashboard / Ray Jobs API port (KubeRay's head Service exposes it as ``dashboard``).
DASHBOARD_PORT = 8265
#: Key of the token in the Secret KubeRay generates for ``authOptions: {mode: token}``
#: (kuberay ``utils.RAY_AUTH_TOKEN_SECRET_KEY``); the Secret is named after the RayCluster.
TOKEN_KEY = "auth_token"
#: Env of the CronJob container: the head's Jobs API URL.
JOBS_URL_ENV = "FEAST_RAY_JOBS_URL"

#: Submits the run, follows it, exits with its result. argv: the spec's ``--views`` list.
SUBMIT_PROGRAM = """import datetime as dt, os, re, shlex, shutil, signal, sys, tempfile, time
from pathlib import Path
from ray.job_submission import JobStatus, JobSubmissionClient
client = JobSubmissionClient(os.environ["FEAST_RAY_JOBS_URL"])
work = Path(tempfile.mkdtemp(prefix="feast-run-"))
config = os.path.expandvars(Path(os.environ["FEAST_FS_YAML_FILE_PATH"]).read_text())  # as Feast loads it
def ship(m):  # the online store's CA file (public) goes along; the driver and Ray's workers run in the dir
    name = f"ca-{len(list(work.iterdir()))}.crt"
    shutil.copyfile(m.group(2), work / name)
    return m.group(1) + name
config = re.sub(r"(ssl_ca_certs=)([^,\\s\\x22\\x27]+)", ship, config)
(work / "feature_store.yaml").write_text(config)
(work / "feature_store.yaml").chmod(0o600)
end = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
argv = ["feast", "-f", "feature_store.yaml", "materialize-incremental", end, *sys.argv[1:]]
entrypoint = " ".join(shlex.quote(a) for a in argv)  # Ray runs it with a shell: the views are quoted
run = f"feast-materialize-{os.environ.get('HOSTNAME', 'pod')}-{int(time.time())}"
try:
    client.submit_job(entrypoint=entrypoint, submission_id=run, runtime_env={"working_dir": str(work)},
                      metadata={"featurestore": os.environ.get("FEAST_STORE_NAME", "")})
finally:
    shutil.rmtree(work)
print(f"submitted Ray job {run}: {entrypoint}", flush=True)
def stop(signum, frame):
    print(f"terminated: stopping Ray job {run}", flush=True)
    client.stop_job(run)
    sys.exit(128 + signum)
signal.signal(signal.SIGTERM, stop)
shown = 0
while True:
    status = client.get_job_status(run)
    logs = client.get_job_logs(run)
    sys.stdout.write(logs[shown:])
    sys.stdout.flush()
    shown = len(logs)
    if status in {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED}:
        break
    time.sleep(2)
info = client.get_job_info(run)
print(f"Ray job {run}: {status.value}" + (f" ({info.message})" if info.message else ""), flush=True)
sys.exit(0 if status == JobStatus.SUCCEEDED else 1)
"""

#: The CronJob container's script with kubeRay: submit and follow (user input arrives as "$@"), then
#: the freshness summary as the termination message, as ``jobs.MATERIALIZE_SCRIPT`` does.
#: In the background so that the shell (the container's PID 1, which ignores SIGTERM without a trap)
#: hands the kubelet's SIGTERM to the program, which stops the Ray job.
SCRIPT = f"""python - "$@" <<'PY' &
{SUBMIT_PROGRAM}PY
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null' TERM
wait "$pid"; rc=$?
while kill -0 "$pid" 2>/dev/null; do wait "$pid"; rc=$?; done
python - > /dev/termination-log 2>/dev/null <<'PY' || true
{freshness.SUMMARY_SCRIPT}PY
exit $rc
"""


def env(cluster: str, head_host: str, store: str) -> list[dict[str, Any]]:
    """The submitting container's env: where the Jobs API is, and Ray's token (KubeRay's Secret)."""
    return [
        {"name": JOBS_URL_ENV, "value": f"http://{head_host}:{DASHBOARD_PORT}"},
        {"name": "FEAST_STORE_NAME", "value": store},
        {"name": "RAY_AUTH_MODE", "value": "token"},
        {"name": "RAY_AUTH_TOKEN", "valueFrom": {"secretKeyRef": {"name": cluster, "key": TOKEN_KEY}}},
    ]
