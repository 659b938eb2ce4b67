"""Feast authorization (``spec.authz``): the ``auth`` blocks of feature_store.yaml, the Roles and
RoleBindings Feast's Kubernetes auth reads, the Feast permissions a repo apply registers, and the
start-up shim that makes Feast's Kubernetes token check trustworthy.

Feast's Kubernetes auth (0.67) maps a caller to roles by the *names* of the Roles its
ServiceAccount is bound to in the server's namespace. Two Roles per store carry those names:
``<fs>-feast-reader`` (notebook ServiceAccounts, allowed namespaces' ``default-editor``) and
``<fs>-feast-writer`` (the store's own ServiceAccount). Both grant only ``get`` on the store's
client config, so a binding never hands out Kubernetes power beyond that.

Feast 0.67 decodes the caller's JWT *without verifying it* and only logs a failed TokenReview, so a
forged unsigned token naming the store's ServiceAccount would be a writer. :data:`SERVE_COMMAND` runs
the Feast CLI with the token parser replaced by one that trusts only the API server's TokenReview
answer and only ServiceAccount identities with one of this store's roles.
"""

from __future__ import annotations

from typing import Any

from ..api import FeatureStore
from ..api.spec import AuthzType
from . import programs
from .names import Names, meta

#: The KSA Kubeflow runs a profile's notebooks, pipelines and KServe models as.
NOTEBOOK_SERVICE_ACCOUNT = "default-editor"
OIDC_TOKEN_ENV = "FEAST_OIDC_TOKEN"
OIDC_SECRET_KEY = "client_secret"
ROLES_ENV = "FSO_FEAST_ROLES"
AUDIENCE_ENV = "FSO_FEAST_AUDIENCE"
#: where callers mount their store-audience token (PodDefault; the model-server snippet of the docs)
TOKEN_MOUNT_ROOT = "/var/run/secrets/featurestore.kubeflow.org"
#: lifetime of a notebook's projected token; the kubelet renews it at 80% (the API minimum is 600)
TOKEN_EXPIRATION_SECONDS = 600
PERMISSIONS_FILE = "featurestore_operator_permissions.py"

#: `python -c SHIM feast-args...`: Feast's CLI with a verified Kubernetes token parser
#: (render/programs/serve_shim.py, after the prelude every Feast process runs).
#: The TokenReview names this store's audience (FSO_FEAST_AUDIENCE) and the answer must confirm it,
#: so only tokens minted for this store pass: a token the API server would accept (the default
#: audience: a pod's own ServiceAccount token) is refused, and what a caller sends is useless at
#: the API server or at any other store.
#: Blocking API calls inside an async method mirror Feast's own parser (it does the same). Accepted
#: tokens are remembered (by digest) for FSO_FEAST_AUTH_CACHE_SECONDS (30): a TokenReview and a
#: RoleBinding list per request cost ~280 ms here; a revoked token or removed binding is honoured
#: within that time. Refusals are never cached.
SERVE_COMMAND = ["python", "-c", programs.feast_program("serve_shim.py")]


def enabled(fs: FeatureStore) -> bool:
    return fs.spec.authz.type is not AuthzType.NONE


def reader_role(fs: FeatureStore) -> str:
    return f"{fs.metadata.name}-feast-reader"


def writer_role(fs: FeatureStore) -> str:
    return f"{fs.metadata.name}-feast-writer"


def server_auth(fs: FeatureStore) -> dict[str, Any] | None:
    """The ``auth`` block of the servers' feature_store.yaml (None: Feast's no_auth)."""
    authz = fs.spec.authz
    if authz.type is AuthzType.KUBERNETES:
        return {"type": "kubernetes"}
    if authz.type is AuthzType.OIDC:
        assert authz.oidc is not None
        issuer = authz.oidc.issuer.rstrip("/")
        # audience and issuer: Feast verifies a claim only when it is set (0.67 defaults: neither)
        return {
            "type": "oidc",
            "client_id": authz.oidc.client_id,
            "auth_discovery_url": f"{issuer}/.well-known/openid-configuration",
            "audience": authz.oidc.required_audience,
            "issuer": authz.oidc.issuer,
        }
    return None


def client_auth(fs: FeatureStore) -> dict[str, Any] | None:
    """The ``auth`` block of the client config: notebooks present their own identity (the mounted
    ServiceAccount token, or an OIDC token from the env / the namespace's client secret)."""
    authz = fs.spec.authz
    if authz.type is AuthzType.KUBERNETES:
        # token_path: not read by Feast 0.67 (it sends the pod's default token, which this store
        # refuses); callers read it to send the store-audience token (docs/security/tokens-and-tls.md)
        return {"type": "kubernetes", "token_path": token_path(fs)}
    if authz.type is AuthzType.OIDC:
        assert authz.oidc is not None
        if authz.oidc.secret_ref is None:
            return {"type": "oidc", "token_env_var": OIDC_TOKEN_ENV}
        return {**(server_auth(fs) or {}), "client_secret": f"${{{oidc_client_secret_env(fs)}}}"}
    return None


def client_env(fs: FeatureStore) -> list[dict[str, Any]]:
    """Env a notebook needs for the client auth block (added to the PodDefault)."""
    oidc = fs.spec.authz.oidc
    if fs.spec.authz.type is not AuthzType.OIDC or oidc is None or oidc.secret_ref is None:
        return []
    ref = {"name": oidc.secret_ref.name, "key": OIDC_SECRET_KEY}
    return [{"name": oidc_client_secret_env(fs), "valueFrom": {"secretKeyRef": ref}}]


