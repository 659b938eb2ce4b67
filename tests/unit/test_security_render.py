"""Data-plane security of the rendered objects: every component fenced (policies first), rotation
hashes, hardening defaults, authz/TLS wiring, and the serving-TLS certificate authority."""

from __future__ import annotations

import datetime as dt
import json
import ssl
import tempfile
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from featurestore_operator.api import OperatorConfig, parse_featurestore, resolve
from featurestore_operator.backends import tls as tls_backend
from featurestore_operator.backends.planned import planned_endpoints
from featurestore_operator.render import ApiVersions, RepoSource, SecretHashes, render
from featurestore_operator.render.names import COMPONENT_LABEL, Names
from featurestore_operator.render.policies import fenced_components
from featurestore_operator.render.rotation import SECRETS_HASH_ANNOTATION, consumed_secrets, secret_names

ROOT = Path(__file__).resolve().parents[2]
CONFIG = OperatorConfig(gcp_project="my-gcp-project", gcp_region="us-central1")
UID = "0b5e9a52-8c1e-4a43-9b2e-5c0d7f6b1a11"
WORKLOADS = ("Deployment", "StatefulSet", "Job", "CronJob")


def _fs(**spec):
    doc = {
        "apiVersion": "featurestore.kubeflow.org/v1alpha1",
        "kind": "FeatureStore",
        "metadata": {"name": "sec", "namespace": "team", "uid": UID},
        "spec": {
            "project": "p",
            "provider": "local",
            "featureRepo": {"git": {"url": "https://example.com/r.git", "secretRef": {"name": "git-creds"}}},
            **spec,
        },
    }
    fs = parse_featurestore(doc)
    return fs.model_copy(update={"spec": resolve(fs.spec, CONFIG)})


EVERYTHING = {
    "offlineServer": {"enabled": True},
    "ui": {"enabled": True},
    "registry": {"server": {"enabled": True}},
    "featureServer": {"metrics": {"enabled": True}},
}


def _stores():
    examples = []
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        if doc.get("kind") != "FeatureStore":  # examples/operator-config.yaml
            continue
        doc["metadata"]["uid"] = UID
        fs = parse_featurestore(doc)
        examples.append(pytest.param(fs.model_copy(update={"spec": resolve(fs.spec, CONFIG)}), id=path.stem))
    return [
        *examples,
        pytest.param(_fs(**EVERYTHING), id="all-servers"),
        pytest.param(_fs(**EVERYTHING, authz={"type": "kubernetes"}, tls={"enabled": True}), id="all-secure"),
    ]


def _render(fs, *, istio=True, secrets=None, versions=None):
    config = CONFIG.model_copy(update={"istio": istio})
    return render(fs, planned_endpoints(fs), config, versions, RepoSource("a1b2c3d4e5f60718"), secrets)


def _pods(objects):
    for obj in objects:
        if obj["kind"] in ("Deployment", "StatefulSet", "Job"):
            yield obj, obj["spec"]["template"]
        elif obj["kind"] == "CronJob":
            yield obj, obj["spec"]["jobTemplate"]["spec"]["template"]


def _selects(selector: dict, labels: dict) -> bool:
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    return all(labels.get(e["key"]) in e["values"] for e in selector.get("matchExpressions") or [])


@pytest.mark.parametrize("fs", _stores())
@pytest.mark.parametrize("istio", [True, False])
def test_every_service_is_fenced_and_policies_come_first(fs, istio):
    objects = _render(fs, istio=istio).objects
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    for svc in (o for o in objects if o["kind"] == "Service"):
        pod_labels = next(
            t["metadata"]["labels"]
            for w, t in _pods(objects)
            if w["metadata"]["labels"][COMPONENT_LABEL] == svc["metadata"]["labels"][COMPONENT_LABEL]
        )
        fences = [p for p in policies if _selects(p["spec"]["podSelector"], pod_labels)]
        assert fences, f"Service {svc['metadata']['name']} has no NetworkPolicy selecting its pods"
        admitted = {p["port"] for f in fences for rule in f["spec"]["ingress"] for p in rule.get("ports") or []}
        assert {p["port"] for p in svc["spec"]["ports"]} <= admitted
        if istio and svc["metadata"]["labels"][COMPONENT_LABEL] != "online-store":
            assert any(
                o["kind"] == "AuthorizationPolicy" and o["metadata"]["name"] == svc["metadata"]["name"] for o in objects
            )
    kinds = [o["kind"] for o in objects]
    last_policy = max(i for i, k in enumerate(kinds) if k in ("NetworkPolicy", "AuthorizationPolicy"))
    first_workload = min((i for i, k in enumerate(kinds) if k in WORKLOADS), default=len(kinds))
    assert last_policy < first_workload, "policies must be applied before the workloads they protect"


