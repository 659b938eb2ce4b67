"""``compute.ray.kubeRay``: each materialization run is a Ray job on the store's RayCluster.

Feast 0.67's Ray engine reads with Ray Data, which does not run through Ray Client (``ray://``,
ray-project/ray#48682), so the driver must be a Ray node. The CronJob's pod therefore only triggers
and watches the run (``programs/materialize.py``, ``ray_job``), through the head's Ray Jobs API (the dashboard port,
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
3. then the program writes the freshness summary in the pod as for the local engine (it reads the
   registry).

``RAY_AUTH_MODE=token`` and ``RAY_AUTH_TOKEN`` (from the Secret KubeRay generates for the cluster,
named like it, key ``auth_token``) make Ray's SDK send the token on every request.
"""

from __future__ import annotations

from typing import Any

#: The head's dashboard / Ray Jobs API port (KubeRay's head Service exposes it as ``dashboard``).
DASHBOARD_PORT = 8265
#: Key of the token in the Secret KubeRay generates for ``authOptions: {mode: token}``
#: (kuberay ``utils.RAY_AUTH_TOKEN_SECRET_KEY``); the Secret is named after the RayCluster.
TOKEN_KEY = "auth_token"
#: Env of the CronJob container: the head's Jobs API URL.
JOBS_URL_ENV = "FEAST_RAY_JOBS_URL"


def env(cluster: str, head_host: str, store: str) -> list[dict[str, Any]]:
    """The submitting container's env: where the Jobs API is, and Ray's token (KubeRay's Secret)."""
    return [
        {"name": JOBS_URL_ENV, "value": f"http://{head_host}:{DASHBOARD_PORT}"},
        {"name": "FEAST_STORE_NAME", "value": store},
        {"name": "RAY_AUTH_MODE", "value": "token"},
        {"name": "RAY_AUTH_TOKEN", "valueFrom": {"secretKeyRef": {"name": cluster, "key": TOKEN_KEY}}},
    ]
