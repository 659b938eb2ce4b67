"""The test doubles in tests/support are real and faithful.

* RedisServer: a real redis-server, Memorystore-shaped (server-auth TLS + AUTH).
* GcsEmulator: a real fake-gcs-server (preconditions, non-empty bucket delete, gcsfs).
* MemorystoreFake: the Cloud Redis v1 REST surface as the real CloudRedisClient uses it,
  backed by real redis-server processes.
"""

from __future__ import annotations

import os
import socket
import ssl
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

import redis  # noqa: E402
from google.api_core import exceptions as gexc  # noqa: E402
from google.api_core import retry as gretry  # noqa: E402
from google.cloud import redis_v1  # noqa: E402
from google.protobuf import field_mask_pb2  # noqa: E402

from tests.support.gcs_emulator import GcsEmulator  # noqa: E402
from tests.support.memorystore_fake import MemorystoreFake  # noqa: E402
from tests.support.redis_server import (  # noqa: E402
    RedisServer,
    RedisServerError,
    generate_tls_material,
    no_retry,
)

pytestmark = pytest.mark.timeout(120)

FAST_RETRY = gretry.Retry(predicate=gretry.if_transient_error, initial=0.05, maximum=0.2, multiplier=2, timeout=10)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); check /proc state
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


# --------------------------------------------------------------------------- redis-server


def test_redis_tls_and_password_like_memorystore(tmp_path):
    with RedisServer(tls=True, password="s3cret-auth") as srv:
        pid = srv.pid
        assert _pid_alive(pid)
        assert srv.ca_pem.startswith("-----BEGIN CERTIFICATE-----")
        assert Path(srv.ca_path).read_text() == srv.ca_pem

        r = srv.client()
        assert r.set("k", "v") and r.get("k") == b"v"
        # TLS is real: a raw handshake verifying the CA and hostname, then RESP over it.
        ctx = ssl.create_default_context(cafile=srv.ca_path)
        with socket.create_connection((srv.host, srv.port), timeout=3) as raw:
            with ctx.wrap_socket(raw, server_hostname=srv.host) as tls:
                assert tls.version() in ("TLSv1.2", "TLSv1.3")
                tls.sendall(b"AUTH s3cret-auth\r\nPING\r\n")
                time.sleep(0.05)
                assert tls.recv(100).startswith(b"+OK\r\n")

        # Same thing with CA given as data (how a CA from a Secret / serverCaCerts is used).
        r2 = redis.Redis(
            host=srv.host,
            port=srv.port,
            password=srv.password,
            ssl=True,
            ssl_ca_data=srv.ca_pem,
            socket_timeout=3,
            retry=no_retry(),
        )
        assert r2.get("k") == b"v"

        # Without TLS: the TLS-only port does not speak plain RESP.
        plain = redis.Redis(
            host=srv.host,
            port=srv.port,
            password=srv.password,
            socket_timeout=2,
            socket_connect_timeout=2,
            retry=no_retry(),
        )
        with pytest.raises((redis.ConnectionError, redis.TimeoutError)):
            plain.ping()

        # TLS but no password: NOAUTH.
        with pytest.raises(redis.AuthenticationError):
            srv.client(password=None).get("k")
        # Wrong password.
        with pytest.raises(redis.AuthenticationError):
            srv.client(password="wrong").get("k")

        # A CA that did not sign the server cert is refused (server auth is real).
        other = generate_tls_material(tmp_path / "other")
        with pytest.raises(redis.ConnectionError) as ei:
            srv.client(ssl_ca_certs=other.ca_path).ping()
        assert "certificate verify failed" in str(ei.value).lower()

        # Feast-style connection string carries everything redis-py needs.
        cs = srv.feast_connection_string()
        assert cs.startswith(f"{srv.host}:{srv.port},ssl=true,ssl_ca_certs=")
        assert cs.endswith(",password=s3cret-auth")
    assert not _pid_alive(pid)