def test_a_new_component_without_a_policy_fails_the_fence_table():
    """The table in render.policies is the list of what must be fenced: every Service component is in it."""
    fs = _fs(**EVERYTHING)
    components = {o["metadata"]["labels"][COMPONENT_LABEL] for o in _render(fs).objects if o["kind"] == "Service"}
    assert components <= set(fenced_components(fs)), components - set(fenced_components(fs))


def test_redis_admits_only_this_stores_feast_pods():
    fs = _fs(**EVERYTHING)
    objects = _render(fs).objects
    [policy] = [o for o in objects if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == Names(fs).redis]
    [rule] = policy["spec"]["ingress"]
    [peer] = rule["from"]
    assert set(peer) == {"podSelector"}, "no namespaceSelector: other namespaces never reach Redis"
    feast_pods = [t["metadata"]["labels"] for w, t in _pods(objects) if w["kind"] != "StatefulSet"]
    assert feast_pods and all(_selects(peer["podSelector"], labels) for labels in feast_pods)
    other_store = {**feast_pods[0], "app.kubernetes.io/instance": "other", "featurestore.kubeflow.org/name": "other"}
    assert not _selects(peer["podSelector"], other_store)
    assert not _selects(peer["podSelector"], {"app": "notebook"})


def test_changing_the_redis_secret_rolls_its_consumers_exactly_once():
    fs = _fs()
    names = Names(fs)
    before = SecretHashes({names.online_secret: "aaaa", "git-creds": "gggg"})
    after = SecretHashes({names.online_secret: "bbbb", "git-creds": "gggg"})

    def digests(hashes):
        return {
            (w["kind"], w["metadata"]["name"]): t["metadata"].get("annotations", {}).get(SECRETS_HASH_ANNOTATION)
            for w, t in _pods(_render(fs, secrets=hashes).objects)
        }

    first, again, rotated = digests(before), digests(before), digests(after)
    assert first == again, "an unchanged Secret must not roll anything"
    changed = {k for k in first if first[k] != rotated[k]}
    assert changed == {
        ("Deployment", names.feature_server),
        ("Deployment", names.registry_server),
        ("StatefulSet", names.redis),
        ("CronJob", names.materialize),
    }
    assert all(first[k] for k in changed)
    # A Job's template is immutable and it runs once: never annotated.
    [job] = [k for k in first if k[0] == "Job"]
    assert first[job] is None
    # Only digests reach the objects, never the hashes' source data.
    assert "aaaa" not in json.dumps(_render(fs, secrets=before).objects)


@pytest.mark.parametrize("fs", _stores())
def test_the_secrets_reconcile_reads_are_exactly_those_the_pods_consume(fs):
    """secret_names() tells reconcile which Secrets to hash; it must match what the rendered pods use."""
    objects = _render(fs).objects
    used = set().union(*(consumed_secrets(t["spec"]) for _, t in _pods(objects)))
    assert secret_names(fs, planned_endpoints(fs)) == used


def test_changing_the_git_credentials_rolls_nothing_that_does_not_use_them():
    fs = _fs()
    names = Names(fs)
    a = {
        (w["kind"], w["metadata"]["name"]): t["metadata"].get("annotations", {})
        for w, t in _pods(_render(fs, secrets=SecretHashes({names.online_secret: "x", "git-creds": "1"})).objects)
    }
    b = {
        (w["kind"], w["metadata"]["name"]): t["metadata"].get("annotations", {})
        for w, t in _pods(_render(fs, secrets=SecretHashes({names.online_secret: "x", "git-creds": "2"})).objects)
    }
    assert a == b


