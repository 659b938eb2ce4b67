"""MemorystoreBackend against the Cloud Redis v1 REST fake, backed by real redis-server processes.

Every test drives the backend like reconcile does: call ``ensure``/``delete`` repeatedly, carrying
the returned ``status`` into ``fs.status`` between passes (:class:`Loop`), then checks real
outcomes: the fake's instances and request log, and a real redis-py connection over TLS with the
returned Secret data. No pytest-asyncio: each test runs its coroutine with ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from featurestore_operator.api import FeatureStore, OperatorConfig, parse_featurestore, resolve
from featurestore_operator.api.status import Operations
from featurestore_operator.backends import gcp
from featurestore_operator.backends.base import BackendContext, Deleted, Failed, Pending, Ready, StatusUpdate
from featurestore_operator.backends.memorystore import MemorystoreBackend
from featurestore_operator.backends.naming import memorystore_instance_id, owner_labels
from featurestore_operator.render.inputs import SecretKey
from google.api_core import retry as gretry
from google.cloud import redis_v1

from tests.support.memorystore_fake import MemorystoreFake
from tests.support.redis_server import no_retry

pytestmark = pytest.mark.timeout(120)

PROJECT = "test-project"
REGION = "us-central1"
NETWORK = f"projects/{PROJECT}/global/networks/kubeflow"
UID = "0b5e9a52-8c1e-4a43-9b2e-5c0d7f6b1a11"
State = redis_v1.Instance.State

#: The shared policy's shape with shorter waits, so fault tests stay quick.
FAST_RETRY = gretry.Retry(
    predicate=gretry.if_exception_type(*gcp.TRANSIENT), initial=0.02, maximum=0.2, multiplier=2.0, timeout=20
)


# --------------------------------------------------------------------------- helpers


def config(endpoint: str, **policy: Any) -> OperatorConfig:
    """The operator config; ``policy``: admin policy fields (camelCase), e.g. byoAssignments."""
    return OperatorConfig(
        default_provider="gcp",
        gcp_project=PROJECT,
        gcp_region=REGION,
        gcp_network=NETWORK,
        memorystore_endpoint=endpoint,
        policy=policy,
    )


def assigned(cfg: OperatorConfig, namespace: str, *instance_ids: str, **policy: Any) -> OperatorConfig:
    """``cfg`` whose admin policy assigns ``instance_ids`` (bring your own) to ``namespace``."""
    names = [f"projects/{PROJECT}/locations/{REGION}/instances/{i}" for i in instance_ids]
    assert cfg.memorystore_endpoint
    return config(cfg.memorystore_endpoint, byoAssignments={namespace: {"instances": names}}, **policy)


def make_fs(
    cfg: OperatorConfig, *, name: str = "driver-stats", namespace: str = "team-a", uid: str = UID, **memorystore: Any
) -> FeatureStore:
    fs = parse_featurestore(
        {
            "apiVersion": "featurestore.kubeflow.org/v1alpha1",
            "kind": "FeatureStore",
            "metadata": {"name": name, "namespace": namespace, "uid": uid, "generation": 1},
            "spec": {"project": "driver_stats", "provider": "gcp", "onlineStore": {"memorystore": memorystore}},
        }
    )
    return fs.model_copy(update={"spec": resolve(fs.spec, cfg)})


def carry(fs: FeatureStore, update: StatusUpdate) -> FeatureStore:
    """Merge an outcome's typed ``status`` into fs.status the way reconcile does."""
    return fs.model_copy(update={"status": update.applied_to(fs.status)})


async def _no_secret(name: str) -> dict[str, str] | None:
    return None


class Loop:
    """A minimal reconciler: repeated passes, status carried between them, outcomes recorded."""

    def __init__(self, backend: MemorystoreBackend, fs: FeatureStore, cfg: OperatorConfig):
        self.backend, self.fs = backend, fs
        self.ctx = BackendContext(config=cfg, get_secret=_no_secret)
        self.outcomes: list[Any] = []

    async def ensure(self) -> Any:
        out = await self.backend.ensure(self.fs, self.ctx)
        self.fs = carry(self.fs, out.status)
        self.outcomes.append(out)
        return out

    async def until(
        self,
        done: Callable[[Any], bool] = lambda o: isinstance(o, (Ready, Failed)),
        timeout: float = 30.0,
        interval: float = 0.05,
    ) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            out = await self.ensure()
            if done(out):
                return out
            assert time.monotonic() < deadline, f"did not converge; last outcomes: {self.outcomes[-3:]}"
            await asyncio.sleep(interval)

    async def delete_until_done(self, timeout: float = 30.0) -> list[Deleted]:
        results: list[Deleted] = []
        deadline = time.monotonic() + timeout
        while True:
            res = await self.backend.delete(self.fs, self.ctx)
            self.fs = carry(self.fs, res.status)
            results.append(res)
            if res.done:
                return results
            assert time.monotonic() < deadline, f"delete did not finish: {results[-3:]}"
            await asyncio.sleep(0.05)

    def respec(self, cfg: OperatorConfig, **memorystore: Any) -> None:
        """The user edits spec.onlineStore.memorystore; status stays."""
        m = self.fs.metadata
        self.fs = make_fs(cfg, name=m.name, namespace=m.namespace, uid=m.uid or "", **memorystore).model_copy(
            update={"status": self.fs.status}
        )