def test_redis_plain_and_error_reporting():
    with RedisServer() as srv:
        assert srv.client().ping()
        assert srv.url == f"redis://{srv.host}:{srv.port}/0"
    bad = RedisServer(extra_args=["--no-such-option", "1"], startup_timeout=5)
    with pytest.raises(RedisServerError) as ei:
        bad.start()
    assert "no-such-option" in str(ei.value)  # the server's own complaint is in the error
    bad.stop()


def test_redis_config_command_can_be_blocked_like_memorystore():
    with RedisServer(password="pw", disable_config_command=True) as srv:
        with pytest.raises(redis.ResponseError):
            srv.client().config_get("maxmemory")
        srv.config_set("maxmemory-policy", "allkeys-lru")
        assert srv.config_get("maxmemory-policy") == "allkeys-lru"


# --------------------------------------------------------------------------- fake-gcs-server


@pytest.fixture(scope="module")
def gcs():
    with GcsEmulator() as emu:
        yield emu


def test_gcs_if_generation_match_412(gcs):
    client = gcs.client()
    bucket = client.create_bucket("gen-match-bucket")
    blob = bucket.blob("registry.pb")
    blob.upload_from_string(b"v1", if_generation_match=0)  # create-only: ok
    gen = blob.generation
    with pytest.raises(gexc.PreconditionFailed):  # exists now: 412
        bucket.blob("registry.pb").upload_from_string(b"v2", if_generation_match=0)
    with pytest.raises(gexc.PreconditionFailed):  # stale generation: 412
        bucket.blob("registry.pb").upload_from_string(b"v2", if_generation_match=gen + 1)
    bucket.blob("registry.pb").upload_from_string(b"v2", if_generation_match=gen)
    assert bucket.blob("registry.pb").download_as_bytes() == b"v2"
    # resumable upload (Location header must point back at the emulator: -external-url)
    big = bucket.blob("big.bin", chunk_size=256 * 1024)
    payload = os.urandom(700 * 1024)
    big.upload_from_string(payload)
    assert bucket.blob("big.bin").download_as_bytes() == payload


def test_gcs_refuses_to_delete_non_empty_bucket(gcs):
    client = gcs.client()
    bucket = client.create_bucket("non-empty-bucket", location="us-central1")
    bucket.blob("data/x.parquet").upload_from_string(b"x")
    # fake-gcs-server answers 412; real GCS answers 409 Conflict. Product code must treat both
    # as "bucket not empty".
    with pytest.raises((gexc.PreconditionFailed, gexc.Conflict)) as ei:
        bucket.delete()
    assert ei.value.code == 412
    assert client.lookup_bucket("non-empty-bucket") is not None
    bucket.blob("data/x.parquet").delete()
    bucket.delete()
    assert client.lookup_bucket("non-empty-bucket") is None
    with pytest.raises(gexc.Conflict):  # duplicate bucket name: 409
        client.create_bucket("gen-match-bucket")


def test_gcsfs_roundtrip_through_env(gcs, monkeypatch):
    import fsspec
    import gcsfs

    for k, v in gcs.env().items():
        monkeypatch.setenv(k, v)
    gcs.client().create_bucket("gcsfs-bucket")
    t0 = time.monotonic()
    fs = gcsfs.GCSFileSystem(skip_instance_cache=True)  # endpoint + project from env only
    with fs.open("gcsfs-bucket/feast/registry.pb", "wb") as f:
        f.write(b"registry-bytes")
    assert fs.cat("gs://gcsfs-bucket/feast/registry.pb") == b"registry-bytes"
    with fsspec.open("gs://gcsfs-bucket/feast/registry.pb", "rb", skip_instance_cache=True) as f:
        assert f.read() == b"registry-bytes"
    # and the JSON API client sees the same object
    assert gcs.client().bucket("gcsfs-bucket").blob("feast/registry.pb").download_as_bytes() == b"registry-bytes"
    assert time.monotonic() - t0 < 20, "gcsfs stalled: is GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT set?"


