"""Listing objects by label across the core kinds the operator's stores produce (typed client)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kubernetes import client

#: kind -> (API class, list method) for namespaced listing
LISTERS = {
    "ConfigMap": (client.CoreV1Api, "list_namespaced_config_map"),
    "Secret": (client.CoreV1Api, "list_namespaced_secret"),
    "ServiceAccount": (client.CoreV1Api, "list_namespaced_service_account"),
    "Service": (client.CoreV1Api, "list_namespaced_service"),
    "PersistentVolumeClaim": (client.CoreV1Api, "list_namespaced_persistent_volume_claim"),
    "Pod": (client.CoreV1Api, "list_namespaced_pod"),
    "Deployment": (client.AppsV1Api, "list_namespaced_deployment"),
    "ReplicaSet": (client.AppsV1Api, "list_namespaced_replica_set"),
    "StatefulSet": (client.AppsV1Api, "list_namespaced_stateful_set"),
    "Job": (client.BatchV1Api, "list_namespaced_job"),
}


def labeled(kube_api: client.ApiClient, namespace: str, selector: str, kinds: list[str]) -> Iterator[tuple[str, Any]]:
    """(kind, object) for every object of ``kinds`` in ``namespace`` matching the label ``selector``."""
    for kind in kinds:
        api_class, method = LISTERS[kind]
        for item in getattr(api_class(kube_api), method)(namespace, label_selector=selector).items:
            yield kind, item
