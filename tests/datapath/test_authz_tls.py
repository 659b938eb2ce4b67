"""Feast authorization and TLS proven on real processes: a FeatureStore with ``authz: kubernetes`` and
``tls.enabled`` is rendered; its apply Job, materialization and feature server run through
``tests/support/podrunner.py`` (exact argv/env/volumes) against a real redis-server, and the feature
server checks callers' tokens against the real control plane (kube-apiserver): every token here
is a real ServiceAccount token from the TokenRequest API, every role comes from the rendered
Roles/RoleBindings applied to that API server, and every HTTPS connection verifies the server
certificate from ``backends/tls.py`` against the CA in the rendered client config.

The kubelet's part that PodRunner does not play is supplied exactly where the pod spec asks for
it: a pod with ``automountServiceAccountToken: true`` gets the ServiceAccount volume
(/var/run/secrets/kubernetes.io/serviceaccount: its token, the API server's CA, the namespace)
and every process gets KUBERNETES_SERVICE_HOST/PORT pointing at the test API server.
The admin's one-time grant (TokenReview for the store's ServiceAccount; docs/security/tokens-and-tls.md) is made here.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import json
import os
import shutil
import socket
import ssl
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.prerequisites import missing, need_module

need_module("feast", "feast[redis] is needed for the data-path tests", module=True)

from featurestore_operator import render  # noqa: E402
from featurestore_operator.api import FeatureStore, OperatorConfig, resolve  # noqa: E402
from featurestore_operator.backends import tls as tls_backend  # noqa: E402
from featurestore_operator.render import (  # noqa: E402
    Endpoints,
    OfflineEndpoint,
    OnlineEndpoint,
    RepoSource,
    SecretKey,
    authz,  # noqa: E402
)
from featurestore_operator.render.feast_config import FEATURE_SERVER_PORT, REGISTRY_SERVER_PORT  # noqa: E402
from featurestore_operator.render.names import Names  # noqa: E402

from tests.support import feature_repo  # noqa: E402
from tests.support.podrunner import Mount, PodRunner, Running, pod_spec_of, unshare_available  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402

pytestmark = pytest.mark.timeout(600)
if unshare_available():
    missing(f"podrunner: {unshare_available()}", module=True)

FS_NAME = "secure"
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
NOTEBOOK_SA, INTRUDER_SA = "default-editor", "intruder"


def _featurestore(namespace: str) -> FeatureStore:
    fs = FeatureStore.model_validate(
        {
            "apiVersion": "featurestore.kubeflow.org/v1alpha1",
            "kind": "FeatureStore",
            "metadata": {"name": FS_NAME, "namespace": namespace, "uid": str(uuid.uuid4())},
            "spec": {
                "project": feature_repo.PROJECT,
                "provider": "local",
                "featureRepo": {"configMap": {"name": "repo"}},
                "registry": {"server": {"enabled": True}},
                "authz": {"type": "kubernetes"},
                "tls": {"enabled": True},
            },
        }
    )
    return fs.model_copy(update={"spec": resolve(fs.spec, OperatorConfig())})


def _unowned(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as applied without its FeatureStore (no owner in this API server: GC would delete it)."""
    meta = {k: v for k, v in obj["metadata"].items() if k != "ownerReferences"}
    return {**obj, "metadata": meta}


class Cluster:
    """The test API server seen as the namespace's admin and as ServiceAccounts."""

    def __init__(self, kube_api: Any, namespace: str):
        from kubernetes import client

        self.client = client
        self.api = kube_api
        self.core = client.CoreV1Api(kube_api)
        self.rbac = client.RbacAuthorizationV1Api(kube_api)
        self.ns = namespace

    def apply(self, objects: list[dict[str, Any]]) -> None:
        from kubernetes import utils

        for obj in objects:
            utils.create_from_dict(self.api, _unowned(obj), namespace=self.ns)

    def service_account(self, name: str) -> None:
        self.core.create_namespaced_service_account(self.ns, {"metadata": {"name": name}})

    def token(self, sa: str, audience: str | None = None, namespace: str | None = None, seconds: int = 3600) -> str:
        """A real TokenRequest token of ``sa``: for ``audience``, or the API server's default audience."""
        req = self.client.AuthenticationV1TokenRequest(
            spec=self.client.V1TokenRequestSpec(audiences=[audience] if audience else [], expiration_seconds=seconds)
        )
        return self.core.create_namespaced_service_account_token(sa, namespace or self.ns, req).status.token

    def minted(self, namespace: str, sa: str, audience: str, seconds: int) -> str:
        """PodRunner's projected serviceAccountToken source (what the kubelet asks the API for)."""
        return self.token(sa, audience or None, namespace, seconds)

    def grant_token_review(self, sa: str) -> str:
        """The admin's grant (docs/security/tokens-and-tls.md): the store's ServiceAccount may create TokenReviews."""
        name = f"fso-tokenreview-{self.ns}"
        self.rbac.create_cluster_role(
            {
                "metadata": {"name": name},
                "rules": [{"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]}],
            }
        )
        self.rbac.create_cluster_role_binding(
            {
                "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
                "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": self.ns}],
            }
        )
        return name


