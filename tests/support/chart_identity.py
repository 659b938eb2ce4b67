"""The operator's identity in the control-plane tier: a ServiceAccount bound ONLY to the chart's rendered
RBAC (never the admin token), so every test that starts the operator proves the chart's rules suffice.

``register(server, ca_file, admin_token)`` (the session's ``control_plane`` fixture calls it) makes a
control plane's admin token known; :func:`kubeconfig_for` then turns any kubeconfig that carries that
token (the control plane's own, or one pointing at a fault-injecting proxy) into one with the chart
identity's token instead, same server. On first use per control plane it renders the chart with every
feature on (``helm template``: compute, onboarding, leader election, authz kubernetes, webhook), applies
the ServiceAccount and every Role/ClusterRole and binding of it to the real API server, and asks the
TokenRequest API for the ServiceAccount's token.

The release lives in :data:`NAMESPACE` (its leader-election Role too: a test electing a leader uses a
Lease there). A test that needs more than the chart grants passes ``identity="admin"`` to
``OperatorProcess`` and says why.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import tempfile
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.chart_values import EVERYTHING
from tests.support.controlplane import find_tool

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "featurestore-operator"
RELEASE = "fso-tier"
NAMESPACE = "fso-tier"
#: every feature whose rules the operator may need in some test (the widest chart configuration)
VALUES = [*EVERYTHING, "--set", "crds.install=false"]
RBAC_KINDS = {"ServiceAccount": "", "ClusterRole": "", "ClusterRoleBinding": "", "Role": "", "RoleBinding": ""}
_PATHS = {
    "ServiceAccount": "/api/v1/namespaces/{ns}/serviceaccounts",
    "Role": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles",
    "RoleBinding": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings",
    "ClusterRole": "/apis/rbac.authorization.k8s.io/v1/clusterroles",
    "ClusterRoleBinding": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
}


@dataclass
class _Cluster:
    server: str
    ca_file: str
    admin_token: str
    token: str | None = None
    service_account: str = ""
    kubeconfigs: dict[str, str] = field(default_factory=dict)


_clusters: dict[str, _Cluster] = {}  # admin token -> its control plane
_lock = threading.Lock()


def register(server: str, ca_file: str, admin_token: str) -> None:
    _clusters[admin_token] = _Cluster(server, str(ca_file), admin_token)


def rendered_rbac() -> list[dict[str, Any]]:
    """The chart's ServiceAccount and RBAC objects, as `helm template` renders them."""
    import yaml

    helm = find_tool("helm")
    if not helm:
        raise RuntimeError("helm not found: the operator's chart identity is rendered with it")
    out = subprocess.run(
        [helm, "template", RELEASE, str(CHART), "-n", NAMESPACE, *VALUES],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d and d["kind"] in RBAC_KINDS]


def _request(c: _Cluster, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    req = urllib.request.Request(
        c.server + path, method=method, data=json.dumps(body).encode() if body is not None else None
    )
    req.add_header("Authorization", f"Bearer {c.admin_token}")
    req.add_header("Content-Type", "application/json")
    ctx = ssl.create_default_context(cafile=c.ca_file)
    with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
        raw = r.read()
    return json.loads(raw) if raw else {}


def _create_or_replace(c: _Cluster, obj: dict[str, Any]) -> None:
    path = _PATHS[obj["kind"]].format(ns=obj["metadata"].get("namespace", NAMESPACE))
    try:
        _request(c, "POST", path, obj)
    except urllib.error.HTTPError as err:
        if err.code != 409:
            what = f"{obj['kind']} {obj['metadata']['name']}"
            raise RuntimeError(f"{what}: HTTP {err.code} {err.read()[:300]!r}") from None
        name = obj["metadata"]["name"]
        current = _request(c, "GET", f"{path}/{name}")
        obj = {**obj, "metadata": {**obj["metadata"], "resourceVersion": current["metadata"]["resourceVersion"]}}
        _request(c, "PUT", f"{path}/{name}", obj)


def _install(c: _Cluster) -> None:
    try:
        _request(c, "POST", "/api/v1/namespaces", {"metadata": {"name": NAMESPACE}})
    except urllib.error.HTTPError as err:
        if err.code != 409:
            raise
    docs = rendered_rbac()
    for doc in sorted(docs, key=lambda d: list(RBAC_KINDS).index(d["kind"])):
        _create_or_replace(c, doc)
    [sa] = [d for d in docs if d["kind"] == "ServiceAccount"]
    c.service_account = sa["metadata"]["name"]
    answer = _request(
        c,
        "POST",
        f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/{c.service_account}/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 86400}},
    )
    c.token = answer["status"]["token"]


def kubeconfig_for(kubeconfig: str) -> str:
    """``kubeconfig`` with the chart identity's token in place of a registered admin token (written
    next to it once); ``kubeconfig`` itself when it carries no registered admin token."""
    try:
        cfg = json.loads(Path(kubeconfig).read_text())
    except (OSError, ValueError):
        return kubeconfig  # not one of ours (YAML written by someone else): leave it
    users = cfg.get("users") or []
    tokens = [(u.get("user") or {}).get("token") for u in users]
    admin = next((_clusters[t] for t in tokens if t in _clusters), None)
    if admin is None:
        return kubeconfig
    with _lock:
        if admin.token is None:
            _install(admin)
        if kubeconfig not in admin.kubeconfigs:
            name = f"system:serviceaccount:{NAMESPACE}:{admin.service_account}"
            for u in users:
                u["user"], u["name"] = {"token": admin.token}, name
            for ctx in cfg.get("contexts") or []:
                ctx["context"]["user"] = name
            path = Path(tempfile.mkstemp(prefix="operator-chart-identity-", suffix=".kubeconfig")[1])
            path.write_text(json.dumps(cfg))
            path.chmod(0o600)
            admin.kubeconfigs[kubeconfig] = str(path)
        return admin.kubeconfigs[kubeconfig]