# --------------------------------------------------------------------------- Memorystore fake


@pytest.fixture
def fake():
    with MemorystoreFake(op_delay=0.2) as f:
        yield f


def _tls_auth_instance(**extra) -> redis_v1.Instance:
    return redis_v1.Instance(
        tier=redis_v1.Instance.Tier.BASIC,
        memory_size_gb=1,
        auth_enabled=True,
        transit_encryption_mode="SERVER_AUTHENTICATION",
        redis_version="REDIS_7_0",
        authorized_network="projects/test-project/global/networks/kf",
        connect_mode="PRIVATE_SERVICE_ACCESS",
        labels={
            "featurestore-namespace": "team-a",
            "featurestore-name": "fs",
            "featurestore-uid": "0d4c6a5e-1b2c-4d5e-8f90-123456789abc",
        },
        redis_configs={"maxmemory-policy": "allkeys-lru"},
        **extra,
    )


def test_memorystore_create_gives_a_real_tls_auth_redis(fake, tmp_path):
    client = fake.client()
    parent = fake.parent()
    op = client.create_instance(parent=parent, instance_id="fs-team-a-fs", instance=_tls_auth_instance())
    # the wire format: camelCase JSON, enums as integers, instanceId in the query
    create = fake.calls("CreateInstance")[0]
    assert create.query["instanceId"] == "fs-team-a-fs"
    assert "enum-encoding=int" in create.query["$alt"]
    assert create.body["transitEncryptionMode"] == 1 and create.body["tier"] == 1
    assert create.body["memorySizeGb"] == 1 and create.body["authEnabled"] is True
    assert op.metadata.verb == "create"

    during = client.get_instance(name=f"{parent}/instances/fs-team-a-fs")
    assert during.state == redis_v1.Instance.State.CREATING
    assert during.host == "" and not during.server_ca_certs

    inst = op.result(timeout=30)
    assert inst.state == redis_v1.Instance.State.READY
    assert inst.name == f"{parent}/instances/fs-team-a-fs"
    assert inst.host == "127.0.0.1" and inst.port > 0
    assert inst.connect_mode == redis_v1.Instance.ConnectMode.PRIVATE_SERVICE_ACCESS
    assert inst.authorized_network == "projects/test-project/global/networks/kf"
    assert inst.labels["featurestore-namespace"] == "team-a"
    assert inst.redis_configs["maxmemory-policy"] == "allkeys-lru"
    assert inst.memory_size_gb == 1 and inst.redis_version == "REDIS_7_0"

    auth = client.get_instance_auth_string(name=inst.name).auth_string
    ca_file = tmp_path / "server-ca.pem"
    ca_file.write_text(inst.server_ca_certs[0].cert)
    r = redis.Redis(
        host=inst.host,
        port=inst.port,
        ssl=True,
        ssl_ca_certs=str(ca_file),
        password=auth,
        socket_timeout=3,
        retry=no_retry(),
    )
    assert r.set("feast:k", "v") and r.get("feast:k") == b"v"
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(
            host=inst.host, port=inst.port, ssl=True, ssl_ca_certs=str(ca_file), socket_timeout=3, retry=no_retry()
        ).get("feast:k")
    with pytest.raises((redis.ConnectionError, redis.TimeoutError)):
        redis.Redis(host=inst.host, port=inst.port, password=auth, socket_timeout=2, retry=no_retry()).ping()
    # CONFIG is blocked for clients, as on Memorystore; the redisConfigs were applied for real
    with pytest.raises(redis.ResponseError):
        r.config_get("maxmemory-policy")
    assert fake.redis_server("fs-team-a-fs").config_get("maxmemory-policy") == "allkeys-lru"
    # enums answered as ints when asked: the client still decoded them (checked above) and
    # the raw operation JSON had the typed response
    assert [i.name for i in client.list_instances(parent=parent)] == [inst.name]


