"""Secret rotation: each pod template carries one digest of the Secrets its pod consumes, so a
changed Secret (Redis AUTH string, CA, TLS key pair, git credentials) rolls exactly the workloads
that read it, and an unchanged one rolls nothing. The digest is of :class:`SecretHashes` entries
(hashes of the data), never of the data itself.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ..api import FeatureStore
from .compute import ray_cluster_name, submits_ray_job
from .inputs import Endpoints, SecretHashes

SECRETS_HASH_ANNOTATION = "featurestore.kubeflow.org/secrets-hash"


def secret_names(fs: FeatureStore, endpoints: Endpoints) -> set[str]:
    """The Secrets the store's pods will consume: reconcile reads these and passes their
    :func:`~.inputs.secret_hash` to ``render(..., secrets=SecretHashes(...))``."""
    online = endpoints.online
    names = {ref.name for ref in (online.password, online.ca) if ref} if online else set()
    if endpoints.serving_tls and fs.spec.tls.enabled:
        names.add(endpoints.serving_tls.secret)
    git = fs.spec.feature_repo.git if fs.spec.feature_repo else None
    if git and git.secret_ref:
        names.add(git.secret_ref.name)
    if submits_ray_job(fs):  # the token Secret KubeRay generates, read by the materialization pod
        names.add(ray_cluster_name(fs))
    return names


def consumed_secrets(pod: dict[str, Any]) -> set[str]:
    """Names of the Secrets a pod spec reads: env secretKeyRefs, envFrom and secret volumes."""
    names = {v["secret"]["secretName"] for v in pod.get("volumes") or [] if "secret" in v}
    for c in [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]:
        names |= {
            e["valueFrom"]["secretKeyRef"]["name"]
            for e in c.get("env") or []
            if "secretKeyRef" in (e.get("valueFrom") or {})
        }
        names |= {e["secretRef"]["name"] for e in c.get("envFrom") or [] if "secretRef" in e}
    return names


def _templates(obj: dict[str, Any]) -> list[dict[str, Any]]:
    kind, spec = obj["kind"], obj.get("spec") or {}
    if kind in ("Deployment", "StatefulSet"):  # not Job: its template is immutable and it runs once
        return [spec["template"]]
    if kind == "CronJob":
        return [spec["jobTemplate"]["spec"]["template"]]
    return []


def annotate(objects: list[dict[str, Any]], hashes: SecretHashes) -> None:
    """Add the secrets digest to every pod template that consumes a Secret (in place)."""
    for obj in objects:
        for template in _templates(obj):
            used = sorted(consumed_secrets(template["spec"]))
            if not used:
                continue
            parts = "\n".join(f"{n}={hashes.hashes.get(n, '')}" for n in used)
            meta = template.setdefault("metadata", {})
            meta.setdefault("annotations", {})[SECRETS_HASH_ANNOTATION] = hashlib.sha256(parts.encode()).hexdigest()[
                :16
            ]