def reasons(outcomes: list[Any]) -> list[str]:
    return [type(o).__name__ if isinstance(o, Ready) else o.reason for o in outcomes]


def connect(ready: Ready, tmp_path: Path, **kwargs: Any) -> redis.Redis:
    """A redis-py client built only from what the backend returned (endpoint + Secret data)."""
    ep, secret = ready.endpoint, ready.secret or {}
    opts: dict[str, Any] = {}
    if ep.tls:
        ca = tmp_path / f"ca-{ep.port}.crt"
        ca.write_text(secret[ep.ca.key])
        opts.update(ssl=True, ssl_ca_certs=str(ca))
    if ep.password:
        opts["password"] = secret[ep.password.key]
    opts.update(kwargs)
    return redis.Redis(host=ep.host, port=ep.port, socket_timeout=3, retry=no_retry(), **opts)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def fake():
    with MemorystoreFake(op_delay=0.2) as f:
        yield f


@pytest.fixture
def cfg(fake):
    return config(fake.endpoint)


def backend_for(fake: MemorystoreFake, cfg: OperatorConfig) -> MemorystoreBackend:
    return MemorystoreBackend(cfg, retry=FAST_RETRY)


# --------------------------------------------------------------------------- create


def test_create_until_ready_serves_tls_auth_redis(fake, cfg, tmp_path):
    backend = MemorystoreBackend(cfg)  # exactly how backends.registry builds it (default retry policy)
    assert backend._client is None  # lazily created on first use
    loop = Loop(backend, make_fs(cfg, memory_size_gb=1, redis_configs={"maxmemory-policy": "allkeys-lru"}), cfg)
    iid = memorystore_instance_id(loop.fs)
    name = f"projects/{PROJECT}/locations/{REGION}/instances/{iid}"

    first = asyncio.run(loop.ensure())
    assert isinstance(first, Pending) and first.reason == "Creating"
    assert first.status.operations is not None
    op_name = first.status.operations.memorystore
    assert op_name is not None
    assert op_name.startswith(f"projects/{PROJECT}/locations/{REGION}/operations/")
    assert loop.fs.status.operations.memorystore == op_name  # carried like reconcile persists it
    client = backend._client
    assert client is not None

    ready = asyncio.run(loop.until())
    assert isinstance(ready, Ready), reasons(loop.outcomes)
    assert backend._client is client  # cached per backend instance
    assert set(reasons(loop.outcomes)) == {"Creating", "Ready"}
    assert ready.status == StatusUpdate(operations=Operations(memorystore=None, memorystore_start_time=None))
    assert ready.status.operations is not None and ready.status.operations.model_fields_set == {
        "memorystore",
        "memorystore_start_time",
    }
    assert loop.fs.status.cloud.memorystore == name  # recorded at create: clean-up works from it
    assert loop.fs.status.operations.memorystore is None

    # the endpoint and Secret references the renderer will use
    secret_name = "driver-stats-online-store"
    ep = ready.endpoint
    assert ep.tls and ep.host == "127.0.0.1" and ep.port == fake.instance(iid).port
    assert ep.password == SecretKey(secret_name, "password") and ep.ca == SecretKey(secret_name, "ca.crt")
    assert set(ready.secret) == {"password", "ca.crt"}
    assert ready.secret["password"] == fake.auth_string(iid)
    assert ready.secret["ca.crt"].startswith("-----BEGIN CERTIFICATE-----")

    # a real TLS + AUTH connection with exactly that data
    r = connect(ready, tmp_path)
    assert r.set("feast:k", "v") and r.get("feast:k") == b"v"
    with pytest.raises(redis.AuthenticationError):
        connect(ready, tmp_path, password=None).get("feast:k")

    # the instance is what the spec asked for, and names its FeatureStore
    inst = fake.instance(iid)
    assert inst.name == name
    assert dict(inst.labels) == owner_labels(loop.fs)
    assert inst.labels["featurestore-namespace"] == "team-a" and inst.labels["featurestore-name"] == "driver-stats"
    assert inst.labels["featurestore-uid"] == UID and inst.labels["managed-by"] == "featurestore-operator"
    assert inst.tier == redis_v1.Instance.Tier.BASIC and inst.memory_size_gb == 1
    assert inst.redis_version == "REDIS_7_2" and inst.authorized_network == NETWORK
    assert inst.connect_mode == redis_v1.Instance.ConnectMode.PRIVATE_SERVICE_ACCESS
    assert inst.auth_enabled and inst.display_name == "Feast online store team-a/driver-stats"
    assert fake.redis_server(iid).config_get("maxmemory-policy") == "allkeys-lru"
    assert fake.count("CreateInstance") == 1
    assert fake.calls("CreateInstance")[0].query["instanceId"] == iid

    # steady state: a resync pass only reads (no create/update/delete), and stays Ready
    fake.clear_requests()
    again = asyncio.run(loop.ensure())
    assert isinstance(again, Ready) and again.secret == ready.secret and again.endpoint == ready.endpoint
    assert not again.status  # nothing to record: an unchanged store writes nothing
    assert {q.rpc for q in fake.calls()} == {"GetInstance", "GetInstanceAuthString"}


