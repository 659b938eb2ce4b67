"""Historical retrieval with the store's engine: the offline server's own feature_store.yaml.

With ``spec.compute.engine: ray`` the offline server (``feast serve_offline``) reads the bucket
with Feast's ``ray`` offline store, Ray running inside the server's pod (Feast 0.67's
``ray_initializer`` LOCAL mode: no address). Never the store's RayCluster or ``ray.address``:

* Ray Data (what the ``ray`` offline store reads with) does not run through Ray Client
  (``ray://``, ray-project/ray#48682), which is how a process outside a RayCluster reaches it
  (Feast's KubeRay mode is CodeFlare's ``ray://`` too); a GCS address (``HOST:6379``) only works
  from a Ray node, and the server's pod is not one;
* the cluster's workers would hold every notebook's entity frame and answer, behind a Jobs API
  that only the materialization pods may call (render/policies.py ``ray_policy``).

Ray is sized from the server container's resources (Feast would take the NODE's CPU count,
``os.cpu_count()``): ``num_cpus`` one per whole CPU of the limit (or request), at least one; the
object store a quarter of the memory limit, in a memory-backed ``/dev/shm`` a little larger (Ray
falls back to /tmp, the bounded scratch volume, when /dev/shm is smaller). Ray's processes
(GCS, raylet, agents, workers) listen on ports chosen at start, on every address of the pod:
``RAY_AUTH_MODE=token`` makes Ray generate a random token at start into the pod's private /tmp
(``HOME``) and refuse every call without it (Ray >= 2.52; 2.60 does so by default for a local
cluster), and the store's NetworkPolicy admits only the store's own pods to any port but the
server's (render/policies.py).

``feast apply``, the feature server and the other servers keep the file offline store
(feature_store.yaml); engines ``kubernetes`` and ``sparkApplication`` do too (docs/compute.md
says why). Notebooks reach the engine through the offline server (render/feast_config.py
``client_config``: ``offline_store: remote``).
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

from lightkube.utils.quantity import parse_quantity

from ..api import FeatureStore
from ..api.compute import ComputeEngine
from ..api.spec import ResourceRequirements
from . import feast_config
from .compute import staging_location
from .hardening import empty_dir
from .inputs import Endpoints
from .pods import DEFAULT_FEAST_RESOURCES, workers_for

#: The offline server's feature_store.yaml, next to the servers' in the server ConfigMap.
OFFLINE_CONFIG_KEY = "offline-server.yaml"
OFFLINE_YAML = f"{feast_config.FEAST_CONFIG_DIR}/{OFFLINE_CONFIG_KEY}"
#: Ray refuses an object store under 75 MiB (ray_constants.OBJECT_STORE_MINIMUM_MEMORY_BYTES).
OBJECT_STORE_MIN = 80 * 1024**2
#: Share of the container's memory for Ray's object store (Ray's own default is 30% of the node's).
OBJECT_STORE_SHARE = 4
SHM = "/dev/shm"
SHM_HEADROOM_MIB = 64


def uses_ray(fs: FeatureStore) -> bool:
    """Whether the offline server runs Ray in its pod (engine ray, offline server enabled)."""
    return fs.spec.compute.engine is ComputeEngine.RAY and fs.spec.offline_server.enabled


def notebook_note(fs: FeatureStore) -> str | None:
    """For ``validate``: a ray store without the offline server retrieves in the notebook, without Ray."""
    if fs.spec.compute.engine is not ComputeEngine.RAY or fs.spec.offline_server.enabled:
        return None
    return (
        "spec.compute.engine ray: without the offline server, notebooks read historical data from the bucket "
        "with Feast's file offline store (pandas in the notebook), not Ray; set spec.offlineServer.enabled: true "
        "to retrieve with Ray in the offline server's pod (docs/compute.md)"
    )


def _resources(fs: FeatureStore) -> ResourceRequirements:
    return fs.spec.offline_server.resources or DEFAULT_FEAST_RESOURCES


def object_store_bytes(req: ResourceRequirements) -> int:
    """A quarter of the memory limit (or request), at least Ray's minimum."""
    memory = (req.limits or {}).get("memory") or (req.requests or {}).get("memory")
    total = int(parse_quantity(str(memory)) or 0) if memory is not None else 0
    return max(OBJECT_STORE_MIN, total // OBJECT_STORE_SHARE)


def server_config(fs: FeatureStore, endpoints: Endpoints) -> dict[str, Any] | None:
    """The offline server's feature_store.yaml when it reads with Ray (None: it uses the servers')."""
    if not uses_ray(fs) or endpoints.offline is None:
        return None
    req = _resources(fs)
    offline = {
        "type": "ray",
        "storage_path": staging_location(endpoints.offline),
        "ray_conf": {"num_cpus": workers_for(req), "object_store_memory": object_store_bytes(req)},
    }
    return {**feast_config.server_config(fs, endpoints), "offline_store": offline}


def config_hash(server_yaml: str, offline_yaml: str | None) -> str | None:
    """The offline server's pod template hash: it restarts when either file changes."""
    if offline_yaml is None:
        return None
    return hashlib.sha256((server_yaml + offline_yaml).encode()).hexdigest()[:16]


def adapt_container(fs: FeatureStore, container: dict[str, Any]) -> None:
    """Point the offline server at its config, turn Ray's token authentication on, mount /dev/shm."""
    if not uses_ray(fs):
        return
    args = container["args"]
    args[args.index("-f") + 1] = OFFLINE_YAML
    env = [{**e, "value": OFFLINE_YAML} if e["name"] == "FEAST_FS_YAML_FILE_PATH" else e for e in container["env"]]
    container["env"] = [
        *env,
        {"name": "RAY_AUTH_MODE", "value": "token"},
        {"name": "RAY_USAGE_STATS_ENABLED", "value": "0"},
    ]
    container["volumeMounts"] = [*container["volumeMounts"], {"name": "shm", "mountPath": SHM}]


def adapt_pod(fs: FeatureStore, pod: dict[str, Any]) -> None:
    if not uses_ray(fs):
        return
    # room above the object store: Ray wants /dev/shm strictly larger than it
    size = math.ceil(object_store_bytes(_resources(fs)) / 1024**2) + SHM_HEADROOM_MIB
    pod["volumes"] = [*pod["volumes"], empty_dir("shm", f"{size}Mi", medium="Memory")]