def _forged_token(namespace: str, sa: str) -> str:
    """An unsigned JWT claiming to be ``sa``: what Feast 0.67's parser decodes without verification."""

    def part(d: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part({'sub': f'system:serviceaccount:{namespace}:{sa}'})}."


class Stack:
    server: Running
    registry_server: Running

    def __init__(self, control_plane: Any, kube_api: Any, namespace: str, workdir: Path, redis: RedisServer):
        self.cp = control_plane
        self.cluster = Cluster(kube_api, namespace)
        self.fs = _featurestore(namespace)
        self.names = Names(self.fs)
        self.tls = tls_backend.ensure(self.fs, None, dt.datetime.now(dt.UTC))
        self.endpoints = Endpoints(
            online=OnlineEndpoint(
                host=redis.host, port=redis.port, password=SecretKey(self.names.online_secret, "password")
            ),
            offline=OfflineEndpoint(claim=self.names.data_claim),
            serving_tls=self.tls.serving,
        )
        parquet = workdir / "driver_stats.parquet"
        self.expected = feature_repo.write_driver_stats(parquet)
        self.repo = feature_repo.repo_files(parquet)
        self.rendered = render.render(self.fs, self.endpoints, OperatorConfig(), repo=RepoSource("r1"))
        self.secrets = {
            self.names.online_secret: {"password": redis.password or ""},
            tls_backend.secret_name(self.fs): self.tls.data,
        }
        self.workdir = workdir
        self.runner = PodRunner(
            self.rendered.objects,
            secrets=self.secrets,
            config_maps={"repo": self.repo},
            extra_env={"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(control_plane.port)},
            namespace=namespace,
            service_account_token=self.cluster.minted,
        )
        self.audience = authz.token_audience(self.fs)

    def caller(self, sa: str) -> str:
        """What a caller sends: its ServiceAccount's token for this store's audience."""
        return self.cluster.token(sa, self.audience)

    def sa_mount(self, obj: dict[str, Any]) -> list[Mount]:
        """The kubelet's ServiceAccount volume, when (and only when) the pod asks for it."""
        spec = pod_spec_of(obj)
        if not spec.get("automountServiceAccountToken", True):
            return []
        d = Path(tempfile.mkdtemp(prefix="sa-", dir=self.workdir))
        (d / "token").write_text(self.cluster.token(spec["serviceAccountName"]))
        (d / "ca.crt").write_text(Path(self.cp.ca_file).read_text())
        (d / "namespace").write_text(self.cluster.ns)
        return [Mount(str(d), SA_DIR, read_only=True)]

    def run_job(self, obj: dict[str, Any]) -> None:
        assert not self.sa_mount(obj), f"{obj['kind']} pods must not get an API token"
        res = self.runner.pod(obj).run_job(timeout=300)
        assert res.returncode == 0, f"{obj['kind']} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"

    def start_server(self, name: str, component: str, command: list[str] | None = None) -> Running:
        """A server Deployment's container, started (see :meth:`ready`); ``command`` replaces the
        rendered one (stock-Feast test only)."""
        deployment = self.runner.find("Deployment", name)
        pod = self.runner.pod(deployment)
        mounts = self.sa_mount(deployment)
        assert mounts, f"{component} needs its token to review callers' tokens"
        prepared = pod.prepare(component, extra_mounts=mounts)
        if command is not None:
            rendered = pod_spec_of(deployment)["containers"][0]["command"]
            prepared.argv = [*command, *prepared.argv[len(rendered) :]]
        return pod.start(prepared)

    def ready(self, running: Running) -> Running:
        """``running`` once its rendered readiness probe passes (stopped when it never does)."""
        try:
            if running.prepared.container == "feature-server":
                self._wait_https(running)
            else:
                running.wait_ready(timeout=120)  # the rendered tcpSocket probe
        except Exception:
            running.stop()
            raise
        return running

    def registry(self, method: str, request: Any, token: str | None) -> Any:
        """A gRPC call to the registry server over TLS (CA from the client config), as ``token``."""
        import grpc
        from feast.protos.feast.registry import RegistryServer_pb2_grpc

        ca = self.runner.find("ConfigMap", self.names.client_config)["data"]["ca.crt"].encode()
        creds = grpc.ssl_channel_credentials(root_certificates=ca)
        target = f"127.0.0.1:{REGISTRY_SERVER_PORT}"
        options = [("grpc.ssl_target_name_override", self.names.svc_host(self.names.registry_server))]
        with grpc.secure_channel(target, creds, options=options) as channel:
            stub = RegistryServer_pb2_grpc.RegistryServerStub(channel)
            metadata = [("authorization", f"Bearer {token}")] if token else []
            return getattr(stub, method)(request, metadata=metadata, timeout=30)

    def _wait_https(self, running: Running, timeout: float = 120) -> None:
        """The rendered readiness probe (httpGet /health, scheme HTTPS), verified against the CA."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if running.proc.poll() is not None:
                raise AssertionError(f"feature server exited {running.proc.returncode}:\n{running.log()}")
            try:
                if call(self, "GET", "/health", None, None)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"feature server not ready over HTTPS:\n{running.log()}")


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1 while verifying the certificate for the Service's DNS name (no cluster DNS here)."""

    def connect(self) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def call(
    st: Stack, method: str, path: str, body: dict[str, Any] | None, token: str | None, ca: str | None = "client-config"
) -> tuple[int, Any]:
    ctx = ssl.create_default_context()
    if ca == "client-config":  # the CA exactly as notebooks get it: the client ConfigMap's ca.crt
        cm = st.runner.find("ConfigMap", st.names.client_config)
        ctx = ssl.create_default_context(cadata=cm["data"]["ca.crt"])
    conn = _PinnedHTTPS(st.names.svc_host(st.names.feature_server), FEATURE_SERVER_PORT, context=ctx, timeout=30)
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
    finally:
        conn.close()
    try:
        return resp.status, json.loads(raw) if raw else None
    except ValueError:
        return resp.status, raw.decode(errors="replace")


def _read(st: Stack, token: str | None) -> tuple[int, Any]:
    return call(
        st,
        "POST",
        "/get-online-features",
        {"features": feature_repo.FEATURE_REFS, "entities": {"driver_id": feature_repo.DRIVERS[:2]}},
        token,
    )


def _write(st: Stack, token: str | None) -> tuple[int, Any]:
    now = dt.datetime.now(dt.UTC).isoformat()
    return call(
        st,
        "POST",
        "/write-to-online-store",
        {
            "feature_view_name": "driver_hourly_stats",
            "df": {
                "driver_id": [feature_repo.DRIVERS[0]],
                "event_timestamp": [now],
                "created": [now],
                "conv_rate": [0.5],
                "acc_rate": [0.5],
                "avg_daily_trips": [7],
                "city": ["x"],
            },
        },
        token,
    )


@pytest.fixture(scope="module")
def stack(control_plane, kube_api):
    from kubernetes import client

    ns = f"authz-{uuid.uuid4().hex[:6]}"
    client.CoreV1Api(kube_api).create_namespace({"metadata": {"name": ns}})
    workdir = Path(tempfile.mkdtemp(prefix="authz-", dir="/var/tmp"))
    grant = None
    with RedisServer(password=uuid.uuid4().hex) as redis:
        st = Stack(control_plane, kube_api, ns, workdir, redis)
        try:
            for sa in (st.names.service_account, NOTEBOOK_SA, INTRUDER_SA):
                st.cluster.service_account(sa)
            st.cluster.apply([o for o in st.rendered.objects if o["kind"] in ("Role", "RoleBinding")])
            grant = st.cluster.grant_token_review(st.names.service_account)
            st.run_job(next(o for o in st.rendered.objects if o["kind"] == "Job"))
            st.run_job(st.runner.find("CronJob"))
            # both servers start at once (neither needs the other), then each must get ready
            server = st.start_server(st.names.feature_server, "feature-server")
            registry = st.start_server(st.names.registry_server, "registry-server")
            st.server, st.registry_server = st.ready(server), st.ready(registry)
            yield st
        finally:
            st.runner.close()
            if grant:
                client.RbacAuthorizationV1Api(kube_api).delete_cluster_role_binding(grant)
                client.RbacAuthorizationV1Api(kube_api).delete_cluster_role(grant)
            client.CoreV1Api(kube_api).delete_namespace(ns)
            shutil.rmtree(workdir, ignore_errors=True)


# --------------------------------------------------------------------------- tests


def test_no_token_is_refused(stack: Stack):
    status, body = _read(stack, None)
    assert status == 401, body


def test_token_of_an_unauthorized_service_account_is_refused(stack: Stack):
    status, body = _read(stack, stack.caller(INTRUDER_SA))
    assert status in (401, 403), body


def test_forged_unsigned_token_naming_the_store_account_is_refused(stack: Stack):
    """Feast 0.67 alone decodes the JWT without verifying it; the rendered shim asks the API server."""
    forged = _forged_token(stack.cluster.ns, stack.names.service_account)
    for attempt in (_read, _write):
        status, body = attempt(stack, forged)
        assert status in (401, 403), f"{attempt.__name__}: {status} {body}"


def test_notebook_account_reads_features_but_cannot_write(stack: Stack):
    token = stack.caller(NOTEBOOK_SA)
    status, body = _read(stack, token)
    assert status == 200, body
    got = dict(zip(body["metadata"]["feature_names"], body["results"], strict=True))
    first = feature_repo.DRIVERS[0]
    assert got["conv_rate"]["values"][0] == pytest.approx(stack.expected[first]["conv_rate"])
    status, body = _write(stack, token)
    assert status == 403, body


def _legacy_token(st: Stack, sa: str) -> str:
    """The ServiceAccount's token Secret (Kubernetes 1.20's token controller; no audience, no expiry)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for secret in st.cluster.core.list_namespaced_secret(st.cluster.ns).items:
            ann = secret.metadata.annotations or {}
            if (
                secret.type == "kubernetes.io/service-account-token"
                and ann.get("kubernetes.io/service-account.name") == sa
            ):
                return base64.b64decode(secret.data["token"]).decode()
        time.sleep(0.3)
    raise AssertionError(f"no token Secret for {sa}")


def test_api_server_tokens_are_refused(stack: Stack):
    """The attack's premise: a caller sends a token the API server accepts (the pod's default
    ServiceAccount token, a TokenRequest without audiences, a legacy token Secret). Whoever receives it
    (a pod carrying the Service's labels) could replay it at the API server: the store refuses them all,
    for reads and writes, on the feature server and the registry server."""
    import grpc

    tokens = {
        "default-audience notebook": stack.cluster.token(NOTEBOOK_SA),
        "default-audience store account": stack.cluster.token(stack.names.service_account),
        "legacy Secret of default-editor": _legacy_token(stack, NOTEBOOK_SA),
    }
    for who, token in tokens.items():
        for attempt in (_read, _write):
            status, body = attempt(stack, token)
            assert status in (401, 403), f"{who} {attempt.__name__}: {status} {body}"
        with pytest.raises(grpc.RpcError) as err:
            _list_views(stack, token)
        assert _refused(err.value), (who, err.value)
        assert _api_status(stack, token) != 401, f"{who}: the API server should accept it (the replay risk)"


def test_tokens_for_another_store_are_refused(stack: Stack):
    """Same ServiceAccount, audience of another store (same namespace, or same name elsewhere)."""
    for audience in (
        f"featurestore.kubeflow.org/{stack.cluster.ns}/other",
        f"featurestore.kubeflow.org/elsewhere/{FS_NAME}",
        "featurestore.kubeflow.org",
    ):
        status, body = _read(stack, stack.cluster.token(NOTEBOOK_SA, audience))
        assert status in (401, 403), f"{audience}: {status} {body}"


def _api_status(st: Stack, token: str) -> int:
    """HTTP status of a real API call made with ``token`` (401: the API server does not accept it)."""
    import urllib.error

    try:
        st.cp.request("GET", f"/api/v1/namespaces/{st.cluster.ns}/configmaps", token=token)
    except urllib.error.HTTPError as err:
        return err.code
    return 200


def test_store_tokens_are_useless_at_the_api_server(stack: Stack):
    """What a server receives (a store-audience token) is refused by the API server when replayed."""
    for sa in (NOTEBOOK_SA, stack.names.service_account):
        token = stack.caller(sa)
        assert _read(stack, token)[0] == 200
        assert _api_status(stack, token) == 401, sa


def test_store_account_writes(stack: Stack):
    status, body = _write(stack, stack.caller(stack.names.service_account))
    assert status == 200, body


def test_https_only_verifies_against_the_client_config_ca(stack: Stack):
    token = stack.caller(NOTEBOOK_SA)
    with pytest.raises(ssl.SSLCertVerificationError):
        call(stack, "POST", "/get-online-features", {"features": [], "entities": {}}, token, ca=None)
    # plain HTTP on the same port gets no features
    conn = http.client.HTTPConnection("127.0.0.1", FEATURE_SERVER_PORT, timeout=10)
    try:
        conn.request("GET", "/health")
        assert conn.getresponse().status != 200
    except (ConnectionError, http.client.HTTPException):
        pass
    finally:
        conn.close()
    client_yaml = stack.rendered.client_yaml
    assert f"https://{stack.names.svc_host(stack.names.feature_server)}:{FEATURE_SERVER_PORT}" in client_yaml
    assert "auth:\n  type: kubernetes" in client_yaml


def _list_views(st: Stack, token: str | None) -> list[str]:
    from feast.protos.feast.registry import RegistryServer_pb2

    reply = st.registry(
        "ListFeatureViews", RegistryServer_pb2.ListFeatureViewsRequest(project=feature_repo.PROJECT), token
    )
    return sorted(v.spec.name for v in reply.feature_views)


def _delete_view(st: Stack, token: str | None) -> None:
    from feast.protos.feast.registry import RegistryServer_pb2

    request = RegistryServer_pb2.DeleteFeatureViewRequest(
        name="driver_rating", project=feature_repo.PROJECT, commit=True
    )
    st.registry("DeleteFeatureView", request, token)


def _refused(err: Any) -> bool:
    """Feast's gRPC auth interceptor raises before the handler runs, which gRPC reports as UNKNOWN
    "Error in service handler!"; a handler's permission check gives PERMISSION_DENIED."""
    import grpc

    code = err.code()
    return code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED) or (
        code == grpc.StatusCode.UNKNOWN and err.details() == "Error in service handler!"
    )