def test_plain_instance_without_tls_or_auth(fake, cfg, tmp_path):
    """Only where the admin relaxed memorystoreSecurity (AUTH and TLS are required by default)."""
    cfg = config(fake.endpoint, memorystoreSecurity={"requireAuth": False, "requireTls": False})
    loop = Loop(backend_for(fake, cfg), make_fs(cfg, transit_encryption=False, auth_enabled=False), cfg)
    ready = asyncio.run(loop.until())
    assert isinstance(ready, Ready), reasons(loop.outcomes)
    assert not ready.endpoint.tls and ready.endpoint.password is None and ready.endpoint.ca is None
    assert ready.secret is None
    assert connect(ready, tmp_path).ping()
    assert fake.count("GetInstanceAuthString") == 0


def test_crash_after_create_does_not_create_twice(fake, cfg, tmp_path):
    """The create is applied but its answer is lost: the retry hits 409 and the store converges."""
    fake.fail_next(1, status=503, rpc="CreateInstance", after_apply=True)
    loop = Loop(backend_for(fake, cfg), make_fs(cfg), cfg)
    first = asyncio.run(loop.ensure())
    assert isinstance(first, Pending) and first.reason == "Creating"
    assert loop.fs.status.operations.memorystore is None  # the operation name was lost with the answer
    ready = asyncio.run(loop.until())
    assert isinstance(ready, Ready), reasons(loop.outcomes)
    creates = fake.calls("CreateInstance")
    assert [(q.status, q.injected) for q in creates] == [(503, "fail-after-apply"), (409, None)]
    assert len(fake.instances()) == 1  # exactly one instance was ever created
    assert connect(ready, tmp_path).ping()


def test_restarted_operator_resumes_the_recorded_operation(fake, cfg, tmp_path):
    first = Loop(backend_for(fake, cfg), make_fs(cfg), cfg)
    out = asyncio.run(first.ensure())
    assert isinstance(out, Pending) and out.reason == "Creating"
    op_name = first.fs.status.operations.memorystore
    assert op_name

    # a new process: new backend, new client; only the status written before the crash survives
    restarted = Loop(MemorystoreBackend(config(fake.endpoint), retry=FAST_RETRY), first.fs, cfg)
    fake.clear_requests()
    out = asyncio.run(restarted.ensure())
    assert isinstance(out, Pending) and out.reason == "Creating" and op_name in out.message
    assert fake.calls()[0].rpc == "GetOperation" and fake.calls()[0].path == f"/v1/{op_name}"
    assert fake.count("GetInstance") == 0  # still waiting on the operation
    ready = asyncio.run(restarted.until())
    assert isinstance(ready, Ready), reasons(restarted.outcomes)
    assert fake.count("CreateInstance") == 0 and len(fake.instances()) == 1
    assert restarted.fs.status.operations.memorystore is None
    assert connect(ready, tmp_path).ping()


def test_failed_operation_is_reported_then_recovered(fake, cfg, tmp_path):
    """A create operation that ends in an error (the instance was deleted meanwhile) is Failed,
    forgotten, and the next passes create the instance again."""
    loop = Loop(backend_for(fake, cfg), make_fs(cfg), cfg)
    asyncio.run(loop.ensure())
    iid = memorystore_instance_id(loop.fs)
    # someone deletes it while CREATING, and that delete finishes first
    fake.op_delay = 0
    fake.client().delete_instance(name=fake.instance(iid).name)
    fake.op_delay = 0.2
    assert fake.instance(iid) is None
    failed = asyncio.run(loop.until(lambda o: isinstance(o, Failed)))
    assert failed.reason == "CreateFailed" and failed.retryable
    assert "ABORTED" in failed.message and "deleted during creation" in failed.message
    assert loop.fs.status.operations.memorystore is None
    ready = asyncio.run(loop.until(lambda o: isinstance(o, Ready)))
    after = reasons(loop.outcomes)[reasons(loop.outcomes).index("CreateFailed") + 1 :]
    assert after[0] == "Creating" and after[-1] == "Ready" and set(after) == {"Creating", "Ready"}
    assert fake.count("CreateInstance", status=200) == 2 and len(fake.instances()) == 1
    assert connect(ready, tmp_path).ping()


# --------------------------------------------------------------------------- changes