def test_memorystore_duplicate_create_is_409_already_exists(fake):
    client = fake.client()
    client.create_instance(
        parent=fake.parent(), instance_id="dup", instance={"tier": "BASIC", "memory_size_gb": 1}
    ).result(timeout=30)
    with pytest.raises(gexc.Conflict) as ei:
        client.create_instance(parent=fake.parent(), instance_id="dup", instance={"tier": "BASIC", "memory_size_gb": 1})
    # Over REST google-api-core maps by HTTP status: Conflict (409), not the gRPC-only
    # AlreadyExists subclass; the canonical status is in the JSON body.
    assert ei.value.code == 409
    assert ei.value.response.json()["error"]["status"] == "ALREADY_EXISTS"
    assert fake.count("CreateInstance") == 2
    assert [q.status for q in fake.calls("create_instance")] == [200, 409]


def test_memorystore_not_found_and_validation(fake):
    client = fake.client()
    with pytest.raises(gexc.NotFound):
        client.get_instance(name=f"{fake.parent()}/instances/missing")
    with pytest.raises(gexc.NotFound):
        client.delete_instance(name=f"{fake.parent()}/instances/missing")
    with pytest.raises(gexc.BadRequest, match="label value"):
        client.create_instance(
            parent=fake.parent(),
            instance_id="bad-labels",
            instance={"tier": "BASIC", "memory_size_gb": 1, "labels": {"name": "Has.Dots"}},
        )
    with pytest.raises(gexc.BadRequest, match="instance id"):
        client.create_instance(
            parent=fake.parent(), instance_id="9-starts-with-digit", instance={"tier": "BASIC", "memory_size_gb": 1}
        )
    with pytest.raises(gexc.BadRequest, match="tier"):
        client.create_instance(parent=fake.parent(), instance_id="no-tier", instance={"memory_size_gb": 1})
    assert fake.instances() == []


def test_memorystore_update_memory_labels(fake):
    client = fake.client()
    inst = client.create_instance(
        parent=fake.parent(), instance_id="upd", instance={"tier": "BASIC", "memory_size_gb": 1, "labels": {"a": "b"}}
    ).result(timeout=30)
    srv = fake.redis_server("upd")
    assert srv.config_get("maxmemory") == str(1024**3)
    op = client.update_instance(
        update_mask=field_mask_pb2.FieldMask(paths=["memory_size_gb", "labels", "display_name"]),
        instance=redis_v1.Instance(
            name=inst.name, memory_size_gb=2, labels={"a": "c"}, display_name="Feast online store"
        ),
    )
    assert fake.calls("UpdateInstance")[0].query["updateMask"] == "memorySizeGb,labels,displayName"
    assert client.get_instance(name=inst.name).state == redis_v1.Instance.State.UPDATING
    with pytest.raises(gexc.BadRequest):  # only one operation at a time
        client.update_instance(
            update_mask={"paths": ["memory_size_gb"]}, instance={"name": inst.name, "memory_size_gb": 3}
        )
    updated = op.result(timeout=30)
    assert updated.memory_size_gb == 2 and dict(updated.labels) == {"a": "c"}
    assert updated.display_name == "Feast online store"
    assert updated.state == redis_v1.Instance.State.READY
    assert srv.config_get("maxmemory") == str(2 * 1024**3)  # applied to the real server
    with pytest.raises(gexc.BadRequest, match="cannot be updated"):
        client.update_instance(update_mask={"paths": ["tier"]}, instance={"name": inst.name, "tier": "STANDARD_HA"})


def test_memorystore_delete_stops_the_process(fake):
    client = fake.client()
    inst = client.create_instance(
        parent=fake.parent(), instance_id="del", instance={"tier": "BASIC", "memory_size_gb": 1, "auth_enabled": True}
    ).result(timeout=30)
    pid = fake.redis_server("del").pid
    assert _pid_alive(pid)
    op = client.delete_instance(name=inst.name)
    assert client.get_instance(name=inst.name).state == redis_v1.Instance.State.DELETING
    op.result(timeout=30)  # google.protobuf.Empty
    assert op.done() and op.exception() is None
    assert not _pid_alive(pid)
    with pytest.raises(gexc.NotFound):
        client.get_instance(name=inst.name)