def test_registry_server_refuses_missing_unauthorized_and_forged_tokens(stack: Stack):
    import grpc

    forged = _forged_token(stack.cluster.ns, stack.names.service_account)
    for who, token in [("no token", None), ("intruder", stack.caller(INTRUDER_SA)), ("forged", forged)]:
        for attempt in (_list_views, _delete_view):
            with pytest.raises(grpc.RpcError) as err:
                attempt(stack, token)
            assert _refused(err.value), (who, attempt.__name__, err.value)
    # nothing was deleted
    assert "driver_rating" in _list_views(stack, stack.caller(stack.names.service_account))


def test_registry_server_lets_notebooks_read_but_not_delete(stack: Stack):
    import grpc

    token = stack.caller(NOTEBOOK_SA)
    assert {"driver_hourly_stats", "driver_rating"} <= set(_list_views(stack, token))
    with pytest.raises(grpc.RpcError) as err:
        _delete_view(stack, token)
    assert _refused(err.value), err.value
    assert "driver_rating" in _list_views(stack, token)


def test_no_secret_in_any_argv(stack: Stack):
    """The Redis password and TLS key reach processes through env/files only."""
    argv = " ".join(
        open(f"/proc/{p}/cmdline").read().replace("\0", " ")
        for p in os.listdir("/proc")
        if p.isdigit() and _same_group(int(p), stack.server.pid)
    )
    assert stack.secrets[stack.names.online_secret]["password"] not in argv
    assert "PRIVATE KEY" not in argv