def test_mutable_changes_are_applied_in_place(fake, cfg, tmp_path):
    loop = Loop(backend_for(fake, cfg), make_fs(cfg), cfg)
    ready = asyncio.run(loop.until())
    iid = memorystore_instance_id(loop.fs)
    srv = fake.redis_server(iid)
    assert srv.config_get("maxmemory") == str(1024**3)
    connect(ready, tmp_path).set("survives", "1")

    loop.respec(cfg, memory_size_gb=2, redis_configs={"maxmemory-policy": "allkeys-lru"})
    n = len(loop.outcomes)
    ready = asyncio.run(loop.until(lambda o: isinstance(o, Ready)))
    assert reasons(loop.outcomes[n:]).count("Updating") >= 2 and "Failed" not in reasons(loop.outcomes[n:])
    masks = [q.query["updateMask"] for q in fake.calls("UpdateInstance")]
    assert masks == ["redisConfigs", "memorySizeGb"]  # one field per operation
    inst = fake.instance(iid)
    assert inst.memory_size_gb == 2 and dict(inst.redis_configs) == {"maxmemory-policy": "allkeys-lru"}
    assert srv.config_get("maxmemory") == str(2 * 1024**3)  # applied to the real server
    assert srv.config_get("maxmemory-policy") == "allkeys-lru"
    assert connect(ready, tmp_path).get("survives") == b"1"
    assert fake.count("CreateInstance") == 1
    assert ready.message.startswith("Memorystore instance") and "ImmutableFieldChanged" not in ready.message


def test_owner_labels_are_restored_and_labels_of_others_kept(fake, cfg):
    loop = Loop(backend_for(fake, cfg), make_fs(cfg), cfg)
    asyncio.run(loop.until())
    iid = memorystore_instance_id(loop.fs)
    fake.set_labels(iid, {**owner_labels(loop.fs), "cost-center": "ml", "featurestore-uid": "tampered"})
    # a changed uid label is an earlier owner of our name: adopted back, other labels kept
    ready = asyncio.run(loop.until(lambda o: isinstance(o, Ready)))
    assert "Adopting" in reasons(loop.outcomes)
    assert dict(fake.instance(iid).labels) == {**owner_labels(loop.fs), "cost-center": "ml"}
    assert isinstance(ready, Ready)


def test_immutable_change_keeps_serving_and_names_the_field(fake, cfg, tmp_path):
    """Documented outcome: Ready (the instance keeps serving as it is) with a message that starts
    with ImmutableFieldChanged and names the field, both values and the fix; no API write."""
    other = f"projects/{PROJECT}/global/networks/other"
    # the policy would refuse the edits (TLS off, another network): the backend sees them anyway
    cfg = config(fake.endpoint, memorystoreSecurity={"requireTls": False}, allowedNetworks=[NETWORK, other])
    loop = Loop(backend_for(fake, cfg), make_fs(cfg), cfg)
    before = asyncio.run(loop.until())
    iid = memorystore_instance_id(loop.fs)
    fake.clear_requests()

    loop.respec(cfg, tier="STANDARD_HA", transit_encryption=False)
    out = asyncio.run(loop.ensure())
    assert isinstance(out, Ready)
    assert out.message.startswith("ImmutableFieldChanged: ")
    assert (
        "spec.onlineStore.memorystore.tier cannot be changed on an existing instance: "
        "it is BASIC, the spec asks for STANDARD_HA"
    ) in out.message
    assert "spec.onlineStore.memorystore.transitEncryption" in out.message and "it is true" in out.message
    assert "revert" in out.message and "new FeatureStore" in out.message
    # the endpoint is the actual instance's (still TLS), and it still works
    assert out.endpoint == before.endpoint and out.secret == before.secret
    assert connect(out, tmp_path).ping()
    assert fake.instance(iid).tier == redis_v1.Instance.Tier.BASIC
    assert fake.count("UpdateInstance") == 0 and fake.count("CreateInstance") == 0 and fake.count("DeleteInstance") == 0

    # the network (the instance answers it in its own form) and AUTH/version are declined the same way
    for field, value, shown in (
        ("network", other, f"it is {NETWORK}, the spec asks for {other}"),
        ("redis_version", "REDIS_6_X", "it is REDIS_7_2, the spec asks for REDIS_6_X"),
    ):
        loop.respec(cfg, **{field: value})
        out = asyncio.run(loop.ensure())
        path = "spec.onlineStore.memorystore." + {"network": "network", "redis_version": "redisVersion"}[field]
        assert isinstance(out, Ready) and out.reason == "ImmutableFieldChanged", out
        assert f"{path} cannot be changed on an existing instance: {shown}" in out.message, out.message
    assert fake.count("UpdateInstance") == 0 and fake.count("CreateInstance") == 0

    # a mutable change alongside is still applied, then the warning stays
    loop.respec(cfg, tier="STANDARD_HA", memory_size_gb=3)
    out = asyncio.run(loop.until(lambda o: isinstance(o, Ready)))
    assert fake.instance(iid).memory_size_gb == 3
    assert "spec.onlineStore.memorystore.tier" in out.message

    # reverting the field clears the warning
    loop.respec(cfg, memory_size_gb=3)
    out = asyncio.run(loop.ensure())
    assert isinstance(out, Ready) and "ImmutableFieldChanged" not in out.message


# --------------------------------------------------------------------------- ownership, faults, states


