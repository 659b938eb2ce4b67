"""Memorystore for Redis as the online store: create, converge, report, delete. Level-triggered.

One ``ensure`` pass looks at the world and takes at most ONE mutating step, never waiting for a
long-running operation (LRO); the operation's name goes into ``status.operations.memorystore``
and later passes poll it, so a restarted operator resumes where the last one stopped::

    status.operations.memorystore set   -> GET the operation: not done -> Pending (same reason as
                                           its verb); failed -> Failed (op cleared, so the next
                                           pass looks again); done -> clear it and go on below
    GET instance   NotFound             -> CreateInstance, record op -> Pending("Creating")
                   409 on create        -> Pending("Creating") (a create whose answer was lost:
                                           the deterministic id makes the retry a no-op)
    found, labels of another owner      -> Failed("Conflict"), never adopted, never touched
    found, labels of an earlier FeatureStore with our namespace/name (a Retain leftover)
                                        -> adopted: UpdateInstance(labels) -> Pending("Adopting")
    CREATING/UPDATING/REPAIRING/MAINTENANCE/IMPORTING/FAILING_OVER/DELETING
                                        -> Pending(Creating/Updating/Repairing/Maintenance/
                                           Importing/FailingOver/Deleting)
    READY, a mutable field differs      -> UpdateInstance (one field per operation: labels, then
                                           redisConfigs, then memorySizeGb), record op
                                           -> Pending("Updating")
    READY, in sync                      -> Ready(endpoint, secret={password, ca.crt})

Immutable fields (the table in ``api/immutable.py``, which the admission webhook also reads) that
differ from the instance are NOT an error outcome: the instance keeps serving exactly as it is,
so ensure returns **Ready** (endpoint and Secret of the *actual* instance) whose ``message``
starts with ``ImmutableFieldChanged:`` and names ``spec.onlineStore.memorystore.<field>``, the
current and the desired value and the fix (revert the field, or create a new FeatureStore). The
change is logged as a warning on every pass. Why not Failed: a Failed online store takes the
endpoint away from render, which would turn a working feature store into a broken one because
of an edit the operator can simply decline; the message keeps the declined change visible in
the OnlineStore/Ready conditions. ``authEnabled`` is mutable in the real API (gcloud
--enable-auth), but the test double (and the documented v1 update mask) does not cover it, so
it is treated as immutable here.

``redisConfigs``: unset in the spec means "not managed" (whatever the instance has is kept);
a map (also ``{}``) is the exact desired set. Labels: the owner labels are enforced, labels that
others added to the instance are kept.

Every client call is blocking, so it runs through :func:`.gcp.call` (worker thread + the shared
retry policy); errors map through :func:`.gcp.failure`, naming the call and the IAM permission.

The client uses the REST transport everywhere (also on GCP with Workload Identity's default
credentials), so production takes the same code path as the tests, and the error types are the
REST ones (Conflict for 409, Forbidden for 403, requests' Timeout) covered by ``gcp.TRANSIENT``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from google.api_core import exceptions as gexc

from ..api import DeletionPolicy, FeatureStore, OperatorConfig, immutable
from ..api.resolve import ResolvedMemorystore, memorystore_of
from ..api.spec import MemorystoreSpec
from ..api.status import CloudStatus, Operations
from ..render.inputs import OnlineEndpoint, SecretKey
from ..render.names import Names
from . import gcp, longop
from .base import BackendContext, Deleted, Failed, Outcome, Pending, Ready, StatusUpdate
from .naming import (
    LABEL_UID,
    existing_refusal,
    memorystore_instance_id,
    owner_labels,
    owner_text,
    ownership,
)
from .policy import byo_refusal, memorystore_security_refusal, refusal
from .recorded import retired_instance

if TYPE_CHECKING:  # the client module is imported lazily (first use), never at import time
    from google.cloud.redis_v1 import CloudRedisClient

log = logging.getLogger(__name__)

FIELD = "spec.onlineStore.memorystore"
PASSWORD_KEY = "password"
CA_KEY = "ca.crt"

#: Condition reason per non-READY instance state (all Pending).
STATE_REASONS = {
    "CREATING": "Creating",
    "UPDATING": "Updating",
    "REPAIRING": "Repairing",
    "MAINTENANCE": "Maintenance",
    "IMPORTING": "Importing",
    "FAILING_OVER": "FailingOver",
    "DELETING": "Deleting",
    "STATE_UNSPECIFIED": "Unknown",
}
#: status.operations once no operation is in flight, and while one is (its name and start time).
OPS_DONE = StatusUpdate(operations=Operations(memorystore=None, memorystore_start_time=None))


def _ops(op_name: str) -> StatusUpdate:
    return StatusUpdate(
        operations=Operations(memorystore=op_name, memorystore_start_time=longop.timestamp(longop.now()))
    )


#: Reason of a pending operation by its verb.
VERB_REASONS = {"create": "Creating", "update": "Updating", "delete": "Deleting"}
#: How soon a pending thing is worth looking at again (seconds). Creating takes minutes on GCP.
RETRY_CREATING = 20.0
RETRY_UPDATING = 15.0
RETRY_OTHER = 30.0
#: An operation this operator started is first looked at after FIRST_POLL seconds, then after half
#: of its age (from the operation's createTime), at most every RETRY_CREATING/RETRY_UPDATING: an
#: operation that takes D seconds is seen done at most ~D/2 (and at most the cap) after it
#: finished, for ~log2(2 * cap / FIRST_POLL) more GETs per operation than fixed intervals. Fixed
#: 15-20 s intervals added 12-17 s to every quick operation (bench/reconcile.py P5).
FIRST_POLL = 1.0

#: google.rpc.Code values of a failed operation that a retry will not fix.
_PERMANENT_CODES = {
    3: "INVALID_ARGUMENT",
    5: "NOT_FOUND",
    7: "PERMISSION_DENIED",
    9: "FAILED_PRECONDITION",
    11: "OUT_OF_RANGE",
    12: "UNIMPLEMENTED",
    16: "UNAUTHENTICATED",
}
_CODE_NAMES = {
    0: "OK",
    1: "CANCELLED",
    2: "UNKNOWN",
    4: "DEADLINE_EXCEEDED",
    6: "ALREADY_EXISTS",
    8: "RESOURCE_EXHAUSTED",
    10: "ABORTED",
    13: "INTERNAL",
    14: "UNAVAILABLE",
    15: "DATA_LOSS",
    **_PERMANENT_CODES,
}


def client_from_config(config: OperatorConfig | None) -> CloudRedisClient:
    """A CloudRedisClient (REST). ``config.memorystore_endpoint`` overrides the API endpoint
    (http:// endpoints get anonymous credentials: local fakes); otherwise Google's default
    endpoint with application-default credentials (Workload Identity of the operator's KSA)."""
    from google.cloud import redis_v1

    endpoint = config.memorystore_endpoint if config else None
    kwargs: dict[str, Any] = {"transport": "rest"}
    if endpoint:
        from google.api_core.client_options import ClientOptions

        kwargs["client_options"] = ClientOptions(api_endpoint=endpoint)
        if endpoint.startswith("http://"):
            from google.auth.credentials import AnonymousCredentials

            kwargs["credentials"] = AnonymousCredentials()
    return redis_v1.CloudRedisClient(**kwargs)


class MemorystoreBackend:
    """The online-store backend for ``spec.onlineStore.memorystore`` (see the module docstring).

    Args:
        config: the operator config (used to build the client unless ``client_factory`` is given).
        client_factory: builds the CloudRedisClient; called once, lazily, in a worker thread.
        retry: retry policy of each call (default :func:`.gcp.retry_policy`).
        rpc_timeout: per-attempt HTTP timeout of each call (seconds).
    """

    def __init__(
        self,
        config: OperatorConfig | None = None,
        *,
        client_factory: Callable[[], CloudRedisClient] | None = None,
        retry: Any = None,
        rpc_timeout: float = 30.0,
    ):
        self.config = config
        self._clients = gcp.LazyClients(client_factory or (lambda: client_from_config(config)))
        self._retry = retry
        self._timeout = rpc_timeout
        self._cluster = config.cluster_id if config else None

    # -- plumbing -----------------------------------------------------------------------------

    @property
    def _client(self) -> CloudRedisClient | None:
        """The client once built (it is built on the first call)."""
        return self._clients.peek()

    async def _rpc(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``client.<method>`` in a worker thread with the shared retry policy. The client's
        own retry is disabled (``retry=None``) so exactly one policy applies."""
        client = await self._clients.get()
        fn = functools.partial(getattr(client, method), retry=None, timeout=self._timeout)
        return await gcp.call(fn, *args, retry=self._retry or gcp.retry_policy(), **kwargs)

    @staticmethod
    def _client_failure(err: BaseException) -> Failed | None:
        """Failures of building the client itself (no credentials)."""
        from google.auth import exceptions as auth_exc

        if isinstance(err, auth_exc.DefaultCredentialsError):
            return Failed(
                "Unauthenticated",
                f"no GCP credentials for the Memorystore API: {err}. Give the operator's "
                "Kubernetes service account a Google service account through Workload Identity "
                "(annotation iam.gke.io/gcp-service-account).",
                retryable=False,
                retry_after=300,
            )
        return None

    @staticmethod
    def _names(fs: FeatureStore, ms: ResolvedMemorystore) -> tuple[str, str, str]:
        """(parent, instance id, instance name)."""
        parent = f"projects/{ms.project}/locations/{ms.region}"
        iid = memorystore_instance_id(fs)
        return parent, iid, f"{parent}/instances/{iid}"

    # -- ensure -------------------------------------------------------------------------------

    async def ensure(self, fs: FeatureStore, ctx: BackendContext) -> Outcome[OnlineEndpoint]:
        ms = memorystore_of(fs.spec)
        if ms is None:
            return Failed("InvalidSpec", UNRESOLVED)
        try:
            return await self._ensure(fs, ms, ctx)
        except Exception as err:  # noqa: BLE001 - credentials errors surface from the lazy client
            failed = self._client_failure(err)
            if failed is None:
                raise
            return failed

    async def _ensure(self, fs: FeatureStore, ms: ResolvedMemorystore, ctx: BackendContext) -> Outcome[OnlineEndpoint]:
        """The module docstring's table, one row per step; at most one mutating call."""
        parent, iid, name = self._names(fs, ms)
        refused = refusal(fs, ctx, self.config)
        if refused:  # checked here too: the webhook can be down or bypassed
            return Failed("PolicyViolation", f"refused by the admin policy: {refused}", retry_after=300)
        old = retired_instance(fs, name)
        if old is not None:  # instanceId/project/region changed: the old instance first, by its policy
            return await self._retire(old, name)
        if ms.spec.existing_instance:
            return await self._existing(fs, name)
        status = StatusUpdate()
        op_name = fs.status.operations.memorystore
        if op_name:
            polled = await self._poll(op_name, fs)
            if isinstance(polled, (Pending, Failed)):
                return polled
            status = OPS_DONE  # done: forget it, look at the instance
        try:
            inst = await self._rpc("get_instance", name=name)
        except gexc.NotFound:
            return await self._create(fs, ms.spec, parent, iid, name, status)
        except Exception as err:  # noqa: BLE001
            return _with_status(self._fail(err, f"get Memorystore instance {name}", "redis.instances.get"), status)
        return await self._converge(fs, ms.spec, inst, name, status)

    async def _converge(
        self, fs: FeatureStore, ms: MemorystoreSpec, inst: Any, name: str, status: StatusUpdate
    ) -> Outcome[OnlineEndpoint]:
        """An instance that exists: another owner's -> Conflict; not READY -> Pending by its state;
        a mutable field differs -> one update; else Ready."""
        labels = dict(inst.labels)
        owner = ownership(fs, labels, self._cluster)
        if owner == "foreign":
            return Failed(
                "Conflict",
                f"Memorystore instance {name} already exists and is not this FeatureStore's "
                f"({owner_text(labels, self._cluster)}); the operator never adopts it. Set another "
                f"{FIELD}.instanceId, or delete that instance.",
                retryable=False,
                retry_after=300,
                status=status,
            )
        waiting = _not_ready(inst, name, status)
        if waiting is not None:
            return waiting
        change = _mutable_change(ms, inst, {**labels, **owner_labels(fs, self._cluster)}, owner)
        if change:
            return await self._update(name, *change, adopting=owner == "retained", status=status)
        return await self._ready(fs, ms, inst, name, status)

    async def _retire(self, old: FeatureStore, name: str) -> Outcome[OnlineEndpoint]:
        old_ms = memorystore_of(old.spec)
        if old_ms is None:  # the record names no project/region: nothing the operator can reach
            return Failed("InvalidSpec", f"the recorded instance {old.status.cloud.memorystore}: {UNRESOLVED}")
        result = await self._delete(old, old_ms)
        recorded = old.status.cloud.memorystore
        if not result.done:
            return Pending(
                "RetiringOldInstance",
                f"the spec now names {name}: {result.message}",
                status=result.status,
                retry_after=result.retry_after,
            )
        return Pending(
            "RetiredOldInstance",
            f"the spec now names {name}; the old instance {recorded}: {result.message}",
            status=result.status | FORGET,
            retry_after=FIRST_POLL,
        )

    async def _existing(self, fs: FeatureStore, name: str) -> Outcome[OnlineEndpoint]:
        """``existingInstance`` (bring your own): read and verified, never modified or deleted. Only an
        instance the admin assigned to the namespace (policy.byoAssignments) is even read; its AUTH
        string is read only when it is not another namespace's and it has the AUTH/TLS the policy asks."""
        field = f"{FIELD}.existingInstance"
        refused = byo_refusal(fs, self.config)
        if refused:  # asked here, right before any call: whatever checked the spec before may be skipped
            return Failed("PolicyViolation", f"refused by the admin policy: {refused}", retry_after=300)
        try:
            inst = await self._rpc("get_instance", name=name)
        except gexc.NotFound:
            return Failed(
                "InstanceNotFound",
                f"{field}: Memorystore instance {name} does not exist; create it (in the "
                f"project and region of spec.gcp) or fix the id",
                retryable=True,
                retry_after=60,
            )
        except Exception as err:  # noqa: BLE001
            return self._fail(err, f"get Memorystore instance {name}", "redis.instances.get")
        if inst.name and inst.name != name:  # the API answers with the canonical name: same project and region
            return Failed(
                "NotAllowed", f"{field}: the API answered with instance {inst.name}, not {name}", retry_after=300
            )
        foreign = existing_refusal(fs, dict(inst.labels), self._cluster)
        if foreign:
            return Failed("NotAllowed", f"{field}: Memorystore instance {name}: {foreign}", retry_after=300)
        tls = inst.transit_encryption_mode.name == "SERVER_AUTHENTICATION"
        insecure = memorystore_security_refusal(self.config, auth=bool(inst.auth_enabled), tls=tls)
        if insecure:
            return Failed(
                "PolicyViolation",
                f"Memorystore instance {name}: refused by the admin policy: {insecure}",
                retry_after=300,
            )
        if inst.state.name != "READY":
            return Pending(
                STATE_REASONS.get(inst.state.name, "Unknown"),
                f"existing Memorystore instance {name} is {inst.state.name}",
                retry_after=RETRY_OTHER,
            )
        return await self._ready(fs, None, inst, name, StatusUpdate())

    async def _create(
        self, fs: FeatureStore, ms: MemorystoreSpec, parent: str, iid: str, name: str, status: StatusUpdate
    ) -> Outcome[OnlineEndpoint]:
        from google.cloud import redis_v1

        display = f"Feast online store {fs.metadata.namespace}/{fs.metadata.name}"[:80]
        instance = redis_v1.Instance(
            display_name=display,
            labels=owner_labels(fs, self._cluster),
            tier=ms.tier.value,
            memory_size_gb=ms.memory_size_gb,
            redis_version=ms.redis_version,
            authorized_network=ms.network or "",
            connect_mode=ms.connect_mode.value,
            auth_enabled=ms.auth_enabled,
            transit_encryption_mode="SERVER_AUTHENTICATION" if ms.transit_encryption else "DISABLED",
            redis_configs=dict(ms.redis_configs or {}),
        )
        try:
            op = await self._rpc("create_instance", parent=parent, instance_id=iid, instance=instance)
        except gexc.Conflict:
            # It exists: an earlier create whose answer was lost (or a retry of this one after a
            # timeout). Nothing to record; the next pass GETs it and follows its state.
            return Pending(
                "Creating",
                f"Memorystore instance {name} already exists (an earlier create); following its state",
                status=status,
                retry_after=RETRY_CREATING / 4,
            )
        except Exception as err:  # noqa: BLE001
            return _with_status(
                self._fail(err, f"create Memorystore instance {name}", "redis.instances.create"), status
            )
        op_name = op.operation.name
        log.info(
            "creating Memorystore instance %s (%s, %s GB, %s); operation %s",
            name,
            ms.tier.value,
            ms.memory_size_gb,
            ms.redis_version,
            op_name,
        )
        return Pending(
            "Creating",
            f"Memorystore instance {name}: {longop.progress('memorystore', 'create', longop.now(), longop.now())}; "
            f"operation {op_name}",
            status=status | _ops(op_name) | _record(fs, ms, name),
            retry_after=FIRST_POLL,
        )

    async def _update(
        self, name: str, path: str, fields: dict[str, Any], what: str, *, adopting: bool, status: StatusUpdate
    ) -> Outcome[OnlineEndpoint]:
        from google.cloud import redis_v1
        from google.protobuf import field_mask_pb2

        reason = "Adopting" if adopting else "Updating"
        try:
            op = await self._rpc(
                "update_instance",
                update_mask=field_mask_pb2.FieldMask(paths=[path]),
                instance=redis_v1.Instance(name=name, **fields),
            )
        except (gexc.BadRequest, gexc.FailedPrecondition) as err:
            # A retried update whose first answer was lost finds the instance UPDATING (400):
            # that is progress, not an error. Anything else is a real rejection.
            try:
                again = await self._rpc("get_instance", name=name)
            except Exception:  # noqa: BLE001
                again = None
            if again is not None and again.state.name != "READY":
                return Pending(
                    STATE_REASONS.get(again.state.name, "Updating"),
                    f"Memorystore instance {name} is {again.state.name} ({what})",
                    status=status,
                    retry_after=RETRY_UPDATING,
                )
            return _with_status(
                self._fail(err, f"update Memorystore instance {name} ({what})", "redis.instances.update"), status
            )
        except Exception as err:  # noqa: BLE001
            return _with_status(
                self._fail(err, f"update Memorystore instance {name} ({what})", "redis.instances.update"), status
            )
        op_name = op.operation.name
        log.info("updating Memorystore instance %s: %s; operation %s", name, what, op_name)
        started = longop.now()
        return Pending(
            reason,
            f"Memorystore instance {name}: {longop.progress('memorystore', 'update', started, started)} "
            f"({what}); operation {op_name}",
            status=status | _ops(op_name),
            retry_after=FIRST_POLL,
        )

    async def _ready(
        self,
        fs: FeatureStore,
        ms: MemorystoreSpec | None,
        inst: Any,
        name: str,
        status: StatusUpdate,
    ) -> Outcome[OnlineEndpoint]:
        """``ms``: the managed instance's spec (None: an existing instance, compared with nothing)."""
        from google.cloud import redis_v1

        tls = inst.transit_encryption_mode == redis_v1.Instance.TransitEncryptionMode.SERVER_AUTHENTICATION
        if not inst.host or not inst.port:
            return Pending(
                "Provisioning",
                f"Memorystore instance {name} is READY but has no address yet",
                status=status,
                retry_after=RETRY_OTHER,
            )
        secret = await self._secret_data(inst, name, tls, status)
        if not isinstance(secret, dict):
            return secret
        secret_name = Names(fs).online_secret
        endpoint = OnlineEndpoint(
            host=inst.host,
            port=inst.port,
            tls=tls,
            password=SecretKey(secret_name, PASSWORD_KEY) if inst.auth_enabled else None,
            ca=SecretKey(secret_name, CA_KEY) if tls else None,
        )
        ignored = _immutable_changes(ms, inst) if ms is not None else []
        message = _ready_message(name, endpoint, managed=ms is not None, ignored=ignored)
        if ignored:
            log.warning("%s/%s: Memorystore instance %s: %s", fs.metadata.namespace, fs.metadata.name, name, message)
        if ms is not None:
            status = status | _record(fs, ms, name)
        return Ready(
            endpoint,
            message=message,
            secret=secret or None,
            status=status,
            reason="ImmutableFieldChanged" if ignored else "Ready",
        )

    async def _secret_data(
        self, inst: Any, name: str, tls: bool, status: StatusUpdate
    ) -> dict[str, str] | Pending | Failed:
        """What the online-store Secret holds (the CA certificates, the AUTH string), or why not yet."""
        secret: dict[str, str] = {}
        if tls:
            pems = [c.cert.strip() for c in inst.server_ca_certs if c.cert.strip()]
            if not pems:
                return Pending(
                    "Provisioning",
                    f"Memorystore instance {name} is READY but has no serverCaCerts yet",
                    status=status,
                    retry_after=RETRY_OTHER,
                )
            secret[CA_KEY] = "\n".join(pems) + "\n"
        if not inst.auth_enabled:
            return secret
        try:
            auth = await self._rpc("get_instance_auth_string", name=name)
        except gexc.NotFound:  # deleted between the two calls: the next pass sees what happened
            return Pending(
                "Provisioning",
                f"Memorystore instance {name} disappeared while reading its AUTH string; looking again",
                status=status,
                retry_after=RETRY_UPDATING,
            )
        except Exception as err:  # noqa: BLE001
            what = f"get the AUTH string of Memorystore instance {name}"
            return _with_status(self._fail(err, what, "redis.instances.getAuthString"), status)
        secret[PASSWORD_KEY] = auth.auth_string
        return secret

    async def _poll(self, op_name: str, fs: FeatureStore) -> Pending | Failed | None:
        """None when the operation is done (successfully, or gone); else the outcome to return.
        Pending messages show the elapsed minutes and the typical duration (backends/longop.py)."""
        try:
            op = await self._rpc("get_operation", {"name": op_name})
        except gexc.NotFound:
            log.info("Memorystore operation %s no longer exists; looking at the instance", op_name)
            return None
        except Exception as err:  # noqa: BLE001
            return self._fail(err, f"get Memorystore operation {op_name}", "redis.operations.get")
        verb, target = _op_metadata(op)
        started = longop.parse_timestamp(fs.status.operations.memorystore_start_time) or _op_created(op)
        at = longop.now()
        if not op.done:
            return Pending(
                VERB_REASONS.get(verb, "Updating"),
                f"Memorystore instance {target or '(unknown)'}: {longop.progress('memorystore', verb, started, at)}; "
                f"operation {op_name}",
                retry_after=_poll_after(op, RETRY_CREATING if verb == "create" else RETRY_UPDATING),
            )
        failed = op.HasField("error") and op.error.code
        longop.record_duration("memorystore", verb, "failed" if failed else "done", started, at)
        if failed:
            code = op.error.code
            log.warning("Memorystore operation %s (%s %s) failed: %s %s", op_name, verb, target, code, op.error.message)
            return Failed(
                f"{(verb or 'operation').capitalize()}Failed",
                f"Memorystore {verb or 'operation'} of {target or 'the instance'} failed "
                f"({_CODE_NAMES.get(code, code)}): {op.error.message} (operation {op_name})",
                retryable=code not in _PERMANENT_CODES,
                retry_after=60 if code not in _PERMANENT_CODES else 300,
                status=OPS_DONE,  # the next pass looks at the instance again
            )
        return None

    @staticmethod
    def _fail(err: BaseException, what: str, permission: str) -> Failed:
        return MemorystoreBackend._client_failure(err) or gcp.failure(err, what, permission)

    # -- delete -------------------------------------------------------------------------------

    def needs_cleanup(self, fs: FeatureStore) -> bool:
        ms = fs.spec.online_store.memorystore if fs.spec.online_store else None
        return bool(ms and not ms.existing_instance and ms.deletion_policy is DeletionPolicy.DELETE)

    async def delete(self, fs: FeatureStore, ctx: BackendContext) -> Deleted:
        ms = memorystore_of(fs.spec)
        if ms is None:
            return Deleted(False, UNRESOLVED, retry_after=300)
        try:
            result = await self._delete(fs, ms)
            if result.done and fs.status.cloud.memorystore == self._names(fs, ms)[2]:
                return Deleted(True, result.message, status=result.status | FORGET)
            return result
        except Exception as err:  # noqa: BLE001
            failed = self._client_failure(err)
            if failed is None:
                raise
            return Deleted(False, failed.message, retry_after=failed.retry_after)

    async def _delete(self, fs: FeatureStore, target: ResolvedMemorystore) -> Deleted:
        _, _, name = self._names(fs, target)
        ms = target.spec
        if ms.existing_instance:
            return Deleted(True, f"existing Memorystore instance {name} left untouched (bring your own)")
        if ms.deletion_policy is DeletionPolicy.RETAIN:
            log.info("Memorystore instance %s retained (deletionPolicy Retain)", name)
            return Deleted(True, f"Memorystore instance {name} retained (deletionPolicy Retain)")

        status = StatusUpdate()
        note = ""
        op_name = fs.status.operations.memorystore
        if op_name:
            polled = await self._poll(op_name, fs)
            if isinstance(polled, Pending):
                return Deleted(False, polled.message, retry_after=polled.retry_after)
            if isinstance(polled, Failed):
                if not polled.status:  # could not poll it (transient, permission): try again later
                    return Deleted(False, polled.message, retry_after=polled.retry_after)
                note = f" (after: {polled.message})"
            status = OPS_DONE

        return await self._delete_instance(fs, name, status, note)

    async def _delete_instance(self, fs: FeatureStore, name: str, status: StatusUpdate, note: str) -> Deleted:
        """No operation in flight: delete the instance if it is ours and idle."""
        try:
            inst = await self._rpc("get_instance", name=name)
        except gexc.NotFound:
            return Deleted(True, f"Memorystore instance {name} deleted{note}", status=status)
        except Exception as err:  # noqa: BLE001
            f = self._fail(err, f"get Memorystore instance {name}", "redis.instances.get")
            return Deleted(False, f.message, status=status, retry_after=f.retry_after)

        labels = dict(inst.labels)
        owner = ownership(fs, labels, self._cluster)
        if owner != "ours":
            why = (
                "belongs to someone else"
                if owner == "foreign"
                else "was retained from an earlier FeatureStore of this name and never adopted"
            )
            return Deleted(
                True,
                f"Memorystore instance {name} left in place: it {why} ({owner_text(labels, self._cluster)})",
                status=status,
            )
        state = inst.state.name
        if state == "DELETING":
            return Deleted(
                False, f"Memorystore instance {name} is being deleted", status=status, retry_after=RETRY_UPDATING
            )
        if state in ("CREATING", "UPDATING"):  # an operation of ours is running: let it finish first
            return Deleted(
                False,
                f"Memorystore instance {name} is {state}; deleting it once that finishes",
                status=status,
                retry_after=RETRY_UPDATING,
            )
        try:
            op = await self._rpc("delete_instance", name=name)
        except gexc.NotFound:
            return Deleted(True, f"Memorystore instance {name} deleted", status=status)
        except (gexc.BadRequest, gexc.FailedPrecondition) as err:
            # e.g. a retried delete whose first answer was lost ("already being deleted")
            return Deleted(
                False,
                f"Memorystore instance {name}: delete not accepted yet: {err.message}",
                status=status,
                retry_after=RETRY_OTHER,
            )
        except Exception as err:  # noqa: BLE001
            f = self._fail(err, f"delete Memorystore instance {name}", "redis.instances.delete")
            return Deleted(False, f.message, status=status, retry_after=f.retry_after)
        log.info("deleting Memorystore instance %s; operation %s", name, op.operation.name)
        return Deleted(
            False,
            f"deleting Memorystore instance {name}{note}; operation {op.operation.name}",
            status=_ops(op.operation.name),
            retry_after=FIRST_POLL,
        )


# -- helpers ------------------------------------------------------------------------------------

#: Status update that drops the record of the instance (status.cloud).
FORGET = StatusUpdate(cloud=CloudStatus(memorystore=None, memorystore_deletion_policy=None))


def _record(fs: FeatureStore, ms: MemorystoreSpec, name: str) -> StatusUpdate:
    """Status update recording the instance the operator created (clean-up works from it); empty when
    status already says so (an unchanged store writes nothing)."""
    record = CloudStatus.model_validate({"memorystore": name, "memorystoreDeletionPolicy": ms.deletion_policy.value})
    rec = fs.status.cloud
    if (rec.memorystore, rec.memorystore_deletion_policy) == (record.memorystore, record.memorystore_deletion_policy):
        return StatusUpdate()
    return StatusUpdate(cloud=record)


#: A store without spec.onlineStore.memorystore, project or region: resolve() guarantees them, so
#: only a caller that skipped it gets this.
UNRESOLVED = "needs spec.onlineStore.memorystore and spec.gcp.project/region (resolve() the spec first)"


def _ready_message(name: str, endpoint: OnlineEndpoint, *, managed: bool, ignored: list[str]) -> str:
    if not managed:
        return f"existing Memorystore instance {name} at {endpoint.address} (not managed: never modified or deleted)"
    if ignored:
        return (
            "ImmutableFieldChanged: " + "; ".join(ignored) + ". The instance keeps serving unchanged; "
            "revert the field(s), or create a new FeatureStore (a new instance) and re-materialize."
        )
    return f"Memorystore instance {name} at {endpoint.address}" + (" (TLS)" if endpoint.tls else "")


def _not_ready(inst: Any, name: str, status: StatusUpdate) -> Pending | None:
    """The table's non-READY rows: Pending with the state's reason (None: READY)."""
    state = inst.state.name
    if state == "READY":
        return None
    reason = STATE_REASONS.get(state, "Unknown")
    detail = f": {inst.status_message}" if inst.status_message else ""
    what = {"DELETING": "is being deleted; it is created again once it is gone"}.get(state, f"is {state}")
    retry = RETRY_CREATING if state == "CREATING" else RETRY_UPDATING if state == "UPDATING" else RETRY_OTHER
    return Pending(reason, f"Memorystore instance {name} {what}{detail}", status=status, retry_after=retry)


def _mutable_change(
    ms: MemorystoreSpec, inst: Any, want_labels: dict[str, str], owner: str
) -> tuple[str, dict[str, Any], str] | None:
    """The table's "a mutable field differs" row: (update mask path, fields, what) of the first
    difference, one field per operation: labels (adoption first), then redisConfigs, then memorySizeGb."""
    labels = dict(inst.labels)
    if want_labels != labels:
        what = (
            f"taking over retained instance (previous featurestore-uid {labels.get(LABEL_UID)!r})"
            if owner == "retained"
            else "restoring the owner labels"
        )
        return "labels", {"labels": want_labels}, what
    if ms.redis_configs is not None and dict(ms.redis_configs) != dict(inst.redis_configs):
        return (
            "redis_configs",
            {"redis_configs": dict(ms.redis_configs)},
            f"redisConfigs {dict(inst.redis_configs)} -> {dict(ms.redis_configs)}",
        )
    if ms.memory_size_gb != inst.memory_size_gb:
        return (
            "memory_size_gb",
            {"memory_size_gb": ms.memory_size_gb},
            f"memorySizeGb {inst.memory_size_gb} -> {ms.memory_size_gb}",
        )
    return None


def _with_status(outcome: Failed, status: StatusUpdate) -> Failed:
    if not status:
        return outcome
    return Failed(outcome.reason, outcome.message, outcome.retryable, outcome.status | status, outcome.retry_after)


def _poll_after(op: Any, cap: float) -> float:
    """Seconds until a pending operation is worth another GET (see FIRST_POLL)."""
    age = _op_age(op)
    return cap if age is None else min(cap, max(FIRST_POLL, age / 2))


def _op_age(op: Any) -> float | None:
    """Seconds since the operation was created (its metadata's createTime), None if unknown."""
    created = _op_created(op)
    return None if created is None else (longop.now() - created).total_seconds()


def _op_created(op: Any) -> Any:
    """The operation's metadata createTime (a UTC datetime), None if unknown."""
    try:
        import datetime as dt

        from google.cloud import redis_v1

        md = redis_v1.OperationMetadata.pb()()
        if op.HasField("metadata") and op.metadata.Unpack(md) and md.HasField("create_time"):
            return md.create_time.ToDatetime(tzinfo=dt.UTC)
    except Exception:  # noqa: BLE001 - informative only: fall back to the fixed interval
        pass
    return None


def _op_metadata(op: Any) -> tuple[str, str]:
    """(verb, target) of a google.longrunning.Operation with redis OperationMetadata."""
    try:
        from google.cloud import redis_v1

        md = redis_v1.OperationMetadata.pb()()
        if op.HasField("metadata") and op.metadata.Unpack(md):
            return md.verb, md.target
    except Exception:  # noqa: BLE001 - metadata is informative only
        pass
    return "", ""


#: How each immutable field (the table: api/immutable.py) reads on an instance.
OBSERVED: dict[str, Callable[[Any], object]] = {
    "tier": lambda inst: inst.tier.name,
    "connectMode": lambda inst: inst.connect_mode.name,
    "network": lambda inst: inst.authorized_network,
    "transitEncryption": lambda inst: inst.transit_encryption_mode.name == "SERVER_AUTHENTICATION",
    "authEnabled": lambda inst: bool(inst.auth_enabled),
    "redisVersion": lambda inst: inst.redis_version,
}


def _immutable_changes(ms: MemorystoreSpec, inst: Any) -> list[str]:
    """Human-readable differences between the spec and the instance in fields that cannot change."""
    have = {r.field: r.norm(OBSERVED[r.field](inst)) for r in immutable.rows(immutable.MEMORYSTORE)}
    return [
        f"{path} cannot be changed on an existing instance: it is {was}, the spec asks for {want}"
        for path, was, want in immutable.differences(immutable.MEMORYSTORE, ms, have)
    ]
