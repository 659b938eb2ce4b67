"""A local fake of the Cloud Memorystore for Redis v1 REST API, backed by real redis-server.

Memorystore's admin API has no emulator. This fake serves the REST surface that
``google.cloud.redis_v1.CloudRedisClient(transport="rest")`` uses, on a loopback port, from a
background thread (so it works in-process under pytest)::

    with MemorystoreFake() as fake:
        client = fake.client()   # CloudRedisClient(transport="rest", endpoint=fake.endpoint,
                                 #                  credentials=AnonymousCredentials())
        op = client.create_instance(parent="projects/p/locations/us-central1",
                                    instance_id="fs-1",
                                    instance={"tier": "BASIC", "memory_size_gb": 1,
                                              "auth_enabled": True,
                                              "transit_encryption_mode": "SERVER_AUTHENTICATION"})
        inst = op.result(timeout=30)          # host/port of a REAL redis-server (TLS + AUTH)
        pw = client.get_instance_auth_string(name=inst.name).auth_string

Fidelity notes (checked against google-cloud-redis 2.23's rest transport):

* Requests arrive as camelCase JSON; the client sends ``$alt=json;enum-encoding=int`` and
  enums as integers. The fake parses bodies with the real protobuf classes (unknown fields ->
  400) and answers with integer enums when asked (names otherwise), like Google's frontends.
* Long-running operations: ``projects/P/locations/L/operations/operation-...``; ``metadata``
  is a ``google.cloud.redis.v1.OperationMetadata``; the finished operation carries
  ``response`` typed ``google.cloud.redis.v1.Instance`` (``google.protobuf.Empty`` for delete)
  or ``error`` (google.rpc.Status). Operations finish ``op_delay`` seconds after the request;
  progress is evaluated lazily on every request (and by the helper methods), no timer thread.
* While CREATING the instance has no host/port/serverCaCerts (as on GCP); they appear at READY.
* Errors use Google's JSON error shape ``{"error": {"code", "message", "status"}}``. Over REST,
  google-api-core maps errors by HTTP status only: a 409 ALREADY_EXISTS becomes
  ``exceptions.Conflict`` (NOT the gRPC-only subclass ``AlreadyExists``), 403 becomes
  ``Forbidden`` (not ``PermissionDenied``), 400 FAILED_PRECONDITION becomes ``BadRequest``.
* Guesses (not verified against GCP): updating a non-READY instance and deleting a DELETING
  instance answer 400 FAILED_PRECONDITION; getAuthString on an instance without AUTH answers
  400 FAILED_PRECONDITION.

Each instance is backed by a real :class:`~redis_server.RedisServer` (TLS when
``transitEncryptionMode`` is SERVER_AUTHENTICATION, ``--requirepass`` = the AUTH string when
``authEnabled``; CONFIG is renamed away as on Memorystore). ``memorySizeGb`` becomes
``maxmemory``; ``redisConfigs`` are validated against Memorystore's allow-list and applied.

Fault injection (all deterministic for a given ``seed``): ``fail_rate`` (+ ``fail_codes``,
``fail_rpcs``), ``fail_next(...)``, ``delay`` (+ ``delay_rpcs``, ``delay_before_apply``),
``forbid`` (RPC names answered 403). Every request is recorded in :attr:`requests`.
RPC names used by the knobs: CreateInstance, GetInstance, ListInstances, UpdateInstance,
DeleteInstance, GetInstanceAuthString, GetOperation, ListOperations, DeleteOperation,
CancelOperation (case/underscore-insensitive: ``create_instance`` works too).
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
import random
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from google.cloud import redis_v1
from google.longrunning import operations_pb2
from google.protobuf import empty_pb2, json_format, timestamp_pb2
from google.rpc import status_pb2

try:  # imported as tests.support.memorystore_fake
    from .redis_server import RedisServer, generate_tls_material
except ImportError:  # imported with tests/support on sys.path
    from redis_server import RedisServer, generate_tls_material  # type: ignore[no-redef]

__all__ = ["MemorystoreFake", "RecordedRequest", "ApiError"]

InstancePb = redis_v1.Instance.pb()
TlsCertificatePb = redis_v1.TlsCertificate.pb()
OperationMetadataPb = redis_v1.OperationMetadata.pb()
State = redis_v1.Instance.State
Tier = redis_v1.Instance.Tier
TransitEncryptionMode = redis_v1.Instance.TransitEncryptionMode
ConnectMode = redis_v1.Instance.ConnectMode

_HTTP_FOR_STATUS = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "INTERNAL": 500,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}
_STATUS_FOR_HTTP = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_GRPC_CODE = {
    "OK": 0,
    "CANCELLED": 1,
    "UNKNOWN": 2,
    "INVALID_ARGUMENT": 3,
    "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6,
    "PERMISSION_DENIED": 7,
    "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9,
    "ABORTED": 10,
    "OUT_OF_RANGE": 11,
    "UNIMPLEMENTED": 12,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
    "DATA_LOSS": 15,
    "UNAUTHENTICATED": 16,
}

# Memorystore instance ids: 1-40 chars, lowercase letters/digits/hyphens, start with a letter,
# not ending with a hyphen.
_INSTANCE_ID_RE = re.compile(r"^[a-z](?:[a-z0-9-]{0,38}[a-z0-9])?$")
# GCP label rules (keys must start with a lowercase letter; international chars omitted).
_LABEL_KEY_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE_RE = re.compile(r"^[a-z0-9_-]{0,63}$")
# redisConfigs Memorystore accepts (v1 docs), value checked by redis itself on apply.
ALLOWED_REDIS_CONFIGS = frozenset(
    {
        "maxmemory-gb",
        "maxmemory-policy",
        "notify-keyspace-events",
        "activedefrag",
        "lfu-decay-time",
        "lfu-log-factor",
        "maxmemory-clients",
        "stream-node-max-bytes",
        "stream-node-max-entries",
        "lazyfree-lazy-eviction",
        "lazyfree-lazy-expire",
        "lazyfree-lazy-user-del",
        "lazyfree-lazy-user-flush",
        "maxclients",
        "active-expire-effort",
        "close-on-replica-write",
    }
)
# update_mask paths UpdateInstance accepts; memory_size_gb and redis_configs are applied to the
# real redis-server, the others are stored only.
_UPDATABLE = {
    "display_name",
    "labels",
    "memory_size_gb",
    "redis_configs",
    "replica_count",
    "read_replicas_mode",
    "maintenance_policy",
    "persistence_config",
    "secondary_ip_range",
}
_RPC_NAMES = [
    "CreateInstance",
    "GetInstance",
    "ListInstances",
    "UpdateInstance",
    "DeleteInstance",
    "GetInstanceAuthString",
    "GetOperation",
    "ListOperations",
    "DeleteOperation",
    "CancelOperation",
    "Unknown",
]


def _norm_rpc(name: str) -> str:
    key = name.replace("_", "").lower()
    for n in _RPC_NAMES:
        if n.lower() == key:
            return n
    raise ValueError(f"unknown RPC name {name!r}; one of {_RPC_NAMES}")


def _camel_to_snake(s: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", s).lower()


class ApiError(Exception):
    """An error answered with Google's JSON error shape."""

    def __init__(self, status: str, message: str, http: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.http = http or _HTTP_FOR_STATUS.get(status, 500)

    def payload(self) -> dict:
        return {"error": {"code": self.http, "message": self.message, "status": self.status}}


@dataclass
class RecordedRequest:
    """One HTTP request the fake received (``body`` is parsed JSON or None)."""

    method: str
    path: str
    query: dict
    body: Any
    rpc: str
    time: float = field(default_factory=time.time)
    status: int | None = None  # HTTP status answered (None while in flight)
    injected: str | None = None  # "forbid" | "fail" | "fail-after-apply" | "delay"


@dataclass
class _Instance:
    pb: Any  # google.cloud.redis.v1.Instance (raw protobuf)
    project: str
    location: str
    instance_id: str
    redis: RedisServer | None = None
    auth_string: str | None = None
    visible: dict = field(default_factory=dict)  # host/port/certs revealed at READY


@dataclass
class _Operation:
    pb: Any  # google.longrunning.Operation
    finish_at: float
    on_done: Callable[[], Any] | None = None  # returns response message (or raises ApiError)


@dataclass
class _ScheduledFault:
    remaining: int
    status: int
    rpc: str | None
    after_apply: bool


_PLACEHOLDER_CA: list[str] = []


def _placeholder_ca_pem() -> str:
    if not _PLACEHOLDER_CA:
        with tempfile.TemporaryDirectory() as d:
            _PLACEHOLDER_CA.append(generate_tls_material(d).ca_pem)
    return _PLACEHOLDER_CA[0]


def _now_ts() -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.GetCurrentTime()
    return ts


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "MemorystoreFake/1"

    def log_message(self, fmt, *args):  # keep pytest output quiet
        pass

    def _handle(self) -> None:
        self.server.fake._serve(self)  # type: ignore[attr-defined]

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _handle


class MemorystoreFake:
    """Fake Cloud Redis v1 REST API; see the module docstring.

    Args:
        op_delay: seconds until a long-running operation is done (CREATING/UPDATING/DELETING).
        fail_rate: fraction of requests (of ``fail_rpcs``, default all) answered with an error
            picked from ``fail_codes`` (429/500/503) before being applied.
        delay: seconds to hold each response (of ``delay_rpcs``, default all): use a value
            larger than the client's ``timeout=`` to provoke client timeouts. By default the
            request is applied first and the answer is late (``delay_before_apply=False``).
        forbid: RPC names answered with 403 PERMISSION_DENIED.
        seed: seed of the fault RNG.
        real_redis: back instances with real redis-server processes (False: fake addresses
            10.x.x.x:6379, for pure control-plane tests).
        default_project/default_location: used by helpers when a bare instance id is given.
        host/port: where the REST API listens; redis_host: where the instances' redis-servers
            listen (default: host), and the address their certificates name and GetInstance reports.
    """

    def __init__(
        self,
        *,
        op_delay: float = 0.3,
        fail_rate: float = 0.0,
        fail_codes: Iterable[int] = (429, 500, 503),
        fail_rpcs: Iterable[str] | None = None,
        delay: float = 0.0,
        delay_rpcs: Iterable[str] | None = None,
        delay_before_apply: bool = False,
        forbid: Iterable[str] = (),
        seed: int = 0,
        real_redis: bool = True,
        default_project: str = "test-project",
        default_location: str = "us-central1",
        host: str = "127.0.0.1",
        port: int = 0,
        redis_host: str | None = None,
    ) -> None:
        self.op_delay = op_delay
        self.fail_rate = fail_rate
        self.fail_codes = list(fail_codes)
        self.fail_rpcs = {_norm_rpc(r) for r in fail_rpcs} if fail_rpcs else None
        self.delay = delay
        self.delay_rpcs = {_norm_rpc(r) for r in delay_rpcs} if delay_rpcs else None
        self.delay_before_apply = delay_before_apply
        self.forbid = {_norm_rpc(r) for r in forbid}
        self.real_redis = real_redis
        self.default_project = default_project
        self.default_location = default_location
        self.requests: list[RecordedRequest] = []
        self._rng = random.Random(seed)
        self._host, self._port = host, port
        self._redis_host = redis_host or host
        self._lock = threading.RLock()
        self._instances: dict[str, _Instance] = {}
        self._ops: dict[str, _Operation] = {}
        self._scheduled: list[_ScheduledFault] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> MemorystoreFake:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = ThreadingHTTPServer((self._host, self._port), _Handler)
        httpd.daemon_threads = True
        httpd.fake = self  # type: ignore[attr-defined]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="memorystore-fake", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and stop every backing redis-server."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        with self._lock:
            for inst in self._instances.values():
                if inst.redis is not None:
                    inst.redis.stop()
                    inst.redis = None
            self._instances.clear()
            self._ops.clear()

    def __enter__(self) -> MemorystoreFake:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "not started"
        return self._httpd.server_address[1]

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:P`` — the ``api_endpoint`` for ClientOptions."""
        return f"http://{self._host}:{self.port}"

    def client(self, **kwargs) -> redis_v1.CloudRedisClient:
        """A real ``CloudRedisClient`` (REST transport, anonymous) pointed at this fake."""
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials

        kwargs.setdefault("transport", "rest")
        kwargs.setdefault("credentials", AnonymousCredentials())
        kwargs.setdefault("client_options", ClientOptions(api_endpoint=self.endpoint))
        return redis_v1.CloudRedisClient(**kwargs)

    # ------------------------------------------------------------------ test helpers
    @staticmethod
    def instance_name(project: str, location: str, instance_id: str) -> str:
        return f"projects/{project}/locations/{location}/instances/{instance_id}"

    def parent(self, project: str | None = None, location: str | None = None) -> str:
        return f"projects/{project or self.default_project}/locations/{location or self.default_location}"

    def calls(self, rpc: str | None = None) -> list[RecordedRequest]:
        """Recorded requests, optionally only those of one RPC (e.g. ``"CreateInstance"``)."""
        with self._lock:
            if rpc is None:
                return list(self.requests)
            r = _norm_rpc(rpc)
            return [q for q in self.requests if q.rpc == r]

    def count(self, rpc: str, *, status: int | None = None) -> int:
        return sum(1 for q in self.calls(rpc) if status is None or q.status == status)

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def fail_next(self, n: int = 1, *, status: int = 503, rpc: str | None = None, after_apply: bool = False) -> None:
        """Answer the next ``n`` requests (of ``rpc``) with ``status``. ``after_apply=True``:
        apply the request first, then lose the answer (a crash/timeout after the side effect)."""
        with self._lock:
            self._scheduled.append(_ScheduledFault(n, status, _norm_rpc(rpc) if rpc else None, after_apply))

    def reset_faults(self) -> None:
        with self._lock:
            self.fail_rate = 0.0
            self.delay = 0.0
            self.forbid = set()
            self._scheduled.clear()

    def advance(self) -> None:
        """Finish every operation whose delay has passed."""
        with self._lock:
            self._advance()

    def complete_all(self) -> None:
        """Finish every pending operation now, regardless of ``op_delay``."""
        with self._lock:
            for op in self._ops.values():
                if not op.pb.done:
                    op.finish_at = 0.0
            self._advance()

    def instances(self) -> list[redis_v1.Instance]:
        with self._lock:
            self._advance()
            return [self._public(i) for i in self._instances.values()]

    def instance(self, key: str) -> redis_v1.Instance | None:
        """Current state (as the API would show it) of an instance, by full name or bare id."""
        with self._lock:
            self._advance()
            inst = self._find(key)
            return self._public(inst) if inst else None

    def redis_server(self, key: str) -> RedisServer | None:
        """The real redis-server behind an instance (None if none / not real)."""
        with self._lock:
            inst = self._find(key)
            return inst.redis if inst else None

    def auth_string(self, key: str) -> str | None:
        with self._lock:
            inst = self._find(key)
            return inst.auth_string if inst else None

    def set_state(self, key: str, state: str | int | State, status_message: str = "") -> None:
        """Force an instance's state (e.g. ``"REPAIRING"``, ``"MAINTENANCE"``)."""
        with self._lock:
            inst = self._require(key)
            inst.pb.state = State.__members__[state] if isinstance(state, str) else int(state)
            inst.pb.status_message = status_message

    def set_labels(self, key: str, labels: dict) -> None:
        with self._lock:
            inst = self._require(key)
            inst.pb.labels.clear()
            inst.pb.labels.update(labels)

    def kill_redis(self, key: str) -> None:
        """Stop the backing redis-server but keep the instance (an outage / data loss)."""
        with self._lock:
            inst = self._require(key)
            if inst.redis is not None:
                inst.redis.stop(cleanup=False)

    def precreate(
        self,
        instance_id: str,
        *,
        project: str | None = None,
        location: str | None = None,
        labels: dict | None = None,
        tier: str = "BASIC",
        memory_size_gb: int = 1,
        auth_enabled: bool = False,
        transit_encryption_mode: str = "DISABLED",
        state: str = "READY",
        **fields,
    ) -> redis_v1.Instance:
        """Create an instance directly (no request recorded), e.g. one owned by someone else
        (foreign labels) for conflict tests. ``fields``: more Instance fields (snake_case)."""
        body = redis_v1.Instance(
            labels=labels or {},
            tier=tier,
            memory_size_gb=memory_size_gb,
            auth_enabled=auth_enabled,
            transit_encryption_mode=transit_encryption_mode,
            **fields,
        )
        project = project or self.default_project
        location = location or self.default_location
        with self._lock:
            name = self.instance_name(project, location, instance_id)
            if name in self._instances:
                raise ValueError(f"{name} already exists")
            pb = InstancePb()
            pb.CopyFrom(redis_v1.Instance.pb(body))
            inst = self._new_instance(project, location, instance_id, pb)
            self._make_ready(inst)
            inst.pb.state = State.__members__[state]
            return self._public(inst)

    # ------------------------------------------------------------------ HTTP plumbing
    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        parts = urlsplit(h.path)
        path = unquote(parts.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        rpc, fn, args = self._route(h.command, path)
        rec = RecordedRequest(h.command, path, query, body, rpc)
        with self._lock:
            self.requests.append(rec)
            self._advance()
        ints = "enum-encoding=int" in query.get("$alt", "")

        status, payload = self._dispatch(rec, fn, args, raw, query, ints)
        rec.status = status
        data = json.dumps(payload).encode()
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json; charset=UTF-8")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # client gave up (timeout)
            pass

    def _dispatch(self, rec: RecordedRequest, fn, args, raw: bytes, query: dict, ints: bool) -> tuple[int, dict]:
        rpc = rec.rpc
        # --- faults decided before applying
        fault: tuple[int, bool] | None = None
        with self._lock:
            if rpc in self.forbid:
                rec.injected = "forbid"
                return 403, ApiError("PERMISSION_DENIED", f"Permission denied for {rpc} (injected)").payload()
            for s in self._scheduled:
                if s.remaining > 0 and (s.rpc is None or s.rpc == rpc):
                    s.remaining -= 1
                    fault = (s.status, s.after_apply)
                    break
            self._scheduled = [s for s in self._scheduled if s.remaining > 0]
            if fault is None and self.fail_rate > 0 and (self.fail_rpcs is None or rpc in self.fail_rpcs):
                if self._rng.random() < self.fail_rate:
                    fault = (self._rng.choice(self.fail_codes), False)
            delay = self.delay if (self.delay > 0 and (self.delay_rpcs is None or rpc in self.delay_rpcs)) else 0.0
        if fault and not fault[1]:
            rec.injected = "fail"
            return fault[0], self._fault_payload(fault[0])
        if delay and self.delay_before_apply:
            rec.injected = "delay"
            self._stopping.wait(delay)
        try:
            if fn is None:
                raise ApiError(
                    "NOT_FOUND" if rpc == "Unknown" else "UNIMPLEMENTED",
                    f"The fake does not serve {rec.method} {rec.path}",
                )
            with self._lock:
                result = fn(*args, raw=raw, query=query)
                payload = self._to_json(result, ints) if result is not None else {}
            status = 200
        except ApiError as e:
            status, payload = e.http, e.payload()
        except Exception as e:  # a bug in the fake: make it loud but well-formed
            status, payload = 500, ApiError("INTERNAL", f"fake crashed: {e!r}").payload()
        if delay and not self.delay_before_apply:
            rec.injected = "delay"
            self._stopping.wait(delay)
        if fault:
            rec.injected = "fail-after-apply"
            return fault[0], self._fault_payload(fault[0])
        return status, payload

    @staticmethod
    def _fault_payload(code: int) -> dict:
        st = _STATUS_FOR_HTTP.get(code, "UNKNOWN")
        msgs = {
            429: "Quota exceeded (injected)",
            500: "Internal error (injected)",
            503: "The service is currently unavailable (injected)",
        }
        return ApiError(st, msgs.get(code, f"injected {code}"), code).payload()

    @staticmethod
    def _to_json(msg, ints: bool) -> dict:
        if isinstance(msg, dict):
            return msg
        return json_format.MessageToDict(msg, use_integers_for_enums=ints, preserving_proto_field_name=False)

    _SEG = r"([^/:]+)"

    def _route(self, method: str, path: str):
        S = self._SEG
        loc = rf"^/v1/projects/{S}/locations/{S}"
        table = [
            ("POST", loc + r"/instances$", "CreateInstance", self._create),
            ("GET", loc + r"/instances$", "ListInstances", self._list),
            ("GET", loc + rf"/instances/{S}$", "GetInstance", self._get),
            ("PATCH", loc + rf"/instances/{S}$", "UpdateInstance", self._update),
            ("DELETE", loc + rf"/instances/{S}$", "DeleteInstance", self._delete),
            ("GET", loc + rf"/instances/{S}/authString$", "GetInstanceAuthString", self._auth_string),
            ("GET", loc + rf"/operations/{S}$", "GetOperation", self._get_op),
            ("GET", loc + r"/operations$", "ListOperations", self._list_ops),
            ("DELETE", loc + rf"/operations/{S}$", "DeleteOperation", self._delete_op),
            ("POST", loc + rf"/operations/{S}:cancel$", "CancelOperation", None),
        ]
        for m, rx, rpc, fn in table:
            mt = re.match(rx, path)
            if mt and m == method:
                return rpc, fn, mt.groups()
        return "Unknown", None, ()

    # ------------------------------------------------------------------ state machinery
    def _find(self, key: str) -> _Instance | None:
        if key.startswith("projects/"):
            return self._instances.get(key)
        hits = [i for i in self._instances.values() if i.instance_id == key]
        if len(hits) > 1:
            raise ValueError(f"instance id {key!r} is ambiguous; use the full name")
        return hits[0] if hits else None

    def _require(self, key: str) -> _Instance:
        inst = self._find(key)
        if inst is None:
            raise KeyError(key)
        return inst

    def _public(self, inst: _Instance) -> redis_v1.Instance:
        return redis_v1.Instance.wrap(copy.deepcopy(inst.pb))

    def _advance(self) -> None:
        now = time.monotonic()
        due = sorted((o for o in self._ops.values() if not o.pb.done and o.finish_at <= now), key=lambda o: o.finish_at)
        for op in due:
            md = OperationMetadataPb()
            op.pb.metadata.Unpack(md)
            md.end_time.CopyFrom(_now_ts())
            try:
                resp = op.on_done() if op.on_done else empty_pb2.Empty()
                op.pb.response.Pack(resp)
            except ApiError as e:
                op.pb.error.CopyFrom(status_pb2.Status(code=_GRPC_CODE.get(e.status, 2), message=e.message))
            except Exception as e:  # e.g. the backing redis was killed by a test
                op.pb.error.CopyFrom(status_pb2.Status(code=_GRPC_CODE["INTERNAL"], message=f"operation failed: {e!r}"))
            op.pb.metadata.Pack(md)
            op.pb.done = True

    def _new_op(self, inst_name: str, project: str, location: str, verb: str, on_done: Callable[[], Any]) -> Any:
        op_id = f"operation-{int(time.time() * 1000)}-{uuid.uuid4().hex[:12]}"
        pb = operations_pb2.Operation(name=f"projects/{project}/locations/{location}/operations/{op_id}", done=False)
        md = OperationMetadataPb(target=inst_name, verb=verb, api_version="v1")
        md.create_time.CopyFrom(_now_ts())
        pb.metadata.Pack(md)
        op = _Operation(pb, time.monotonic() + max(0.0, self.op_delay), on_done)
        self._ops[pb.name] = op
        if self.op_delay <= 0:
            self._advance()
        return pb

    # ---- validation
    @staticmethod
    def _parse_instance(raw: bytes) -> Any:
        pb = InstancePb()
        try:
            json_format.Parse(raw or b"{}", pb, ignore_unknown_fields=False)
        except json_format.ParseError as e:
            raise ApiError("INVALID_ARGUMENT", f"Invalid JSON payload received. {e}") from e
        return pb

    @staticmethod
    def _validate_labels(labels) -> None:
        if len(labels) > 64:
            raise ApiError("INVALID_ARGUMENT", "At most 64 labels are allowed")
        for k, v in labels.items():
            if not _LABEL_KEY_RE.match(k):
                raise ApiError(
                    "INVALID_ARGUMENT",
                    f"Invalid label key {k!r}: must start with a "
                    "lowercase letter; lowercase letters, digits, _ and - only; "
                    "at most 63 characters",
                )
            if not _LABEL_VALUE_RE.match(v):
                raise ApiError(
                    "INVALID_ARGUMENT",
                    f"Invalid label value {v!r} for key {k!r}: "
                    "lowercase letters, digits, _ and - only; at most 63 characters",
                )

    @staticmethod
    def _validate_configs(configs) -> None:
        for k in configs:
            if k not in ALLOWED_REDIS_CONFIGS:
                raise ApiError("INVALID_ARGUMENT", f"Unsupported redis config {k!r}")

    @staticmethod
    def _validate_memory(gb: int) -> None:
        if not 1 <= gb <= 300:
            raise ApiError("INVALID_ARGUMENT", f"memory_size_gb must be between 1 and 300, got {gb}")

    # ---- instance lifecycle
    def _new_instance(self, project: str, location: str, instance_id: str, pb) -> _Instance:
        name = self.instance_name(project, location, instance_id)
        if not _INSTANCE_ID_RE.match(instance_id):
            raise ApiError(
                "INVALID_ARGUMENT",
                f"Invalid instance id {instance_id!r}: 1-40 characters, lowercase "
                "letters, digits and hyphens, starting with a letter, not ending "
                "with a hyphen",
            )
        if pb.tier == Tier.TIER_UNSPECIFIED:
            raise ApiError("INVALID_ARGUMENT", "tier is required")
        self._validate_memory(pb.memory_size_gb)
        self._validate_labels(pb.labels)
        self._validate_configs(pb.redis_configs)
        if pb.redis_version and not re.match(r"^REDIS_\d+_\d+$", pb.redis_version):
            raise ApiError("INVALID_ARGUMENT", f"Invalid redis_version {pb.redis_version!r}")
        for f in (
            "name",
            "host",
            "port",
            "current_location_id",
            "state",
            "status_message",
            "server_ca_certs",
            "nodes",
            "read_endpoint",
            "read_endpoint_port",
            "persistence_iam_identity",
            "create_time",
        ):
            pb.ClearField(f)  # output only
        pb.name = name
        pb.create_time.CopyFrom(_now_ts())
        pb.state = State.CREATING
        pb.location_id = pb.location_id or f"{location}-a"
        pb.redis_version = pb.redis_version or "REDIS_7_0"
        pb.reserved_ip_range = pb.reserved_ip_range or "10.0.0.0/29"
        pb.authorized_network = pb.authorized_network or f"projects/{project}/global/networks/default"
        if pb.connect_mode == ConnectMode.CONNECT_MODE_UNSPECIFIED:
            pb.connect_mode = ConnectMode.DIRECT_PEERING
        if pb.transit_encryption_mode == TransitEncryptionMode.TRANSIT_ENCRYPTION_MODE_UNSPECIFIED:
            pb.transit_encryption_mode = TransitEncryptionMode.DISABLED
        project_number = int(hashlib.sha1(project.encode()).hexdigest()[:10], 16) % 10**12
        pb.persistence_iam_identity = f"serviceAccount:service-{project_number}@cloud-redis.iam.gserviceaccount.com"
        inst = _Instance(pb=pb, project=project, location=location, instance_id=instance_id)
        tls = pb.transit_encryption_mode == TransitEncryptionMode.SERVER_AUTHENTICATION
        if pb.auth_enabled:
            inst.auth_string = str(uuid.uuid4())
        if self.real_redis:
            srv = RedisServer(
                tls=tls,
                password=inst.auth_string,
                host=self._redis_host,
                maxmemory=f"{pb.memory_size_gb}gb",
                disable_config_command=True,
            )
            try:
                srv.start()
                self._apply_configs(srv, pb.redis_configs)
            except ApiError:
                srv.stop()
                raise
            except Exception as e:
                srv.stop()
                raise ApiError("INTERNAL", f"backing redis-server failed: {e}") from e
            inst.redis = srv
            visible = {"host": srv.host, "port": srv.port}
            if tls:
                visible["ca_pem"] = srv.ca_pem
        else:
            n = len(self._instances) + 3
            visible = {"host": f"10.0.{n // 250}.{n % 250}", "port": 6378 if tls else 6379}
            if tls:
                visible["ca_pem"] = _placeholder_ca_pem()  # a valid CA, no server behind
        inst.visible = visible
        self._instances[name] = inst
        return inst

    @staticmethod
    def _apply_configs(srv: RedisServer | None, configs) -> None:
        if srv is None:
            return
        for k, v in configs.items():
            try:
                if k == "maxmemory-gb":
                    srv.config_set("maxmemory", int(float(v) * 1024**3))
                else:
                    srv.config_set(k, v)
            except Exception as e:
                raise ApiError("INVALID_ARGUMENT", f"Invalid value {v!r} for {k!r}: {e}") from e

    def _make_ready(self, inst: _Instance) -> None:
        pb = inst.pb
        pb.host = inst.visible["host"]
        pb.port = inst.visible["port"]
        pb.current_location_id = pb.location_id
        del pb.server_ca_certs[:]
        if inst.visible.get("ca_pem"):
            pem = inst.visible["ca_pem"]
            cert = TlsCertificatePb(
                cert=pem,
                serial_number=str(int(hashlib.sha1(pem.encode()).hexdigest()[:12], 16)),
                sha1_fingerprint=hashlib.sha1(pem.encode()).hexdigest(),
            )
            cert.create_time.CopyFrom(pb.create_time)
            cert.expire_time.FromDatetime(
                datetime.datetime.now(datetime.UTC).replace(tzinfo=None) + datetime.timedelta(days=2)
            )
            pb.server_ca_certs.append(cert)
        pb.state = State.READY

    # ------------------------------------------------------------------ RPC handlers
    def _create(self, project, location, *, raw, query):
        instance_id = query.get("instanceId", "")
        if not instance_id:
            raise ApiError("INVALID_ARGUMENT", "instance_id is required")
        name = self.instance_name(project, location, instance_id)
        if name in self._instances:
            raise ApiError("ALREADY_EXISTS", f"Resource '{name}' already exists")
        inst = self._new_instance(project, location, instance_id, self._parse_instance(raw))

        def done():
            if self._instances.get(name) is not inst:
                raise ApiError("ABORTED", "instance was deleted during creation")
            self._make_ready(inst)
            return inst.pb

        return self._new_op(name, project, location, "create", done)

    def _get(self, project, location, instance_id, *, raw, query):
        name = self.instance_name(project, location, instance_id)
        inst = self._instances.get(name)
        if inst is None:
            raise ApiError("NOT_FOUND", f"Resource '{name}' was not found")
        return inst.pb

    def _list(self, project, location, *, raw, query):
        items = [
            i.pb
            for i in self._instances.values()
            if i.project == project and (location == "-" or i.location == location)
        ]
        items.sort(key=lambda p: p.name)
        start = int(query.get("pageToken") or 0)
        size = int(query.get("pageSize") or 0) or len(items) or 1
        page = items[start : start + size]
        out = redis_v1.ListInstancesResponse.pb()(instances=page)
        if start + size < len(items):
            out.next_page_token = str(start + size)
        return out

    def _update(self, project, location, instance_id, *, raw, query):
        name = self.instance_name(project, location, instance_id)
        inst = self._instances.get(name)
        if inst is None:
            raise ApiError("NOT_FOUND", f"Resource '{name}' was not found")
        mask = [p.strip() for p in (query.get("updateMask") or "").split(",") if p.strip()]
        if not mask:
            raise ApiError("INVALID_ARGUMENT", "update_mask is required")
        paths = [_camel_to_snake(p) for p in mask]
        bad = [p for p in paths if p not in _UPDATABLE]
        if bad:
            raise ApiError("INVALID_ARGUMENT", f"Field(s) {bad} cannot be updated; updatable: {sorted(_UPDATABLE)}")
        patch = self._parse_instance(raw)
        if "labels" in paths:
            self._validate_labels(patch.labels)
        if "redis_configs" in paths:
            self._validate_configs(patch.redis_configs)
        if "memory_size_gb" in paths:
            self._validate_memory(patch.memory_size_gb)
        if inst.pb.state != State.READY:
            raise ApiError(
                "FAILED_PRECONDITION", f"Instance {name} is in state {State(inst.pb.state).name}; updates need READY"
            )
        inst.pb.state = State.UPDATING

        def done():
            if self._instances.get(name) is not inst:
                raise ApiError("ABORTED", "instance was deleted during the update")
            try:
                for p in paths:
                    if p in ("labels", "redis_configs"):
                        getattr(inst.pb, p).clear()
                        getattr(inst.pb, p).update(getattr(patch, p))
                    elif p in ("maintenance_policy", "persistence_config"):
                        getattr(inst.pb, p).CopyFrom(getattr(patch, p))
                    else:
                        setattr(inst.pb, p, getattr(patch, p))
                if "memory_size_gb" in paths and inst.redis is not None:
                    inst.redis.config_set("maxmemory", inst.pb.memory_size_gb * 1024**3)
                if "redis_configs" in paths:
                    self._apply_configs(inst.redis, inst.pb.redis_configs)
            finally:
                inst.pb.state = State.READY
            return inst.pb

        return self._new_op(name, project, location, "update", done)

    def _delete(self, project, location, instance_id, *, raw, query):
        name = self.instance_name(project, location, instance_id)
        inst = self._instances.get(name)
        if inst is None:
            raise ApiError("NOT_FOUND", f"Resource '{name}' was not found")
        if inst.pb.state == State.DELETING:
            raise ApiError("FAILED_PRECONDITION", f"Instance {name} is already being deleted")
        inst.pb.state = State.DELETING

        def done():
            if inst.redis is not None:
                inst.redis.stop()
                inst.redis = None
            self._instances.pop(name, None)
            return empty_pb2.Empty()

        return self._new_op(name, project, location, "delete", done)

    def _auth_string(self, project, location, instance_id, *, raw, query):
        name = self.instance_name(project, location, instance_id)
        inst = self._instances.get(name)
        if inst is None:
            raise ApiError("NOT_FOUND", f"Resource '{name}' was not found")
        if not inst.pb.auth_enabled or not inst.auth_string:
            raise ApiError("FAILED_PRECONDITION", f"AUTH is not enabled for instance {name}")
        return redis_v1.InstanceAuthString.pb()(auth_string=inst.auth_string)

    def _get_op(self, project, location, op_id, *, raw, query):
        name = f"projects/{project}/locations/{location}/operations/{op_id}"
        op = self._ops.get(name)
        if op is None:
            raise ApiError("NOT_FOUND", f"Operation '{name}' was not found")
        return op.pb

    def _list_ops(self, project, location, *, raw, query):
        prefix = f"projects/{project}/locations/{location}/"
        ops = [o.pb for n, o in self._ops.items() if location == "-" or n.startswith(prefix)]
        return operations_pb2.ListOperationsResponse(operations=ops)

    def _delete_op(self, project, location, op_id, *, raw, query):
        name = f"projects/{project}/locations/{location}/operations/{op_id}"
        if self._ops.pop(name, None) is None:
            raise ApiError("NOT_FOUND", f"Operation '{name}' was not found")
        return empty_pb2.Empty()