def test_foreign_instance_is_a_conflict_and_untouched(fake, cfg):
    fs = make_fs(cfg)
    iid = memorystore_instance_id(fs)
    foreign = {
        "featurestore-namespace": "team-b",
        "featurestore-name": "other",
        "featurestore-uid": "x1",
        "managed-by": "featurestore-operator",
    }
    fake.precreate(iid, labels=foreign, memory_size_gb=5)
    loop = Loop(backend_for(fake, cfg), fs, cfg)
    out = asyncio.run(loop.ensure())
    assert isinstance(out, Failed) and out.reason == "Conflict" and not out.retryable
    assert f"instances/{iid}" in out.message
    # the message lands in this tenant's status and Events: nothing of the other owner's identity
    assert "another FeatureStore" in out.message
    assert not {"team-b", "other", "x1"} & set(re.split(r"[^a-z0-9-]+", out.message)), out.message
    assert "instanceId" in out.message
    inst = fake.instance(iid)
    assert dict(inst.labels) == foreign and inst.memory_size_gb == 5
    assert {q.rpc for q in fake.calls()} == {"GetInstance"}

    # an unlabelled instance (created by hand) is foreign too
    other = make_fs(cfg, name="handmade", instance_id="n6-team-a-handmade")
    fake.precreate("n6-team-a-handmade")
    out = asyncio.run(Loop(backend_for(fake, cfg), other, cfg).ensure())
    assert (
        isinstance(out, Failed) and out.reason == "Conflict" and "no featurestore-operator owner labels" in out.message
    )

    # deleting the FeatureStore leaves the foreign instance alone
    done = asyncio.run(loop.delete_until_done())
    assert done[-1].done and "left in place" in done[-1].message and "someone else" in done[-1].message
    assert "team-b" not in done[-1].message and "x1" not in done[-1].message
    assert fake.count("DeleteInstance") == 0 and fake.instance(iid).state == State.READY


def test_retained_instance_of_the_same_name_is_adopted(fake, cfg, tmp_path):
    fs = make_fs(cfg)
    iid = memorystore_instance_id(fs)
    earlier = {**owner_labels(fs), "featurestore-uid": "old-uid"}
    fake.precreate(
        iid,
        labels=earlier,
        auth_enabled=True,
        transit_encryption_mode="SERVER_AUTHENTICATION",
        redis_version="REDIS_7_2",
        authorized_network=NETWORK,
        connect_mode="PRIVATE_SERVICE_ACCESS",
    )
    fake.redis_server(iid).client().set("kept", "yes")
    loop = Loop(backend_for(fake, cfg), fs, cfg)
    ready = asyncio.run(loop.until(lambda o: isinstance(o, Ready)))
    assert reasons(loop.outcomes)[0] == "Adopting" and "old-uid" in loop.outcomes[0].message
    assert dict(fake.instance(iid).labels) == owner_labels(fs)
    assert fake.count("CreateInstance") == 0
    assert connect(ready, tmp_path).get("kept") == b"yes"
    assert "ImmutableFieldChanged" not in ready.message


def test_permission_denied_on_create_names_the_permission():
    with MemorystoreFake(op_delay=0.2, real_redis=False, forbid=["CreateInstance"]) as fake:
        cfg = config(fake.endpoint)
        out = asyncio.run(Loop(backend_for(fake, cfg), make_fs(cfg), cfg).ensure())
        assert isinstance(out, Failed) and out.reason == "PermissionDenied" and not out.retryable
        assert "redis.instances.create" in out.message and "create Memorystore instance" in out.message
        assert fake.count("CreateInstance") == 1 and fake.instances() == []  # not retried


def test_transient_faults_still_converge_to_one_instance(tmp_path):
    with MemorystoreFake(op_delay=0.2, fail_rate=0.3, seed=11) as fake:
        cfg = config(fake.endpoint)
        loop = Loop(backend_for(fake, cfg), make_fs(cfg), cfg)
        ready = asyncio.run(loop.until(lambda o: isinstance(o, Ready), timeout=60))
        assert len(fake.instances()) == 1 and fake.count("CreateInstance", status=200) == 1
        iid = memorystore_instance_id(loop.fs)
        # the rest of the lifecycle under the same fault rate: an update, then delete
        loop.respec(cfg, memory_size_gb=2)
        asyncio.run(loop.until(lambda o: isinstance(o, Ready), timeout=60))
        assert fake.instance(iid).memory_size_gb == 2 and fake.count("UpdateInstance", status=200) == 1
        # no pass gave up with a permanent failure on the way
        assert all(not isinstance(o, Failed) or o.retryable for o in loop.outcomes)
        faults = sum(1 for q in fake.calls() if q.injected == "fail")
        assert faults >= 3, f"only {faults} faults injected"  # the faults really happened
        with fake.redis_server(iid).client() as r:  # the data path is the one reported
            assert r.ping()
        assert connect(ready, tmp_path).ping()
        pid = fake.redis_server(iid).pid
        asyncio.run(loop.delete_until_done())
        assert fake.instances() == [] and not pid_alive(pid) and fake.count("DeleteInstance", status=200) == 1


