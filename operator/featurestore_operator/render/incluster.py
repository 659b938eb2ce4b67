"""In-cluster stores of provider local: a Redis StatefulSet and the shared data volume.

Layout for a single-node kind cluster: one ReadWriteOnce claim holds the file registry and the
offline parquet data; every Feast pod mounts it (RWO allows many pods on the same node). Redis runs
as a one-replica StatefulSet with its own claim and a password from a generated Secret (created by
the in-cluster backend, since generating it is not pure).
"""

from __future__ import annotations

from typing import Any

from ..api import FeatureStore, OperatorConfig
from . import podknobs
from .hardening import mesh_annotations
from .names import Names, labels, meta, selector
from .pods import container_security, empty_dir, resources

REDIS_PORT = 6379
#: Redis reads its config from stdin ("-"), here a here-document the shell expands: the password
#: never appears in any process's argv (readable in /proc by everyone on the node). `exec` keeps
#: redis-server as PID 1, so it gets the kubelet's SIGTERM.
REDIS_SCRIPT = 'exec redis-server - "$@" <<EOF\nrequirepass $REDIS_PASSWORD\nEOF\n'


def data_claim(fs: FeatureStore) -> list[dict[str, Any]]:
    offline = fs.spec.offline_store
    if not offline or not offline.in_cluster:
        return []
    st = offline.in_cluster.storage
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": str(st.size)}}}
    if st.storage_class_name:
        spec["storageClassName"] = st.storage_class_name
    return [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": meta(fs, Names(fs).data_claim, "offline-store"),
            "spec": spec,
        }
    ]


def redis(fs: FeatureStore, config: OperatorConfig) -> list[dict[str, Any]]:
    online = fs.spec.online_store
    if not online or not online.in_cluster:
        return []
    names = Names(fs)
    spec = online.in_cluster
    volumes: list[dict[str, Any]] = []
    claims: list[dict[str, Any]] = []
    if spec.storage:
        claim: dict[str, Any] = {
            "metadata": {"name": "data", "labels": labels(fs, "online-store")},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": str(spec.storage.size)}}},
        }
        if spec.storage.storage_class_name:
            claim["spec"]["storageClassName"] = spec.storage.storage_class_name
        claims.append(claim)
    else:
        volumes.append(empty_dir("data"))  # stays empty: no AOF and no RDB snapshots without storage
    container = {
        "name": "redis",
        "image": fs.spec.images.redis,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", REDIS_SCRIPT, "--"],
        "args": [
            "--appendonly",
            "yes" if spec.storage else "no",
            *([] if spec.storage else ["--save", ""]),
            "--dir",
            "/data",
            "--protected-mode",
            "no",
        ],
        "env": [
            {"name": "REDIS_PASSWORD", "valueFrom": {"secretKeyRef": {"name": names.online_secret, "key": "password"}}}
        ],
        "ports": [{"name": "tcp-redis", "containerPort": REDIS_PORT, "protocol": "TCP"}],
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
        "resources": resources(spec.resources),
        "readinessProbe": {"tcpSocket": {"port": "tcp-redis"}, "periodSeconds": 5},
        "livenessProbe": {"tcpSocket": {"port": "tcp-redis"}, "periodSeconds": 10, "failureThreshold": 6},
        "securityContext": container_security(),
    }
    return [
        # Its own identity: nothing granted to the Feast ServiceAccount reaches Redis.
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": meta(fs, names.redis, "online-store"),
            "automountServiceAccountToken": False,
        },
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": meta(fs, names.redis, "online-store"),
            "spec": {
                "serviceName": names.redis,
                "replicas": 1,
                "selector": {"matchLabels": selector(fs, "online-store")},
                "template": podknobs.apply(
                    {
                        "metadata": {"labels": labels(fs, "online-store"), **_mesh(config)},
                        "spec": {
                            "serviceAccountName": names.redis,
                            "automountServiceAccountToken": False,
                            "securityContext": {
                                "runAsNonRoot": True,
                                "runAsUser": 999,
                                "runAsGroup": 999,
                                "fsGroup": 999,
                                "seccompProfile": {"type": "RuntimeDefault"},
                            },
                            "containers": [container],
                            **({"volumes": volumes} if volumes else {}),
                        },
                    },
                    podknobs.settings(fs, config, "redis"),
                    fs,
                    "online-store",
                    main=("redis",),
                ),
                **(
                    {
                        "volumeClaimTemplates": claims,
                        # Kubernetes >= 1.27 deletes the claim with the StatefulSet; older servers drop the field.
                        "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Retain"},
                    }
                    if claims
                    else {}
                ),
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta(fs, names.redis, "online-store"),
            "spec": {
                "type": "ClusterIP",
                "selector": selector(fs, "online-store"),
                "ports": [{"name": "tcp-redis", "port": REDIS_PORT, "targetPort": "tcp-redis", "protocol": "TCP"}],
            },
        },
    ]


def _mesh(config: OperatorConfig) -> dict[str, Any]:
    """Out of the mesh exactly when the Jobs writing to it are (hardening.mesh_annotations)."""
    annotations = mesh_annotations(config)
    return {"annotations": annotations} if annotations else {}
