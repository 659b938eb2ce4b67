"""Rollouts seen on the real API server: a Deployment's pod template changed exactly once."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from tests.support.waiting import wait_for

#: the digest of the Secrets a pod consumes (render/rotation.py)
ANNOTATION = "featurestore.kubeflow.org/secrets-hash"


def rolled_once(
    operator: Any, apps: client.AppsV1Api, namespace: str, name: str, generation: int, old_hash: str
) -> client.V1Deployment:
    """Wait for ``generation`` + 1 with a new secrets digest, then for two more reconcile passes (one of
    them a resync): the Deployment must still be at ``generation`` + 1."""

    def read() -> tuple[client.V1Deployment, int, dict[str, str]]:
        dep = apps.read_namespaced_deployment(name, namespace)
        assert dep.metadata and dep.metadata.generation is not None and dep.spec and dep.spec.template.metadata
        return dep, dep.metadata.generation, dep.spec.template.metadata.annotations or {}

    def rolled() -> tuple[client.V1Deployment, int, dict[str, str]] | None:
        got = read()
        return got if got[1] > generation else None

    _, seen, annotations = wait_for(rolled, timeout=90, interval=0.5, what=f"{name} rolled")
    assert seen == generation + 1, "the change rolled the Deployment more than once"
    assert annotations[ANNOTATION] != old_hash
    operator.wait_reconciles(2)
    again, seen, _ = read()
    assert seen == generation + 1, "a later pass or resync rolled the Deployment again"
    return again