def test_missing_credentials_are_reported_not_raised():
    """No Workload Identity / ADC: the lazily built client fails; the outcome says how to fix it."""
    from google.auth.exceptions import DefaultCredentialsError

    calls = []

    def factory():
        calls.append(1)
        raise DefaultCredentialsError("Your default credentials were not found.")

    cfg = OperatorConfig(default_provider="gcp", gcp_project=PROJECT, gcp_region=REGION)
    backend = MemorystoreBackend(cfg, client_factory=factory)
    assert calls == []  # nothing is built before the first call
    loop = Loop(backend, make_fs(cfg), cfg)
    out = asyncio.run(loop.ensure())
    assert isinstance(out, Failed) and out.reason == "Unauthenticated" and not out.retryable
    assert "Workload Identity" in out.message and "iam.gke.io/gcp-service-account" in out.message
    gone = asyncio.run(backend.delete(loop.fs, loop.ctx))
    assert not gone.done and "Workload Identity" in gone.message
    assert len(calls) == 2  # tried again on the next call, not cached as broken


@pytest.mark.parametrize(
    "state, reason",
    [
        ("REPAIRING", "Repairing"),
        ("MAINTENANCE", "Maintenance"),
        ("FAILING_OVER", "FailingOver"),
        ("IMPORTING", "Importing"),
    ],
)
def test_transitional_states_are_pending_with_their_reason(state, reason):
    with MemorystoreFake(op_delay=0.05, real_redis=False) as fake:
        cfg = config(fake.endpoint)
        loop = Loop(backend_for(fake, cfg), make_fs(cfg), cfg)
        asyncio.run(loop.until())
        iid = memorystore_instance_id(loop.fs)
        fake.set_state(iid, state, status_message="planned work")
        out = asyncio.run(loop.ensure())
        assert isinstance(out, Pending) and out.reason == reason
        assert state in out.message and "planned work" in out.message
        assert fake.count("UpdateInstance") == 0
        fake.set_state(iid, "READY")
        assert isinstance(asyncio.run(loop.ensure()), Ready)


def test_calls_never_block_the_event_loop():
    """Slow API answers (1 s each) run in worker threads: the loop keeps ticking meanwhile. A blocked
    loop shows as a gap of at least the answer's delay between two ticks; a loaded machine delays
    ticks by far less than that."""
    delay = 1.0
    with MemorystoreFake(op_delay=0.05, real_redis=False, delay=delay, delay_rpcs=["GetInstance"]) as fake:
        cfg = config(fake.endpoint)
        fake.precreate(memorystore_instance_id(make_fs(cfg)), labels=owner_labels(make_fs(cfg)))
        loop = Loop(backend_for(fake, cfg), make_fs(cfg), cfg)

        async def main() -> tuple[Any, list[float]]:
            ticks: list[float] = []

            async def ticker() -> None:
                while True:
                    ticks.append(time.monotonic())
                    await asyncio.sleep(0.02)

            t = asyncio.create_task(ticker())
            await asyncio.sleep(0)
            out = await loop.ensure()
            t.cancel()
            return out, ticks

        out, ticks = asyncio.run(main())
        gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]  # consecutive pairs
        assert out is not None and fake.count("GetInstance") >= 1
        assert len(ticks) >= 10 and max(gaps) < delay * 0.9, (
            f"the event loop stalled during a {delay:.0f}s call: {len(ticks)} ticks,"
            f" gaps up to {max(gaps, default=0):.2f}s"
        )


# --------------------------------------------------------------------------- delete


def test_delete_policy_delete_removes_the_instance_and_its_process(fake, cfg):
    loop = Loop(backend_for(fake, cfg), make_fs(cfg), cfg)
    assert loop.backend.needs_cleanup(loop.fs)
    asyncio.run(loop.until())
    iid = memorystore_instance_id(loop.fs)
    pid = fake.redis_server(iid).pid
    assert pid_alive(pid)
    results = asyncio.run(loop.delete_until_done())
    assert not results[0].done and results[0].status.operations and results[0].status.operations.memorystore
    assert results[-1].done and "deleted" in results[-1].message
    assert fake.instance(iid) is None and not pid_alive(pid)
    assert fake.count("DeleteInstance") == 1
    assert loop.fs.status.operations.memorystore is None


def test_delete_while_creating_waits_then_deletes(fake, cfg):
    loop = Loop(backend_for(fake, cfg), make_fs(cfg), cfg)
    asyncio.run(loop.ensure())  # create started, operation recorded
    results = asyncio.run(loop.delete_until_done())
    assert results[0].done is False and "operation" in results[0].message
    assert results[-1].done and fake.instances() == [] and fake.count("DeleteInstance") == 1