@pytest.mark.parametrize("fs", _stores())
def test_hardening_defaults_on_every_pod(fs):
    objects = _render(fs).objects
    for workload, template in _pods(objects):
        pod = template["spec"]
        what = f"{workload['kind']} {workload['metadata']['name']}"
        for c in [*pod.get("initContainers", []), *pod["containers"]]:
            res = c.get("resources") or {}
            assert res.get("requests", {}).get("cpu") and res.get("requests", {}).get("memory"), f"{what}/{c['name']}"
            assert res.get("limits", {}).get("memory"), f"{what}/{c['name']}: no memory limit"
            assert c["securityContext"]["readOnlyRootFilesystem"] is True
            argv = " ".join([*c.get("command", []), *c.get("args", [])])
            expanded = [e["name"] for e in c.get("env", []) if f"$({e['name']})" in argv]
            assert not expanded, f"{what}/{c['name']}: the kubelet puts {expanded} into argv (readable in /proc)"
        for vol in pod.get("volumes", []):
            if "emptyDir" in vol:
                assert vol["emptyDir"].get("sizeLimit"), f"{what}: emptyDir {vol['name']} unbounded"
        server_with_k8s_auth = workload["kind"] == "Deployment" and fs.spec.authz.type.value == "kubernetes"
        wants_token = server_with_k8s_auth or bool(fs.spec.gcp.service_account)
        assert pod["automountServiceAccountToken"] is wants_token, what
    for redis in (o for o in objects if o["kind"] == "StatefulSet"):
        pod = redis["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == Names(fs).redis != Names(fs).service_account
        assert any(o["kind"] == "ServiceAccount" and o["metadata"]["name"] == Names(fs).redis for o in objects)


def test_kubernetes_authz_renders_roles_feast_reads_and_client_auth():
    fs = _fs(
        authz={"type": "kubernetes", "readerServiceAccounts": ["default-editor", "ci"]},
        kubeflow={"allowedNamespaces": ["kserve"]},
    )
    out = _render(fs)
    bindings = {o["metadata"]["name"]: o for o in out.objects if o["kind"] == "RoleBinding"}
    reader = bindings["sec-feast-reader"]
    assert {(s["namespace"], s["name"]) for s in reader["subjects"]} == {
        ("team", "default-editor"),
        ("team", "ci"),
        ("kserve", "default-editor"),
    }
    assert [(s["namespace"], s["name"]) for s in bindings["sec-feast-writer"]["subjects"]] == [("team", "sec-feast")]
    roles = {o["metadata"]["name"]: o for o in out.objects if o["kind"] == "Role"}
    # The reader/writer Roles carry names Feast matches; what they grant in Kubernetes is minimal.
    for name in ("sec-feast-reader", "sec-feast-writer"):
        assert roles[name]["rules"] == [
            {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["sec-feast-client"], "verbs": ["get"]}
        ]
    assert yaml.safe_load(out.server_yaml)["auth"] == {"type": "kubernetes"}
    token = "/var/run/secrets/featurestore.kubeflow.org/sec/token"
    assert yaml.safe_load(out.client_yaml)["auth"] == {"type": "kubernetes", "token_path": token}
    # callers' tokens are bound to this store: servers review them for its audience, notebooks mount one
    audience = "featurestore.kubeflow.org/team/sec"
    for d in (o for o in out.objects if o["kind"] == "Deployment"):
        env = {e["name"]: e.get("value") for e in d["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["FSO_FEAST_AUDIENCE"] == audience, d["metadata"]["name"]
    pd = next(o for o in out.objects if o["kind"] == "PodDefault")["spec"]
    [projected] = [v["projected"] for v in pd["volumes"] if "projected" in v]
    assert projected == {
        "sources": [{"serviceAccountToken": {"audience": audience, "expirationSeconds": 600, "path": "token"}}]
    }
    assert {"name": "feast-sec-token", "mountPath": token.rsplit("/", 1)[0], "readOnly": True} in pd["volumeMounts"]
    cm = next(o for o in out.objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "sec-feast-config")
    perms = cm["data"]["featurestore_operator_permissions.py"]
    assert '"sec-feast-reader", "sec-feast-writer"' in perms and "ALL_ACTIONS" in perms
    job = next(o for o in out.objects if o["kind"] == "Job")
    assert [c["name"] for c in job["spec"]["template"]["spec"]["initContainers"]] == ["fetch-repo", "add-permissions"]


def test_oidc_client_config_uses_the_namespace_secret_or_the_callers_token():
    issuer = {"issuer": "https://idp.example.com/realms/kf", "clientId": "feast"}
    own = _render(_fs(authz={"type": "oidc", "oidc": issuer}))
    assert yaml.safe_load(own.server_yaml)["auth"] == {
        "type": "oidc",
        "client_id": "feast",
        "auth_discovery_url": "https://idp.example.com/realms/kf/.well-known/openid-configuration",
        "audience": "feast",
        "issuer": "https://idp.example.com/realms/kf",
    }
    assert yaml.safe_load(own.client_yaml)["auth"] == {"type": "oidc", "token_env_var": "FEAST_OIDC_TOKEN"}
    shared = _render(_fs(authz={"type": "oidc", "oidc": {**issuer, "secretRef": {"name": "oidc"}}}))
    assert yaml.safe_load(shared.client_yaml)["auth"]["client_secret"] == "${FEAST_SEC_OIDC_CLIENT_SECRET}"
    pd = next(o for o in shared.objects if o["kind"] == "PodDefault")
    assert {
        "name": "FEAST_SEC_OIDC_CLIENT_SECRET",  # per store: several stores' PodDefaults compose
        "valueFrom": {"secretKeyRef": {"name": "oidc", "key": "client_secret"}},
    } in pd["spec"]["env"]
    assert not any(
        o["kind"] in ("Role", "RoleBinding") and "feast-reader" in o["metadata"]["name"] for o in shared.objects
    )


def test_tls_waits_for_its_material_and_then_serves_https_only():
    from featurestore_operator.render import Endpoints

    fs = _fs(tls={"enabled": True}, **EVERYTHING)
    planned = planned_endpoints(fs)
    pending = render(fs, Endpoints(online=planned.online, offline=planned.offline), CONFIG)
    assert not any(o["kind"] == "Deployment" for o in pending.objects), "no server without its certificate"
    out = _render(fs)
    client = yaml.safe_load(out.client_yaml)
    assert (
        client["online_store"]["path"].startswith("https://")
        and client["online_store"]["cert"] == "/etc/feast/sec/ca.crt"
    )
    assert client["registry"]["is_tls"] is True and client["offline_store"]["scheme"] == "https"
    for d in (o for o in out.objects if o["kind"] == "Deployment"):
        c = d["spec"]["template"]["spec"]["containers"][0]
        assert c["args"][-4:] == ["--key", "/etc/feast/tls/tls.key", "--cert", "/etc/feast/tls/tls.crt"]
        tls_vol = next(v for v in d["spec"]["template"]["spec"]["volumes"] if v["name"] == "serving-tls")
        assert [i["key"] for i in tls_vol["secret"]["items"]] == ["tls.crt", "tls.key"], "the CA key is never mounted"


def test_serving_ca_issues_a_verifiable_certificate_and_keeps_it():
    fs = _fs(tls={"enabled": True})
    now = dt.datetime.now(dt.UTC)
    first = tls_backend.ensure(fs, None, now)
    assert tls_backend.ensure(fs, first.data, now).data == first.data, "a resync must not re-issue"
    # a TLS client with the CA verifies the server certificate for every Service name
    cert = x509.load_pem_x509_certificate(first.data["tls.crt"].encode())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert "sec-feature-server.team.svc.cluster.local" in sans and "sec-registry-server.team.svc" in sans
    with tempfile.TemporaryDirectory() as d:
        for k in ("tls.crt", "tls.key", "ca.crt"):
            Path(d, k).write_text(first.data[k])
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.load_cert_chain(Path(d, "tls.crt"), Path(d, "tls.key"))
        client = ssl.create_default_context(cafile=str(Path(d, "ca.crt")))
        _handshake(server, client, "sec-feature-server.team.svc.cluster.local")
        with pytest.raises(ssl.SSLCertVerificationError):
            _handshake(server, client, "evil.team.svc.cluster.local")
    # before expiry a next certificate is staged and its CA joins ca.crt, while the old one serves
    staging = now + tls_backend.CERT_VALIDITY - tls_backend.STAGE_BEFORE + dt.timedelta(days=1)
    staged = tls_backend.ensure(fs, first.data, staging)
    assert staged.data["tls.crt"] == first.data["tls.crt"] and staged.data["ca.crt"].startswith(first.data["ca.crt"])
    assert staged.data["ca.crt"].count("BEGIN CERTIFICATE") == 2 and "next.crt" in staged.data
    assert tls_backend.ensure(fs, staged.data, staging).data == staged.data, "a resync must not re-stage"
    # near expiry the staged certificate serves: clients have trusted its CA for a month already
    later = now + tls_backend.CERT_VALIDITY - dt.timedelta(days=1)
    renewed = tls_backend.ensure(fs, staged.data, later)
    assert renewed.data["tls.crt"] == staged.data["next.crt"] and "next.crt" not in renewed.data
    assert renewed.data["ca.crt"] == staged.data["ca.crt"]
    # material for another store's names is replaced
    other = tls_backend.ensure(
        _fs(tls={"enabled": True}).model_copy(update={"metadata": fs.metadata.model_copy(update={"name": "other"})}),
        first.data,
        now,
    )
    assert other.data["tls.crt"] != first.data["tls.crt"]


def _handshake(server: ssl.SSLContext, client: ssl.SSLContext, hostname: str) -> None:
    """An in-memory TLS handshake (no sockets)."""
    s_in, s_out, c_in, c_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    srv = server.wrap_bio(s_in, s_out, server_side=True)
    cli = client.wrap_bio(c_in, c_out, server_hostname=hostname)
    for _ in range(10):
        done = True
        for side, out_bio, peer_in in ((cli, c_out, s_in), (srv, s_out, c_in)):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                done = False
            data = out_bio.read()
            if data:
                peer_in.write(data)
        if done:
            return
    raise AssertionError("handshake did not finish")


def test_legacy_cluster_keeps_network_policies_without_istio_crd():
    fs = _fs(**EVERYTHING)
    objects = _render(fs, versions=ApiVersions(optional_kinds=frozenset())).objects
    assert not any(o["kind"] == "AuthorizationPolicy" for o in objects)
    assert {o["metadata"]["labels"][COMPONENT_LABEL] for o in objects if o["kind"] == "NetworkPolicy"} == {
        "network",  # the store's own fence (render/policies.py store_policy)
        *fenced_components(fs),
    }