def oidc_client_secret_env(fs: FeatureStore) -> str:
    """Per store (``FEAST_<NAME>_OIDC_CLIENT_SECRET``): one notebook may select the PodDefaults of
    several stores, and Kubeflow's webhook refuses the pod when two set one variable differently."""
    return f"FEAST_{env_part(fs.metadata.name)}_OIDC_CLIENT_SECRET"


def env_part(name: str) -> str:
    """A store name (a DNS label) as part of an environment variable name: upper case, ``-`` -> ``_``
    (injective on DNS labels, which have no ``_``)."""
    return name.upper().replace("-", "_")


def token_audience(fs: FeatureStore) -> str:
    """The audience of the ServiceAccount tokens this store's servers accept (authz kubernetes):
    ``featurestore.kubeflow.org/<namespace>/<name>``. Not an API-server audience, so such a token
    is refused by the API server and by every other store."""
    return f"featurestore.kubeflow.org/{fs.metadata.namespace}/{fs.metadata.name}"


def token_path(fs: FeatureStore) -> str:
    """Where a caller's pod mounts its token for this store (PodDefault, and the documented volume
    of model servers in other namespaces)."""
    return f"{TOKEN_MOUNT_ROOT}/{fs.metadata.name}/token"


def token_volume(fs: FeatureStore) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(volumes, volumeMounts) of a projected ServiceAccount token bound to :func:`token_audience`
    (authz kubernetes only): the kubelet mints it for the pod's own ServiceAccount and renews it."""
    if fs.spec.authz.type is not AuthzType.KUBERNETES:
        return [], []
    name = f"feast-{fs.metadata.name}-token"
    projection = {
        "audience": token_audience(fs),
        "expirationSeconds": TOKEN_EXPIRATION_SECONDS,
        "path": "token",
    }
    volume = {"name": name, "projected": {"sources": [{"serviceAccountToken": projection}]}}
    mount = {"name": name, "mountPath": token_path(fs).rsplit("/", 1)[0], "readOnly": True}
    return [volume], [mount]


def server_env(fs: FeatureStore) -> list[dict[str, Any]]:
    """Env of the Feast servers: the role names and the token audience the shim accepts."""
    if fs.spec.authz.type is not AuthzType.KUBERNETES:
        return []
    return [
        {"name": ROLES_ENV, "value": f"{reader_role(fs)},{writer_role(fs)}"},
        {"name": AUDIENCE_ENV, "value": token_audience(fs)},
    ]


def server_command(fs: FeatureStore) -> list[str] | None:
    """argv[0..] of a Feast server container before Feast's own arguments; None: Feast's CLI."""
    return list(SERVE_COMMAND) if fs.spec.authz.type is AuthzType.KUBERNETES else None


def _role(fs: FeatureStore, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": meta(fs, name, "authz"),
        "rules": [
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": [Names(fs).client_config],
                "verbs": ["get"],
            }
        ],
    }


def _binding(
    fs: FeatureStore, name: str, role: str, subjects: list[tuple[str, str]], kind: str = "Role"
) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": meta(fs, name, "authz"),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": n, "namespace": ns} for ns, n in subjects],
    }


def readers(fs: FeatureStore) -> list[tuple[str, str]]:
    """(namespace, ServiceAccount) pairs bound to the reader role."""
    ns = fs.metadata.namespace
    own = [(ns, sa) for sa in fs.spec.authz.reader_service_accounts]
    others = [(n, NOTEBOOK_SERVICE_ACCOUNT) for n in fs.spec.kubeflow.allowed_namespaces if n != ns]
    return sorted(set(own + others))


def rbac(fs: FeatureStore) -> list[dict[str, Any]]:
    """Reader and writer Roles + bindings, and the servers' right to list RoleBindings (Feast looks
    up a caller's roles there). Kubernetes auth only."""
    if fs.spec.authz.type is not AuthzType.KUBERNETES:
        return []
    names = Names(fs)
    ns = fs.metadata.namespace
    lookup = f"{fs.metadata.name}-feast-role-lookup"
    return [
        _role(fs, reader_role(fs)),
        _binding(fs, reader_role(fs), reader_role(fs), readers(fs)),
        _role(fs, writer_role(fs)),
        _binding(fs, writer_role(fs), writer_role(fs), [(ns, names.service_account)]),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta(fs, lookup, "authz"),
            "rules": [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["rolebindings"], "verbs": ["list"]}],
        },
        _binding(fs, lookup, lookup, [(ns, names.service_account)]),
    ]


def permissions_source(fs: FeatureStore) -> str:
    """A Python file added to the feature repo by the apply Job: readers may describe and read,
    the writer may do everything. Without any permission Feast lets every authenticated caller
    do everything, so these are always registered when authz is on."""
    reader, writer = reader_role(fs), writer_role(fs)
    return f'''"""Written by featurestore-operator: who may do what on this store's Feast servers."""
from feast.feast_object import ALL_RESOURCE_TYPES
from feast.permissions.action import ALL_ACTIONS, READ, AuthzedAction
from feast.permissions.permission import Permission
from feast.permissions.policy import RoleBasedPolicy

featurestore_operator_readers = Permission(
    name="featurestore-operator-readers",
    types=ALL_RESOURCE_TYPES,
    policy=RoleBasedPolicy(roles=["{reader}", "{writer}"]),
    actions=[AuthzedAction.DESCRIBE, *READ],
)
featurestore_operator_writer = Permission(
    name="featurestore-operator-writer",
    types=ALL_RESOURCE_TYPES,
    policy=RoleBasedPolicy(roles=["{writer}"]),
    actions=ALL_ACTIONS,
)
'''