def test_delete_policy_retain_leaves_the_instance(fake, cfg):
    loop = Loop(backend_for(fake, cfg), make_fs(cfg, deletion_policy="Retain"), cfg)
    assert not loop.backend.needs_cleanup(loop.fs)
    ready = asyncio.run(loop.until())
    iid = memorystore_instance_id(loop.fs)
    fake.clear_requests()
    results = asyncio.run(loop.delete_until_done())
    assert len(results) == 1 and results[0].done and "retained" in results[0].message
    assert fake.calls() == []  # not even looked at
    assert fake.instance(iid).state == State.READY and pid_alive(fake.redis_server(iid).pid)
    assert isinstance(ready, Ready)

    # a new FeatureStore of the same name (new uid) takes the retained instance back
    again = Loop(backend_for(fake, cfg), make_fs(cfg, uid="1c2d3e4f-0000-4000-8000-000000000002"), cfg)
    out = asyncio.run(again.until(lambda o: isinstance(o, Ready)))
    assert "Adopting" in reasons(again.outcomes) and out.endpoint == ready.endpoint
    assert fake.instance(iid).labels["featurestore-uid"] == "1c2d3e4f-0000-4000-8000-000000000002"


# --------------------------------------------------------------------------- tenant boundaries (issue 16)


def test_two_clusters_sharing_a_project_never_touch_each_others_instance(fake, cfg):
    """Before: cluster B's store of the same namespace/name took cluster A's instance over as
    "retained" (relabelled it) and its deletion deleted it. Now the cluster label makes it foreign."""
    cluster_a = cfg.model_copy(update={"cluster_id": "cluster-a-uid"})
    cluster_b = cfg.model_copy(update={"cluster_id": "cluster-b-uid"})
    a = Loop(MemorystoreBackend(cluster_a, retry=FAST_RETRY), make_fs(cluster_a), cluster_a)
    assert isinstance(asyncio.run(a.until(timeout=60)), Ready)
    inst = fake.instances()[0]
    assert inst.labels["featurestore-cluster"] == "cluster-a-uid"

    b = Loop(
        MemorystoreBackend(cluster_b, retry=FAST_RETRY),
        make_fs(cluster_b, uid="6f1c1c9e-0000-4000-8000-00000000000b"),
        cluster_b,
    )
    fake.clear_requests()
    out = asyncio.run(b.ensure())
    assert isinstance(out, Failed) and out.reason == "Conflict"
    deleted = asyncio.run(b.delete_until_done())
    assert deleted[-1].done and "left in place" in deleted[-1].message
    assert fake.count("UpdateInstance") == 0 and fake.count("DeleteInstance") == 0
    assert dict(fake.instances()[0].labels) == dict(inst.labels)


def test_existing_instance_is_used_verified_and_never_changed(fake, cfg, tmp_path):
    """Bring your own (issue 18 item 6): read, served, never updated or deleted."""
    fake.precreate(
        "terraform-redis",
        labels={"owner": "platform"},
        memory_size_gb=5,
        auth_enabled=True,
        transit_encryption_mode="SERVER_AUTHENTICATION",
    )
    cfg = assigned(cfg, "team-a", "terraform-redis", "nope")
    loop = Loop(MemorystoreBackend(cfg, retry=FAST_RETRY), make_fs(cfg, existing_instance="terraform-redis"), cfg)
    fake.clear_requests()
    out = asyncio.run(loop.ensure())
    assert isinstance(out, Ready) and "not managed" in out.message, out
    assert connect(out, tmp_path).ping()
    assert not loop.backend.needs_cleanup(loop.fs)
    deleted = asyncio.run(loop.delete_until_done())
    assert "left untouched" in deleted[-1].message
    assert {c.rpc for c in fake.calls()} <= {"GetInstance", "GetInstanceAuthString"}
    assert dict(fake.instances()[0].labels) == {"owner": "platform"}

    missing = Loop(MemorystoreBackend(cfg, retry=FAST_RETRY), make_fs(cfg, existing_instance="nope"), cfg)
    out = asyncio.run(missing.ensure())
    assert isinstance(out, Failed) and out.reason == "InstanceNotFound" and "existingInstance" in out.message
    assert len(fake.instances()) == 1


def test_changed_instance_id_retires_the_old_instance_by_its_policy(fake, cfg):
    """Before: changing instanceId created a second instance and left the first one running (billed)."""
    loop = Loop(MemorystoreBackend(cfg, retry=FAST_RETRY), make_fs(cfg, instance_id="n6-team-a-first"), cfg)
    assert isinstance(asyncio.run(loop.until(timeout=60)), Ready)
    loop.respec(cfg, instance_id="n6-team-a-second")
    out = asyncio.run(loop.until(timeout=60))
    assert isinstance(out, Ready), out
    ids = [i.name.rsplit("/", 1)[1] for i in fake.instances()]
    assert ids == ["n6-team-a-second"]
    assert "RetiredOldInstance" in reasons(loop.outcomes)
    assert loop.fs.status.cloud.memorystore.endswith("/n6-team-a-second")
    # Retain: the old instance stays, the record moves on
    loop.respec(cfg, instance_id="n6-team-a-third", deletion_policy="Retain")
    asyncio.run(loop.until(timeout=60))  # second-instance's recorded policy is Delete: deleted
    loop.respec(cfg, instance_id="n6-team-a-fourth", deletion_policy="Retain")
    assert isinstance(asyncio.run(loop.until(timeout=60)), Ready)
    assert sorted(i.name.rsplit("/", 1)[1] for i in fake.instances()) == ["n6-team-a-fourth", "n6-team-a-third"]


