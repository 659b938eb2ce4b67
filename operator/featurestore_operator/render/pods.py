"""Pod building blocks shared by every Feast workload: container, volumes, env, security
(the securityContext itself is in :mod:`.hardening`, re-exported here)."""

from __future__ import annotations

import math
from typing import Any

from lightkube.utils.quantity import parse_quantity

from ..api import FeatureStore
from ..api.spec import ResourceRequirements
from . import programs
from .feast_config import FEAST_CONFIG_DIR, FEAST_CONFIG_FILE, REDIS_PASSWORD_ENV, REDIS_TLS_DIR
from .hardening import RUN_AS, container_security, empty_dir, needs_api_token, pod_security
from .inputs import DATA_MOUNT, Endpoints
from .names import Names

__all__ = ["RUN_AS", "container_security", "empty_dir", "feast_container", "pod_security", "pod_spec"]

FEAST_YAML = f"{FEAST_CONFIG_DIR}/{FEAST_CONFIG_FILE}"
#: Resources of a Feast container whose spec sets none (apply, materialization, optional servers):
#: `feast apply` imports user code and materialization holds a batch in memory: the limit leaves room,
#: the request fits a store into Kubeflow's sample profile quota (tests/unit/test_profile_quota.py).
DEFAULT_FEAST_RESOURCES = ResourceRequirements(requests={"cpu": "100m", "memory": "384Mi"}, limits={"memory": "2Gi"})


def resources(req: ResourceRequirements | None) -> dict[str, Any]:
    return {k: {n: str(q) for n, q in v.items()} for k, v in (req.wire() if req else {}).items()}


def workers_for(req: ResourceRequirements) -> int:
    """One gunicorn worker per whole CPU of the limit (or request), at least one."""
    cpu = (req.limits or {}).get("cpu") or (req.requests or {}).get("cpu")
    if cpu is None:
        return 1
    return max(1, math.floor(float(parse_quantity(str(cpu)) or 1)))


def feast_env(endpoints: Endpoints) -> list[dict[str, Any]]:
    """Environment of every Feast container. Secret values only via secretKeyRef."""
    env: list[dict[str, Any]] = [
        {"name": "FEAST_FS_YAML_FILE_PATH", "value": FEAST_YAML},
        {"name": "FEAST_USAGE", "value": "False"},
        {"name": "HOME", "value": "/tmp"},
        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
    ]
    online = endpoints.online
    if online and online.password:
        env.append(
            {
                "name": REDIS_PASSWORD_ENV,
                "valueFrom": {"secretKeyRef": {"name": online.password.name, "key": online.password.key}},
            }
        )
    return env


def feast_volumes(fs: FeatureStore, endpoints: Endpoints) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(volumes, volumeMounts) for the server config, Redis CA, data volume and a writable /tmp."""
    names = Names(fs)
    volumes: list[dict[str, Any]] = [
        {"name": "feast-config", "configMap": {"name": names.server_config}},
        empty_dir("tmp"),
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "feast-config", "mountPath": FEAST_CONFIG_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    online = endpoints.online
    if online and online.tls and online.ca:
        volumes.append(
            {
                "name": "redis-tls",
                "secret": {"secretName": online.ca.name, "items": [{"key": online.ca.key, "path": online.ca.key}]},
            }
        )
        mounts.append({"name": "redis-tls", "mountPath": REDIS_TLS_DIR, "readOnly": True})
    if endpoints.offline and endpoints.offline.claim:
        volumes.append({"name": "feast-data", "persistentVolumeClaim": {"claimName": endpoints.offline.claim}})
        mounts.append({"name": "feast-data", "mountPath": DATA_MOUNT})
    return volumes, mounts


#: The command of a Feast container before Feast's arguments: ``feast`` after the operator's prelude
#: (programs/registry_writes.py; ``python`` is the Feast image's interpreter).
FEAST_CLI = ["python", "-c", programs.feast_program("feast_cli.py")]


def feast_container(
    fs: FeatureStore,
    endpoints: Endpoints,
    name: str,
    args: list[str],
    req: ResourceRequirements | None,
    **extra: Any,
) -> dict[str, Any]:
    _, mounts = feast_volumes(fs, endpoints)
    container: dict[str, Any] = {
        "name": name,
        "image": fs.spec.images.feast,
        "imagePullPolicy": "IfNotPresent",
        "command": list(FEAST_CLI),
        "args": args,
        "env": feast_env(endpoints),
        "volumeMounts": mounts,
        "resources": resources(req or DEFAULT_FEAST_RESOURCES),
        "securityContext": container_security(),
    }
    container.update(extra)
    return container


def pod_spec(fs: FeatureStore, endpoints: Endpoints, containers: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A Feast pod under the store's ServiceAccount. No API token is mounted unless ``extra`` asks
    for one (servers checking callers' tokens with Kubernetes auth)."""
    volumes, _ = feast_volumes(fs, endpoints)
    spec: dict[str, Any] = {
        "serviceAccountName": Names(fs).service_account,
        # Workload Identity keeps its token (GKE's metadata server serves the pod's KSA identity).
        "automountServiceAccountToken": needs_api_token(bool(fs.spec.gcp.service_account)),
        "securityContext": pod_security(),
        "containers": containers,
        "volumes": volumes,
    }
    spec.update(extra)
    return spec
