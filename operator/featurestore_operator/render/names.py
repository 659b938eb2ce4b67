"""Deterministic names and the standard labels of everything one FeatureStore owns."""

from __future__ import annotations

import hashlib

from ..api import FeatureStore
from ..api.labels import MANAGED_BY, MANAGED_BY_LABEL, OWNER_LABEL

PART_OF = "feast"
INSTANCE_LABEL = "app.kubernetes.io/instance"
COMPONENT_LABEL = "app.kubernetes.io/component"
CONFIG_HASH_ANNOTATION = "featurestore.kubeflow.org/config-hash"
REVISION_LABEL = "featurestore.kubeflow.org/repo-revision"


def short_hash(*parts: str, length: int = 8) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:length]


class Names:
    """Child object names. metadata.name is <= 40 chars, so every suffix keeps names <= 63."""

    def __init__(self, fs: FeatureStore):
        self.fs = fs.metadata.name
        self.namespace = fs.metadata.namespace

    @property
    def service_account(self) -> str:
        return f"{self.fs}-feast"

    @property
    def server_config(self) -> str:
        return f"{self.fs}-feast-config"

    @property
    def client_config(self) -> str:
        return f"{self.fs}-feast-client"

    @property
    def feature_server(self) -> str:
        return f"{self.fs}-feature-server"

    @property
    def registry_server(self) -> str:
        return f"{self.fs}-registry-server"

    @property
    def offline_server(self) -> str:
        return f"{self.fs}-offline-server"

    @property
    def ui(self) -> str:
        return f"{self.fs}-ui"

    @property
    def materialize(self) -> str:
        return f"{self.fs}-materialize"

    def apply_job(self, template_hash: str) -> str:
        """The `feast apply` Job of one pod template (see ``render.jobs.apply_job``)."""
        return f"{self.fs}-apply-{template_hash[:10]}"

    @property
    def redis(self) -> str:
        return f"{self.fs}-redis"

    @property
    def online_secret(self) -> str:
        """Secret with the online store's `password` (and `ca.crt` for TLS), owned by the FeatureStore."""
        return f"{self.fs}-online-store"

    @property
    def data_claim(self) -> str:
        return f"{self.fs}-feast-data"

    @property
    def pod_default(self) -> str:
        return f"{self.fs}-feast-access"

    @property
    def access_label(self) -> str:
        """Label a notebook pod carries to get this store's PodDefault."""
        return f"access-feast-{self.fs}"

    def svc_host(self, service: str) -> str:
        return f"{service}.{self.namespace}.svc.cluster.local"


def labels(fs: FeatureStore, component: str) -> dict[str, str]:
    """The recommended app.kubernetes.io labels plus the owner label used to find children."""
    return {
        "app.kubernetes.io/name": "feast",
        INSTANCE_LABEL: fs.metadata.name,
        COMPONENT_LABEL: component,
        MANAGED_BY_LABEL: MANAGED_BY,
        "app.kubernetes.io/part-of": PART_OF,
        OWNER_LABEL: fs.metadata.name,
    }


def selector(fs: FeatureStore, component: str) -> dict[str, str]:
    """Immutable selector labels (a subset of :func:`labels`)."""
    return {INSTANCE_LABEL: fs.metadata.name, COMPONENT_LABEL: component, OWNER_LABEL: fs.metadata.name}


def meta(fs: FeatureStore, name: str, component: str, **extra: object) -> dict[str, object]:
    """ObjectMeta of a child: name, namespace, labels, controller ownerReference."""
    out: dict[str, object] = {
        "name": name,
        "namespace": fs.metadata.namespace,
        "labels": labels(fs, component),
        "ownerReferences": [fs.owner_reference()],
    }
    out.update(extra)
    return out