def test_invalid_spec_still_deletes_what_status_records(fake, cfg):
    """Before: a store whose spec became invalid lost its finalizer without any cloud clean-up."""
    from featurestore_operator.backends.recorded import recorded_store

    loop = Loop(MemorystoreBackend(cfg, retry=FAST_RETRY), make_fs(cfg), cfg)
    assert isinstance(asyncio.run(loop.until(timeout=60)), Ready)
    body = {
        "metadata": loop.fs.metadata.model_dump(),
        "spec": {"project": "x", "bogus": True},
        "status": loop.fs.status.model_dump(mode="json", by_alias=True),
    }
    stub = recorded_store(body)
    assert stub is not None and loop.backend.needs_cleanup(stub)
    loop.fs = stub
    asyncio.run(loop.delete_until_done(timeout=60))
    assert fake.instances() == []
    assert loop.fs.status.cloud.memorystore is None


# --------------------------------------------------------------------------- bring your own (issue 25)


def _victim(fake: MemorystoreFake, cfg: OperatorConfig) -> tuple[str, str]:
    """A store of namespace ``victim`` the operator created (Ready, TLS + AUTH): (instance id, password)."""
    loop = Loop(MemorystoreBackend(cfg, retry=FAST_RETRY), make_fs(cfg, name="prod", namespace="victim"), cfg)
    assert isinstance(asyncio.run(loop.until(timeout=60)), Ready)
    iid = memorystore_instance_id(loop.fs)
    password = fake.auth_string(iid)
    assert password
    return iid, password


def _attack(cfg: OperatorConfig, iid: str) -> Loop:
    return Loop(
        MemorystoreBackend(cfg, retry=FAST_RETRY),
        make_fs(
            cfg, name="thief", namespace="attacker", uid="6f1c1c9e-0000-4000-8000-0000000000aa", existing_instance=iid
        ),
        cfg,
    )


def _no_credential(out: Any, fake: MemorystoreFake, password: str) -> None:
    assert isinstance(out, Failed), out
    assert not getattr(out, "secret", None) and password not in repr(out)
    assert fake.count("GetInstanceAuthString") == 0, "the operator read another tenant's AUTH string"


def test_existing_instance_of_another_namespace_hands_out_no_password(fake, cfg, monkeypatch):
    """Before: the attacker named the victim's derived instance id as existingInstance and got Ready with
    the victim's AUTH string and CA (written into the attacker's namespace by reconcile)."""
    iid, password = _victim(fake, cfg)
    fake.clear_requests()
    attack = _attack(cfg, iid)
    out = asyncio.run(attack.ensure())
    _no_credential(out, fake, password)
    assert out.reason == "PolicyViolation" and "byoAssignments" in out.message, out

    # even when the pass's policy verdict (handed over by reconcile) says nothing
    from featurestore_operator.backends.policy import Verdict

    attack.ctx = dataclasses.replace(attack.ctx, verdict=Verdict())
    out = asyncio.run(attack.ensure())
    _no_credential(out, fake, password)
    assert "byoAssignments" in out.message and fake.count("GetInstance") == 0, "refused before any call"


def test_operator_created_instance_is_never_existing_for_another_namespace(fake, cfg):
    """Even an admin assignment that (by a wide pattern) covers another namespace's instance does not
    make the operator read its AUTH string: the owner labels name another namespace."""
    iid, password = _victim(fake, cfg)
    wide = config(fake.endpoint, byoAssignments={"*": {"instances": ["projects/*/locations/*/instances/*"]}})
    fake.clear_requests()
    out = asyncio.run(_attack(wide, iid).ensure())
    _no_credential(out, fake, password)
    assert out.reason == "NotAllowed" and "another namespace" in out.message, out
    assert "featurestore-uid" not in out.message, "no other tenant's owner labels in the message"


def test_existing_instance_without_auth_or_tls_is_refused_by_default(fake, cfg, tmp_path):
    fake.precreate("plain-redis", labels={"owner": "platform"})  # AUTH and TLS off
    out = asyncio.run(
        Loop(
            MemorystoreBackend(assigned(cfg, "team-a", "plain-redis"), retry=FAST_RETRY),
            make_fs(cfg, existing_instance="plain-redis"),
            cfg,
        ).ensure()
    )
    assert isinstance(out, Failed) and out.reason == "PolicyViolation", out
    assert "memorystoreSecurity.requireAuth" in out.message and "memorystoreSecurity.requireTls" in out.message
    assert "existingInstance" in out.message

    relaxed = assigned(cfg, "team-a", "plain-redis", memorystoreSecurity={"requireAuth": False, "requireTls": False})
    out = asyncio.run(
        Loop(
            MemorystoreBackend(relaxed, retry=FAST_RETRY), make_fs(cfg, existing_instance="plain-redis"), relaxed
        ).ensure()
    )
    assert isinstance(out, Ready) and connect(out, tmp_path).ping()