def _same_group(pid: int, pgid: int) -> bool:
    try:
        return os.getpgid(pid) == pgid
    except OSError:
        return False


NOTEBOOK_SCRIPT = r"""
import json, sys
from feast import FeatureStore
store = FeatureStore()  # FEAST_FS_YAML_FILE_PATH from the PodDefault
if sys.argv[3] == "store-token":  # the snippet of docs/security/tokens-and-tls.md
    import feast.permissions.client.kubernetes_auth_client_manager as k8s_auth
    token_path = store.config.auth_config.token_path  # the store-audience token the PodDefault mounts
    k8s_auth.KubernetesAuthClientManager._read_token_from_file = lambda self: open(token_path).read().strip()
out = {"views": sorted(fv.name for fv in store.list_feature_views())}
rows = [{"driver_id": d} for d in json.loads(sys.argv[1])]
out["online"] = store.get_online_features(features=json.loads(sys.argv[2]), entity_rows=rows).to_dict()
print("RESULT " + json.dumps(out, default=str))
"""


def _notebook(st: Stack, sa: str, token: str = "store-token") -> Any:
    """A notebook pod as the PodDefault webhook mutates it, running as ``sa`` with its token mounted
    (the kubelet's default) and the Service names resolving to 127.0.0.1 (hosts file)."""
    import sys

    pd = st.runner.find("PodDefault")["spec"]
    container = {
        "name": "notebook",
        "command": [sys.executable, "-c", NOTEBOOK_SCRIPT],
        "args": [json.dumps(feature_repo.DRIVERS[:2]), json.dumps(feature_repo.FEATURE_REFS), token],
        "env": [{"name": "HOME", "value": "/tmp"}, *pd.get("env", [])],
        "volumeMounts": pd.get("volumeMounts", []),
    }
    pod_obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "notebook-0", "namespace": st.cluster.ns, "labels": dict(pd["selector"]["matchLabels"])},
        "spec": {"serviceAccountName": sa, "containers": [container], "volumes": pd.get("volumes", [])},
    }
    hosts = st.workdir / "hosts"
    services = [st.names.svc_host(n) for n in (st.names.feature_server, st.names.registry_server)]
    hosts.write_text(Path("/etc/hosts").read_text() + "\n127.0.0.1 " + " ".join(services) + "\n")
    pod = st.runner.pod(pod_obj)
    mounts = [*st.sa_mount(pod_obj), Mount(str(hosts), "/etc/hosts", read_only=True)]
    return pod.run(pod.prepare(extra_mounts=mounts), timeout=180)


