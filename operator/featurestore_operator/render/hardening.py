"""The securityContext every pod the operator renders runs with (servers, Jobs, Redis, Ray), and
bounded scratch volumes. A leaf module (no render imports) so that every renderer can use it."""

from __future__ import annotations

from typing import Any

RUN_AS = 10001
#: Bound on every emptyDir (writable /tmp, fetched repos): a full node disk evicts everyone.
EMPTY_DIR_LIMIT = "1Gi"


def empty_dir(name: str, size: str = EMPTY_DIR_LIMIT, medium: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"sizeLimit": size}
    if medium:
        spec["medium"] = medium
    return {"name": name, "emptyDir": spec}


def container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def pod_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "fsGroup": RUN_AS,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def needs_api_token(workload_identity: bool, kubernetes_authz: bool = False) -> bool:
    """Whether a pod mounts its ServiceAccount token (``automountServiceAccountToken``). Only two
    reasons: GKE Workload Identity (the metadata server answers for the pod's KSA, and the Google
    client libraries exchange its token), and a server that checks its callers' tokens with
    TokenReview (authz kubernetes). Everything else runs without one."""
    return workload_identity or kubernetes_authz


#: Components whose pods run without an Istio sidecar (``sidecar.istio.io/inject: "false"``), and why.
#: Every other pod joins the mesh like the servers; tests/unit/test_compute_security.py fails on an
#: opt-out not listed here. Each is fenced by the store's NetworkPolicy instead (render/policies.py).
OUT_OF_MESH = {
    "materialization": "only where the mesh lacks native sidecars (istioNativeSidecars false): a Job whose "
    "classic sidecar keeps running never completes; with native sidecars it joins the mesh",
    "feature-repo": "the feast apply Job: the same Job completion reason",
    "online-store": "the in-cluster Redis, only with istioNativeSidecars false: the out-of-mesh Jobs write to "
    "it, and an in-mesh Redis under Kubeflow's global-deny-all admits only mTLS identities",
    "ray": "Ray nodes connect to each other's pod IPs on ports chosen at run time, which a sidecar carries "
    "only with per-cluster mesh setup; Ray's token authentication guards its APIs instead",
}


NO_SIDECAR = {"sidecar.istio.io/inject": "false"}


def mesh_annotations(config: Any) -> dict[str, str]:
    """The sidecar choice of the Jobs (feast apply, materialization) and the in-cluster Redis they
    write to (``config``: the OperatorConfig). In the mesh where Istio runs native sidecars (the
    sidecar ends with the Job; under Kubeflow's global-deny-all only a meshed pod's mTLS identity is
    admitted); out of it otherwise (a classic sidecar never exits, so the Job would never complete),
    then fenced by the store's NetworkPolicies and Redis AUTH."""
    return {} if config.istio and config.istio_native_sidecars else dict(NO_SIDECAR)
