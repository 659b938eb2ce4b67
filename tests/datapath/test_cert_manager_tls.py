"""A real Feast feature server serving HTTPS with the certificate cert-manager issues (spec.tls with
the admin's FSO_TLS_ISSUER): the store is rendered with cert-manager chosen and the Certificate
CRD served, the test plays cert-manager's CA issuer (tests/support/issuer.py) and writes the Secret
the rendered Certificate asks for, then the rendered apply Job, materialization and feature server
run through tests/support/podrunner.py against a real redis-server. A client holding only the client
config's CA (the issuer's ca.crt) reads features over HTTPS; one without it fails verification."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import tempfile
import uuid
from pathlib import Path

import pytest

from tests.support.prerequisites import missing, need_module

need_module("feast", "feast[redis] is needed for the data-path tests", module=True)

from featurestore_operator import render  # noqa: E402
from featurestore_operator.api import FeatureStore, OperatorConfig, resolve  # noqa: E402
from featurestore_operator.backends import tls as tls_backend  # noqa: E402
from featurestore_operator.render import ApiVersions, Endpoints, OfflineEndpoint, OnlineEndpoint, RepoSource, SecretKey  # noqa: E402  # noqa: E402
from featurestore_operator.render.feast_config import FEATURE_SERVER_PORT  # noqa: E402
from featurestore_operator.render.names import Names  # noqa: E402

from tests.support import feature_repo  # noqa: E402
from tests.support.issuer import TestIssuer  # noqa: E402
from tests.support.podrunner import PodRunner, unshare_available  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402

pytestmark = pytest.mark.timeout(600)
if unshare_available():
    missing(f"podrunner: {unshare_available()}", module=True)

CONFIG = OperatorConfig(tls_issuer="ClusterIssuer/test-ca")
VERSIONS = ApiVersions(optional_kinds=frozenset({"Certificate"}))


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1 while verifying the certificate for the Service's DNS name (no cluster DNS here)."""

    def connect(self) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def _read(host: str, ca: str | None) -> tuple[int, dict]:
    ctx = ssl.create_default_context(cadata=ca) if ca else ssl.create_default_context()
    conn = _PinnedHTTPS(host, FEATURE_SERVER_PORT, context=ctx, timeout=30)
    body = {"features": feature_repo.FEATURE_REFS, "entities": {"driver_id": feature_repo.DRIVERS[:2]}}
    try:
        headers = {"Content-Type": "application/json"}
        conn.request("POST", "/get-online-features", body=json.dumps(body), headers=headers)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def test_feature_server_serves_https_with_the_issued_certificate():
    fs = FeatureStore.model_validate(
        {
            "apiVersion": "featurestore.kubeflow.org/v1alpha1",
            "kind": "FeatureStore",
            "metadata": {"name": "issued", "namespace": "team", "uid": str(uuid.uuid4())},
            "spec": {
                "project": feature_repo.PROJECT,
                "provider": "local",
                "featureRepo": {"configMap": {"name": "repo"}},
                "tls": {"enabled": True},
            },
        }
    )
    fs = fs.model_copy(update={"spec": resolve(fs.spec, CONFIG)})
    names = Names(fs)
    workdir = Path(tempfile.mkdtemp(prefix="cert-manager-", dir="/var/tmp"))
    with RedisServer(password=uuid.uuid4().hex) as redis:
        online = OnlineEndpoint(host=redis.host, port=redis.port, password=SecretKey(names.online_secret, "password"))
        offline = OfflineEndpoint(claim=names.data_claim)
        # cert-manager's part: sign what the rendered Certificate asks for, into the Secret it names
        certificate = next(
            o
            for o in render.render(fs, Endpoints(online, offline), CONFIG, VERSIONS).objects
            if o["kind"] == "Certificate"
        )
        issuer = TestIssuer()
        secrets = {certificate["spec"]["secretName"]: issuer.secret_data(certificate["spec"]["dnsNames"])}
        material = tls_backend.issued(fs, CONFIG, secrets[certificate["spec"]["secretName"]])
        assert material.data is None and material.serving is not None
        endpoints = Endpoints(online, offline, serving_tls=material.serving)
        parquet = workdir / "driver_stats.parquet"
        expected = feature_repo.write_driver_stats(parquet)
        rendered = render.render(fs, endpoints, CONFIG, VERSIONS, RepoSource("r1"))
        client_ca = next(
            o for o in rendered.objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == names.client_config
        )["data"]["ca.crt"]
        assert client_ca == issuer.ca_pem
        runner = PodRunner(
            rendered.objects,
            secrets={**secrets, names.online_secret: {"password": redis.password}},
            config_maps={"repo": feature_repo.repo_files(parquet)},
            namespace="team",
        )
        try:
            for job in (runner.find("Job"), runner.find("CronJob")):
                res = runner.pod(job).run_job(timeout=300)
                assert res.returncode == 0, f"{job['kind']} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
            pod = runner.pod(runner.find("Deployment", names.feature_server))
            server = pod.start(pod.prepare("feature-server"))
            host = names.svc_host(names.feature_server)

            def serving() -> bool:
                try:
                    return _read(host, client_ca)[0] == 200
                except OSError:
                    return False

            server.process.wait_ready(serving, 120, what="HTTPS with the issued certificate", interval=0.3)
            status, body = _read(host, client_ca)
            assert status == 200, body
            got = dict(zip(body["metadata"]["feature_names"], body["results"], strict=True))
            first = feature_repo.DRIVERS[0]
            assert got["conv_rate"]["values"][0] == pytest.approx(expected[first]["conv_rate"])
            with pytest.raises(ssl.SSLCertVerificationError):
                _read(host, None)  # the system trust store does not know the issuer
        finally:
            runner.close()