def test_memorystore_injected_errors_are_retried_with_a_retry(fake):
    client = fake.client()
    name = fake.precreate("pre", labels={"x": "y"}).name
    fake.fail_next(2, status=503, rpc="GetInstance")
    assert client.get_instance(name=name, retry=FAST_RETRY).name == name
    assert [q.status for q in fake.calls("GetInstance")] == [503, 503, 200]

    fake.fail_next(1, status=503)
    with pytest.raises(gexc.ServiceUnavailable) as ei:  # without a Retry it surfaces
        client.get_instance(name=name)
    assert ei.value.response.json()["error"]["status"] == "UNAVAILABLE"
    fake.fail_next(1, status=429)
    assert client.get_instance(name=name, retry=FAST_RETRY).name == name

    # random faults are deterministic per seed
    def statuses(seed):
        with MemorystoreFake(real_redis=False, fail_rate=0.5, seed=seed) as f:
            c = f.client()
            f.precreate("x")
            for _ in range(20):
                try:
                    c.get_instance(name=f"{f.parent()}/instances/x")
                except gexc.GoogleAPICallError:
                    pass
            return [q.status for q in f.requests]

    s1 = statuses(7)
    assert s1 == statuses(7) and set(s1) - {200} and 200 in s1
    assert set(s1) <= {200, 429, 500, 503}


def test_memorystore_lost_response_after_create_then_conflict(fake):
    """A create that succeeded server-side but whose answer was lost (crash/timeout)."""
    client = fake.client()
    fake.fail_next(1, status=503, rpc="CreateInstance", after_apply=True)
    with pytest.raises(gexc.ServiceUnavailable):
        client.create_instance(
            parent=fake.parent(), instance_id="lost", instance={"tier": "BASIC", "memory_size_gb": 1}
        )
    assert fake.instance("lost").state == redis_v1.Instance.State.CREATING
    with pytest.raises(gexc.Conflict):
        client.create_instance(
            parent=fake.parent(), instance_id="lost", instance={"tier": "BASIC", "memory_size_gb": 1}
        )


def test_memorystore_forbid_delay_and_tampering():
    with MemorystoreFake(real_redis=False, forbid=["CreateInstance"], delay=1.0, delay_rpcs=["ListInstances"]) as fake:
        client = fake.client()
        with pytest.raises(gexc.Forbidden) as ei:  # REST: Forbidden, not PermissionDenied
            client.create_instance(
                parent=fake.parent(), instance_id="nope", instance={"tier": "BASIC", "memory_size_gb": 1}
            )
        assert ei.value.response.json()["error"]["status"] == "PERMISSION_DENIED"
        assert fake.calls("CreateInstance")[0].injected == "forbid"

        # a client timeout over REST is a requests exception, not a google one
        import requests

        t0 = time.monotonic()
        with pytest.raises(requests.exceptions.Timeout):
            client.list_instances(parent=fake.parent(), timeout=0.3)
        assert time.monotonic() - t0 < 0.9

        foreign = fake.precreate(
            "taken", labels={"featurestore-uid": "someone-else"}, transit_encryption_mode="SERVER_AUTHENTICATION"
        )
        got = client.get_instance(name=foreign.name)
        assert got.labels["featurestore-uid"] == "someone-else"
        assert got.port == 6378 and got.server_ca_certs  # no real process behind it
        fake.set_state("taken", "REPAIRING")
        assert client.get_instance(name=foreign.name).state == redis_v1.Instance.State.REPAIRING
        with pytest.raises(gexc.BadRequest, match="REPAIRING"):
            client.update_instance(update_mask={"paths": ["labels"]}, instance={"name": foreign.name, "labels": {}})
        fake.set_state("taken", "MAINTENANCE")
        assert fake.instance(foreign.name).state == redis_v1.Instance.State.MAINTENANCE