def test_notebook_feature_store_just_works_with_its_own_token(stack: Stack):
    res = _notebook(stack, NOTEBOOK_SA)
    assert res.returncode == 0, f"notebook failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    out = json.loads(next(ln for ln in res.stdout.splitlines() if ln.startswith("RESULT "))[len("RESULT ") :])
    assert {"driver_hourly_stats", "driver_rating"} <= set(out["views"])
    second = feature_repo.DRIVERS[1]  # (DRIVERS[0] may carry test_store_account_writes' value)
    assert out["online"]["conv_rate"][1] == pytest.approx(stack.expected[second]["conv_rate"])


def test_notebook_sending_its_api_server_token_gets_nothing(stack: Stack):
    """Stock Feast 0.67 sends the pod's default ServiceAccount token (API server audience): this
    store refuses it, so no caller is ever asked to hand a replayable token to the server."""
    res = _notebook(stack, NOTEBOOK_SA, token="default")
    assert res.returncode != 0 and "RESULT " not in res.stdout


def test_notebook_of_an_unauthorized_account_gets_nothing(stack: Stack):
    res = _notebook(stack, INTRUDER_SA)
    assert res.returncode != 0 and "RESULT " not in res.stdout


def test_authorized_read_latency(stack: Stack):
    """Figures, not a benchmark: 50 sequential authorized reads over HTTPS on loopback (new TLS
    connection each). The shim caches a reviewed token briefly, so only the first read pays the
    TokenReview + RoleBinding lookup."""
    token = stack.caller(NOTEBOOK_SA)

    def timed(request: Any) -> tuple[float, float]:
        times = []
        for _ in range(50):
            start = time.perf_counter()
            status, body = request()
            times.append(time.perf_counter() - start)
            assert status == 200, body
        times.sort()
        return times[len(times) // 2], times[int(len(times) * 0.99) - 1]

    health = timed(lambda: call(stack, "GET", "/health", None, None))
    read = timed(lambda: _read(stack, token))
    print(
        f"\n[authz] HTTPS GET /health (no auth): p50 {health[0] * 1000:.1f} ms, p99 {health[1] * 1000:.1f} ms; "
        f"authorized get-online-features: p50 {read[0] * 1000:.1f} ms, p99 {read[1] * 1000:.1f} ms"
    )
    assert read[0] < 1.0


def test_stock_feast_would_accept_the_forged_token(stack: Stack):
    """Why the shim exists: the same server run as plain `feast` (Feast 0.67's own Kubernetes token
    parser) serves a forged, unsigned token naming the store's ServiceAccount. Runs last: it stops
    the rendered server to take its port."""
    stack.server.stop()
    stock = stack.ready(stack.start_server(stack.names.feature_server, "feature-server", command=["feast"]))
    try:
        forged = _forged_token(stack.cluster.ns, stack.names.service_account)
        status, body = _read(stack, forged)
        assert status == 200, f"stock Feast refused the forged token ({status} {body}): is the shim still needed?"
    finally:
        stock.stop()
