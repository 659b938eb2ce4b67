"""spec.tls with the admin's cert-manager issuer (FSO_TLS_ISSUER): the Certificate rendered, the servers
held until cert-manager has issued the Secret and then mounting it, clients given its ca.crt, and a
condition naming what to install when cert-manager's CRDs are missing. The same objects on the real
API server (with cert-manager's real CRD): tests/controlplane/test_cert_manager.py."""

from __future__ import annotations

import asyncio
import datetime as dt

from featurestore_operator.api import OperatorConfig, parse_featurestore, resolve
from featurestore_operator.backends import rotation as rotation_backend
from featurestore_operator.backends import tls as tls_backend
from featurestore_operator.backends.base import BackendContext
from featurestore_operator.backends.planned import planned_endpoints
from featurestore_operator.render import ApiVersions, Endpoints, render
from featurestore_operator.render import tls as render_tls

NOW = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
ISSUER = OperatorConfig(tls_issuer="ClusterIssuer/team-ca")
WITH_CRD = ApiVersions(optional_kinds=frozenset({"PodDefault", "AuthorizationPolicy", "Certificate"}))
WITHOUT_CRD = ApiVersions()
ISSUED = {"tls.crt": "CERT", "tls.key": "KEY", "ca.crt": "ISSUER CA"}


def _fs(tls: bool = True):
    doc = {
        "apiVersion": "featurestore.kubeflow.org/v1alpha1",
        "kind": "FeatureStore",
        "metadata": {"name": "sec", "namespace": "team", "uid": "u1"},
        "spec": {"project": "p", "provider": "local", "tls": {"enabled": tls}},
    }
    fs = parse_featurestore(doc)
    return fs.model_copy(update={"spec": resolve(fs.spec, ISSUER)})


def _inputs(fs, secrets: dict[str, dict[str, str]]):
    """(TLS material, endpoints with serving TLS, Secret hashes) as the secrets step computes them."""

    async def get_secret(name: str) -> dict[str, str] | None:
        return secrets.get(name)

    ctx = BackendContext(config=ISSUER, get_secret=get_secret)
    material = asyncio.run(tls_backend.ensure_serving(fs, ctx, NOW))
    planned = planned_endpoints(fs)
    endpoints = Endpoints(online=planned.online, offline=planned.offline, serving_tls=material.serving)
    return material, endpoints, asyncio.run(rotation_backend.secret_hashes(fs, endpoints, ctx))


def _kinds(objects) -> dict[tuple[str, str], dict]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


def test_certificate_names_every_service_the_issuer_and_the_secret():
    fs = _fs()
    objects = _kinds(render(fs, planned_endpoints(fs), ISSUER, WITH_CRD).objects)
    cert = objects[("Certificate", "sec-feast-servers")]
    assert cert["apiVersion"] == "cert-manager.io/v1"
    assert cert["spec"]["issuerRef"] == {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": "team-ca"}
    assert cert["spec"]["secretName"] == "sec-feast-cert"
    assert "sec-feature-server.team.svc.cluster.local" in cert["spec"]["dnsNames"]
    assert sorted(cert["spec"]["dnsNames"]) == sorted(render_tls.dns_names(fs))
    assert cert["metadata"]["ownerReferences"][0]["uid"] == "u1"
    # no issuer configured, TLS off, or no CRD: no Certificate
    for fs_, config, versions in (
        (fs, OperatorConfig(), WITH_CRD),
        (_fs(False), ISSUER, WITH_CRD),
        (fs, ISSUER, WITHOUT_CRD),
    ):
        assert not [
            o for o in render(fs_, planned_endpoints(fs_), config, versions).objects if o["kind"] == "Certificate"
        ]


def test_servers_wait_for_the_issued_secret_then_mount_it_and_clients_get_its_ca():
    fs = _fs()
    material, endpoints, _ = _inputs(fs, {})
    assert material.data is None, "the operator must not write a Secret cert-manager owns"
    assert render_tls.problem(fs, ISSUER, WITH_CRD, endpoints)[0] == "CertificatePending"
    held = _kinds(render(fs, endpoints, ISSUER, WITH_CRD).objects)
    assert ("Deployment", "sec-feature-server") not in held and ("Certificate", "sec-feast-servers") in held

    material, endpoints, hashes = _inputs(fs, {"sec-feast-cert": ISSUED})
    assert material.data is None and render_tls.problem(fs, ISSUER, WITH_CRD, endpoints) is None
    objects = _kinds(render(fs, endpoints, ISSUER, WITH_CRD, secrets=hashes).objects)
    pod = objects[("Deployment", "sec-feature-server")]["spec"]["template"]["spec"]
    assert {
        "name": "serving-tls",
        "secret": {
            "secretName": "sec-feast-cert",
            "defaultMode": 0o440,
            "items": [{"key": "tls.crt", "path": "tls.crt"}, {"key": "tls.key", "path": "tls.key"}],
        },
    } in pod["volumes"]
    assert objects[("ConfigMap", "sec-feast-client")]["data"]["ca.crt"] == "ISSUER CA"

    renewed = _inputs(fs, {"sec-feast-cert": {**ISSUED, "tls.crt": "RENEWED"}})[2]
    assert renewed != hashes, "a renewed certificate must roll the servers"


def test_cert_manager_chosen_but_not_installed_names_what_to_install():
    fs = _fs()
    reason, message = render_tls.problem(fs, ISSUER, WITHOUT_CRD, _inputs(fs, {})[1])
    assert reason == "CertManagerNotInstalled"
    assert "install cert-manager" in message and "cert-manager.io/v1 Certificate" in message
    assert "tls.issuer" in message
