"""Fakes of the Google surfaces our backends use that no emulator here implements.

* :class:`GcsBucketOverlay`: an HTTP proxy in front of a real fake-gcs-server
  (:class:`support.gcs_emulator.GcsEmulator`). fake-gcs-server stores a bucket's name,
  versioning and event-based hold only: it drops ``labels``, ``lifecycle`` and
  ``iamConfiguration`` on create and patch, and has no bucket IAM API (``/b/NAME/iam`` is 404).
  The overlay keeps those bucket fields and the bucket IAM policy itself, with the JSON API's
  semantics (labels PATCH merges keys and deletes null ones, ``metageneration`` increments on
  every metadata change, ``ifMetagenerationMatch`` and IAM ``etag`` mismatches answer 412), and
  forwards everything else (objects, uploads, downloads, bucket existence and deletion, so the
  412 on deleting a non-empty bucket) to fake-gcs-server unchanged. It also records requests
  (to prove "no write"), simulates buckets owned by another project (403 on get, 409 on create,
  as real GCS answers for a global name taken elsewhere), concurrent IAM writers, and one-off
  faults. One emulator quirk is smoothed over: boolean query values are lowercased before
  forwarding (the client sends ``versions=True``, which GCS accepts and fake-gcs-server ignores).

  Enforcing mode (``callers=``: token -> IAM member, e.g. ``gke_metadata.TokenBook.member``): every
  request must carry ``Authorization: Bearer TOKEN`` of a known member (else 401, as GCS answers an
  anonymous caller or invalid credentials) holding the permission the call needs (else 403 naming it,
  GCS's wording) through the bucket's IAM policy or ``project_roles``. Roles expand to permissions as
  https://cloud.google.com/storage/docs/access-control/iam-roles lists them (:data:`ROLE_PERMISSIONS`);
  conditional bindings grant nothing here (stricter than GCS, never looser). ``GET
  /storage/v1/b/NAME/iam/testPermissions`` answers the subset of the asked permissions the caller holds.

* :class:`IamAdminFake`: the ``google.iam.admin.v1.IAM`` gRPC service's ``GetIamPolicy`` and
  ``SetIamPolicy`` (google-cloud-iam's ``IAMClient`` has no REST transport), for the real
  ``IAMClient`` over a plaintext channel: service accounts, etags (stale etag -> ABORTED, as IAM
  answers), policy versions and conditions, PERMISSION_DENIED and NOT_FOUND.

Both run in-process on loopback in daemon threads, started/stopped explicitly (context managers).
"""

from __future__ import annotations

import base64
import copy
import http.client
import json
import re
import threading
import urllib.parse
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NoReturn

__all__ = ["GcsBucketOverlay", "IamAdminFake", "Recorded"]


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: Any = None
    status: int = 0


def _abort(context: Any, code: Any, message: str) -> NoReturn:
    """``grpc.ServicerContext.abort``: it raises (ends the RPC with ``code``); typed so."""
    context.abort(code, message)
    raise AssertionError("grpc's abort returned")


def _err(code: int, message: str, reason: str = "") -> tuple[int, dict[str, Any]]:
    return code, {
        "error": {
            "code": code,
            "message": message,
            "errors": [{"domain": "global", "reason": reason or str(code), "message": message}],
        }
    }


_BUCKET = re.compile(r"^/storage/v1/b/([^/]+)$")
_BUCKET_IAM = re.compile(r"^/storage/v1/b/([^/]+)/iam$")
_ANY_BUCKET = re.compile(r"^/(?:storage|upload/storage|download/storage)/v1/b/([^/?]+)")
_WRITES = {"POST", "PUT", "PATCH", "DELETE"}
_BUCKET_TEST = re.compile(r"^/storage/v1/b/([^/]+)/iam/testPermissions$")
_OBJECTS = re.compile(r"^/(storage|upload/storage)/v1/b/([^/]+)/o$")
_OBJECT = re.compile(r"^/(storage|download/storage)/v1/b/([^/]+)/o/(.+)$")

_OBJECT_READ = {"storage.objects.get", "storage.objects.list"}
_OBJECT_ALL = _OBJECT_READ | {
    "storage.objects.create",
    "storage.objects.delete",
    "storage.objects.update",
    "storage.objects.getIamPolicy",
    "storage.objects.setIamPolicy",
}
_BUCKET_ALL = {
    "storage.buckets.create",
    "storage.buckets.delete",
    "storage.buckets.get",
    "storage.buckets.list",
    "storage.buckets.update",
    "storage.buckets.getIamPolicy",
    "storage.buckets.setIamPolicy",
}
#: The storage permissions of each predefined role (https://cloud.google.com/storage/docs/access-control/iam-roles,
#: read 2026-12). Note that objectAdmin and objectViewer do NOT hold storage.buckets.get (a bucket GET,
#: which Feast's gs:// registry makes): the legacy bucket roles do.
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "roles/storage.admin": frozenset(_OBJECT_ALL | _BUCKET_ALL),
    "roles/owner": frozenset(_OBJECT_ALL | _BUCKET_ALL),
    "roles/storage.objectAdmin": frozenset(_OBJECT_ALL),
    "roles/storage.objectUser": frozenset(_OBJECT_READ | {"storage.objects.create", "storage.objects.delete"})
    | {"storage.objects.update"},
    "roles/storage.objectCreator": frozenset({"storage.objects.create"}),
    "roles/storage.objectViewer": frozenset(_OBJECT_READ),
    "roles/storage.legacyBucketReader": frozenset({"storage.buckets.get", "storage.objects.list"}),
    "roles/storage.legacyBucketWriter": frozenset(
        {"storage.buckets.get", "storage.objects.list", "storage.objects.create", "storage.objects.delete"}
    ),
    "roles/storage.legacyBucketOwner": frozenset(
        {
            "storage.buckets.get",
            "storage.buckets.update",
            "storage.buckets.getIamPolicy",
            "storage.buckets.setIamPolicy",
            "storage.objects.list",
            "storage.objects.create",
            "storage.objects.delete",
        }
    ),
    "roles/storage.legacyObjectReader": frozenset({"storage.objects.get"}),
}


def needed_permission(method: str, path: str) -> tuple[str, str | None] | None:
    """(permission, bucket or None for a project-level call) a JSON API request needs; None for a
    request the enforcing stand-in does not serve (refused). ``path`` is URL-decoded."""
    if path == "/storage/v1/b":
        return {"GET": ("storage.buckets.list", None), "POST": ("storage.buckets.create", None)}.get(method)
    m = _BUCKET.match(path)
    if m:
        verb = {"GET": "get", "PATCH": "update", "PUT": "update", "DELETE": "delete"}.get(method)
        return (f"storage.buckets.{verb}", m.group(1)) if verb else None
    m = _BUCKET_IAM.match(path)
    if m:
        verb = {"GET": "getIamPolicy", "PUT": "setIamPolicy"}.get(method)
        return (f"storage.buckets.{verb}", m.group(1)) if verb else None
    m = _OBJECTS.match(path)
    if m:
        if m.group(1) == "upload/storage" and method in ("POST", "PUT"):
            return "storage.objects.create", m.group(2)
        return ("storage.objects.list", m.group(2)) if method == "GET" and m.group(1) == "storage" else None
    m = _OBJECT.match(path)
    if m:
        if "/copyTo/" in m.group(3) or "/rewriteTo/" in m.group(3) or m.group(3).endswith("/compose"):
            return ("storage.objects.create", m.group(2)) if method == "POST" else None
        verb = {"GET": "get", "HEAD": "get", "DELETE": "delete", "PATCH": "update", "PUT": "update"}.get(method)
        if m.group(1) == "download/storage":
            verb = "get" if method == "GET" else None
        return (f"storage.objects.{verb}", m.group(2)) if verb else None
    return None


class GcsBucketOverlay:
    """Bucket metadata + bucket IAM in front of fake-gcs-server. See the module docstring.

    Args:
        upstream: a started ``GcsEmulator`` (or anything with ``.host``/``.port``).
        iam: serve the bucket IAM API (False: 404 like plain fake-gcs-server).
        real_delete_conflict: answer deleting a non-empty bucket with 409 like real GCS
            (fake-gcs-server answers 412).
        host: address to bind (the e2e node's pods reach the host at its bridge address).
        callers: enforcing mode: bearer token -> IAM member (None: unknown token). Without it every
            caller may do everything (the admin-API fake the control-plane tests use).
        project_roles: member -> roles it holds on the whole project (e.g. the operator's storage.admin).
    """

    def __init__(
        self,
        upstream: Any,
        *,
        iam: bool = True,
        real_delete_conflict: bool = False,
        host: str = "127.0.0.1",
        callers: Callable[[str], str | None] | None = None,
        project_roles: dict[str, set[str]] | None = None,
    ) -> None:
        self.upstream = upstream
        self.callers = callers
        self.project_roles = project_roles or {}
        self.refused: list[tuple[str | None, str, str, int]] = []  # (member, method, path, status)
        self.host = host
        self.iam = iam
        self.real_delete_conflict = real_delete_conflict
        self.requests: list[Recorded] = []
        self._meta: dict[str, dict[str, Any]] = {}
        self._policies: dict[str, dict[str, Any]] = {}
        self._foreign: set[str] = set()
        self._faults: list[tuple[str, re.Pattern[str], int, list[int]]] = []
        self._iam_races: dict[str, int] = {}
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- control
    @property
    def endpoint(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        assert isinstance(host, str), "an AF_INET server"
        return f"http://{host}:{port}"

    @property
    def upstream_endpoint(self) -> str:
        return f"http://{self.upstream.host}:{self.upstream.port}"

    def env(self) -> dict[str, str]:
        return {"STORAGE_EMULATOR_HOST": self.endpoint, "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"}

    def client(self, project: str = "test-project"):
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage  # type: ignore[attr-defined]  # namespace package: mypy cannot see it

        return storage.Client(
            project=project, credentials=AnonymousCredentials(), client_options={"api_endpoint": self.endpoint}
        )

    def add_foreign_bucket(self, name: str) -> None:
        """A bucket of another project: 403 on every access, 409 on create (name taken)."""
        with self._lock:
            self._foreign.add(name)

    def fail_next(self, method: str, path_regex: str, status: int, times: int = 1) -> None:
        """Answer the next ``times`` matching requests with ``status`` (a JSON API error)."""
        with self._lock:
            self._faults.append((method.upper(), re.compile(path_regex), status, [times]))

    def race_iam(self, bucket: str, times: int = 1) -> None:
        """Simulate another writer: after each of the next ``times`` IAM reads of ``bucket``, change
        the policy (adds a viewer binding), so a write with the etag just read fails with 412."""
        with self._lock:
            self._iam_races[bucket] = times

    def metadata(self, bucket: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._meta.get(bucket, {}))

    def policy(self, bucket: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._policies[bucket]) if bucket in self._policies else {}

    def writes(self, bucket: str | None = None) -> list[Recorded]:
        with self._lock:
            out = [r for r in self.requests if r.method in _WRITES]
        if bucket is not None:
            out = [r for r in out if _bucket_of(r.path, r.body) == bucket]
        return out

    def clear_log(self) -> None:
        with self._lock:
            self.requests.clear()

    # ---- lifecycle
    def start(self) -> GcsBucketOverlay:
        overlay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            break
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    return b"".join(chunks)
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def _handle(self) -> None:
                body = self._body()
                status, headers, payload = overlay._dispatch(self.command, self.path, dict(self.headers.items()), body)
                self.send_response(status)
                for k, v in headers:
                    if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

        self._server = ThreadingHTTPServer((self.host, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="gcs-overlay", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> GcsBucketOverlay:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ---- plumbing
    def _forward(
        self, method: str, target: str, headers: dict[str, str], body: bytes, *, json_only: bool = False
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(self.upstream.host, self.upstream.port, timeout=60)
        try:
            fwd = {
                k: v
                for k, v in headers.items()
                if k.lower() not in ("host", "content-length", "connection", "transfer-encoding")
            }
            if json_only:
                fwd["Accept-Encoding"] = "identity"
            fwd["Content-Length"] = str(len(body))
            conn.request(method, target, body=body or None, headers=fwd)
            resp = conn.getresponse()
            data = resp.read()
            out_headers = []
            for k, v in resp.getheaders():
                if k.lower() == "location":
                    v = v.replace(self.upstream_endpoint, self.endpoint)
                out_headers.append((k, v))
            return resp.status, out_headers, data
        finally:
            conn.close()

    @staticmethod
    def _json(status: int, obj: Any) -> tuple[int, list[tuple[str, str]], bytes]:
        return status, [("Content-Type", "application/json; charset=UTF-8")], json.dumps(obj).encode()

    def _dispatch(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        url = urllib.parse.urlsplit(target)
        path = urllib.parse.unquote(url.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        parsed: Any = None
        if body and "json" in (headers.get("Content-Type") or headers.get("content-type") or ""):
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
        rec = Recorded(method, path, query, parsed)
        with self._lock:
            self.requests.append(rec)
            fault = self._take_fault(method, path)
        if fault is not None:
            rec.status = fault
            return self._json(*_err(fault, f"injected fault {fault}"))
        if any(v in ("True", "False") for v in query.values()):
            # google-cloud-storage sends booleans as True/False (real GCS accepts them);
            # fake-gcs-server only understands lowercase (e.g. versions=true lists old versions).
            fixed = {k: (v.lower() if v in ("True", "False") else v) for k, v in urllib.parse.parse_qsl(url.query)}
            target = urllib.parse.urlunsplit(("", "", url.path, urllib.parse.urlencode(fixed), ""))
        denied = self._authorize(method, path, url.query, headers)
        result = denied or self._route(method, target, path, query, headers, body, parsed)
        rec.status = result[0]
        return result

    # ---- enforcing mode
    def _member(self, headers: dict[str, str]) -> tuple[str | None, tuple[int, dict[str, Any]] | None]:
        auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        if not auth.startswith("Bearer "):
            return None, None
        assert self.callers is not None
        member = self.callers(auth.removeprefix("Bearer ").strip())
        if member is None:
            return None, _err(401, "Invalid Credentials", "authError")
        return member, None

    def permissions(self, member: str | None, bucket: str | None) -> set[str]:
        """What ``member`` (None: anonymous) holds on ``bucket`` (None: the project) by its roles."""
        members = {"allUsers"} | ({member, "allAuthenticatedUsers"} if member else set())
        roles: set[str] = set()
        for m in members:
            roles |= self.project_roles.get(m, set())
        if bucket is not None:
            with self._lock:
                pol = self._policies.get(bucket) or {}
                for b in pol.get("bindings") or []:
                    if not b.get("condition") and members & set(b.get("members") or ()):
                        roles.add(b["role"])
        return set().union(*(ROLE_PERMISSIONS.get(r, frozenset()) for r in roles))

    def _authorize(
        self, method: str, path: str, raw_query: str, headers: dict[str, str]
    ) -> tuple[int, list[tuple[str, str]], bytes] | None:
        if self.callers is None:
            return None
        member, bad = self._member(headers)
        if bad is not None:
            self.refused.append((None, method, path, 401))
            return self._json(*bad)
        test = _BUCKET_TEST.match(path)
        if test and method == "GET":  # anyone may ask; the answer is the truth about the caller
            asked = urllib.parse.parse_qs(raw_query).get("permissions", [])
            held = self.permissions(member, test.group(1))
            return self._json(
                200, {"kind": "storage#testIamPermissionsResponse", "permissions": [p for p in asked if p in held]}
            )
        need = needed_permission(method, path)
        if need is None:
            self.refused.append((member, method, path, 403))
            return self._json(*_err(403, f"{method} {path} is not served by the enforcing stand-in", "forbidden"))
        perm, bucket = need
        if perm in self.permissions(member, bucket):
            return None
        what = f"the Google Cloud Storage bucket {bucket}" if bucket else "the project"
        if member is None:
            self.refused.append((None, method, path, 401))
            return self._json(*_err(401, f"Anonymous caller does not have {perm} access to {what}.", "required"))
        self.refused.append((member, method, path, 403))
        who = member.split(":", 1)[-1]
        return self._json(
            *_err(
                403,
                f"{who} does not have {perm} access to {what}. Permission '{perm}' denied on resource "
                f"(or it may not exist).",
                "forbidden",
            )
        )

    def _take_fault(self, method: str, path: str) -> int | None:
        for m, rx, status, left in self._faults:
            if m == method and rx.search(path) and left[0] > 0:
                left[0] -= 1
                return status
        return None

    def _route(
        self,
        method: str,
        target: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        parsed: Any,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        name = _bucket_of(path, parsed if method == "POST" and path == "/storage/v1/b" else None)
        if name and name in self._foreign:
            if method == "POST" and path == "/storage/v1/b":
                return self._json(
                    *_err(
                        409,
                        "The requested bucket name is not available. The bucket namespace is shared "
                        "by all users of the system. Please select a different name and try again.",
                        "conflict",
                    )
                )
            return self._json(
                *_err(
                    403,
                    f"anonymous caller does not have storage.buckets.get access to the Google Cloud "
                    f"Storage bucket {name}. Permission 'storage.buckets.get' denied on resource "
                    f"(or it may not exist).",
                    "forbidden",
                )
            )
        if path == "/storage/v1/b" and method == "POST":
            return self._create(target, headers, body, parsed or {}, query)
        if path == "/storage/v1/b" and method == "GET":
            status, hdrs, data = self._forward(method, target, headers, body, json_only=True)
            if status == 200:
                listing = json.loads(data)
                items = [self._decorate(b) for b in listing.get("items", [])]
                # GCS lists the buckets of the project asked for (fake-gcs-server ignores it)
                project = query.get("project")
                listing["items"] = [b for b in items if not project or self._meta_for(b["name"])["project"] == project]
                return self._json(200, listing)
            return status, hdrs, data
        m = _BUCKET.match(path)
        if m:
            name = m.group(1)
            if method == "GET":
                status, hdrs, data = self._forward(method, target, headers, body, json_only=True)
                return self._json(200, self._decorate(json.loads(data))) if status == 200 else (status, hdrs, data)
            if method == "PATCH":
                return self._patch(name, target, headers, parsed or {}, query)
            if method == "DELETE":
                status, hdrs, data = self._forward(method, target, headers, body, json_only=True)
                if 200 <= status < 300:
                    with self._lock:
                        self._meta.pop(name, None)
                        self._policies.pop(name, None)
                elif status == 412 and self.real_delete_conflict:
                    return self._json(*_err(409, "The bucket you tried to delete is not empty.", "conflict"))
                return status, hdrs, data
        m = _BUCKET_IAM.match(path)
        if m:
            if not self.iam:
                return self._forward(method, target, headers, body)
            return self._iam(m.group(1), method, target, headers, parsed or {})
        return self._forward(method, target, headers, body)

    # ---- bucket resource
    def _meta_for(self, name: str) -> dict[str, Any]:
        with self._lock:
            return self._meta.setdefault(
                name,
                {
                    "labels": {},
                    "lifecycle": [],
                    "ubla": False,
                    "pap": "inherited",
                    "location": None,
                    "metageneration": 1,
                    "project": "test-project",
                },
            )

    def _decorate(self, resource: dict[str, Any]) -> dict[str, Any]:
        meta = self._meta_for(resource["name"])
        out = dict(resource)
        if meta["labels"]:
            out["labels"] = dict(meta["labels"])
        else:
            out.pop("labels", None)
        if meta["lifecycle"]:
            out["lifecycle"] = {"rule": copy.deepcopy(meta["lifecycle"])}
        else:
            out.pop("lifecycle", None)
        out["iamConfiguration"] = {
            "bucketPolicyOnly": {"enabled": meta["ubla"]},
            "uniformBucketLevelAccess": {"enabled": meta["ubla"]},
            "publicAccessPrevention": meta["pap"],
        }
        if meta["location"]:
            out["location"] = meta["location"]
        out["metageneration"] = str(meta["metageneration"])
        out["etag"] = base64.b64encode(f"{resource['name']}/{meta['metageneration']}".encode()).decode()
        return out

    @staticmethod
    def _apply_iam_config(meta: dict[str, Any], cfg: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        ubla = (cfg.get("uniformBucketLevelAccess") or {}).get("enabled")
        bpo = (cfg.get("bucketPolicyOnly") or {}).get("enabled")
        if ubla is not None and bpo is not None and ubla != bpo:
            return _err(400, "uniformBucketLevelAccess and bucketPolicyOnly must match", "invalid")
        if ubla is not None or bpo is not None:
            meta["ubla"] = bool(ubla if ubla is not None else bpo)
        pap = cfg.get("publicAccessPrevention")
        if pap is not None:
            if pap not in ("inherited", "enforced", "unspecified"):
                return _err(400, f"invalid publicAccessPrevention {pap!r}", "invalid")
            meta["pap"] = "inherited" if pap == "unspecified" else pap
        return None

    def _create(
        self, target: str, headers: dict[str, str], body: bytes, data: dict[str, Any], query: dict[str, str]
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        status, hdrs, raw = self._forward("POST", target, headers, body, json_only=True)
        if status != 200:
            if status == 409:  # fake-gcs-server's own wording is terse; GCS says this for a name you own
                return self._json(
                    *_err(
                        409,
                        "Your previous request to create the named bucket succeeded and you already own it.",
                        "conflict",
                    )
                )
            return status, hdrs, raw
        name = data["name"]
        with self._lock:
            self._meta.pop(name, None)
            meta = self._meta_for(name)
            meta["labels"] = {k: v for k, v in (data.get("labels") or {}).items() if v is not None}
            meta["lifecycle"] = copy.deepcopy((data.get("lifecycle") or {}).get("rule") or [])
            meta["location"] = (data.get("location") or "US").upper()
            meta["project"] = query.get("project", "test-project")
            bad = self._apply_iam_config(meta, data.get("iamConfiguration") or {})
            if bad:
                return self._json(*bad)
            return self._json(200, self._decorate(json.loads(raw)))

    def _patch(
        self, name: str, target: str, headers: dict[str, str], data: dict[str, Any], query: dict[str, str]
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        status, hdrs, raw = self._forward(
            "GET", f"/storage/v1/b/{urllib.parse.quote(name)}", headers, b"", json_only=True
        )
        if status != 200:
            return status, hdrs, raw
        with self._lock:
            meta = self._meta_for(name)
            want = query.get("ifMetagenerationMatch")
            if want is not None and int(want) != meta["metageneration"]:
                return self._json(*_err(412, "Precondition Failed", "conditionNotMet"))
            if "versioning" in data or "defaultEventBasedHold" in data:
                fwd = {k: data[k] for k in ("versioning", "defaultEventBasedHold") if k in data}
                s, h, r = self._forward(
                    "PATCH", target, {"Content-Type": "application/json"}, json.dumps(fwd).encode(), json_only=True
                )
                if s != 200:
                    return s, h, r
                raw = r
            if "labels" in data:
                labels = data["labels"]
                if labels is None:
                    meta["labels"] = {}
                else:
                    for k, v in labels.items():
                        if v is None:
                            meta["labels"].pop(k, None)
                        else:
                            meta["labels"][k] = v
            if "lifecycle" in data:
                meta["lifecycle"] = copy.deepcopy((data["lifecycle"] or {}).get("rule") or [])
            if "iamConfiguration" in data:
                bad = self._apply_iam_config(meta, data["iamConfiguration"] or {})
                if bad:
                    return self._json(*bad)
            if "location" in data and data["location"] and data["location"].upper() != (meta["location"] or "").upper():
                return self._json(*_err(400, "location cannot be changed", "invalid"))
            meta["metageneration"] += 1
            return self._json(200, self._decorate(json.loads(raw)))

    # ---- bucket IAM
    def _iam(
        self, name: str, method: str, target: str, headers: dict[str, str], data: dict[str, Any]
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        status, hdrs, raw = self._forward(
            "GET", f"/storage/v1/b/{urllib.parse.quote(name)}", headers, b"", json_only=True
        )
        if status != 200:
            return status, hdrs, raw
        with self._lock:
            project = self._meta_for(name)["project"]
            pol = self._policies.setdefault(
                name,
                {
                    "version": 1,
                    "serial": 1,
                    "bindings": [
                        {
                            "role": "roles/storage.legacyBucketOwner",
                            "members": [f"projectEditor:{project}", f"projectOwner:{project}"],
                        },
                        {"role": "roles/storage.legacyBucketReader", "members": [f"projectViewer:{project}"]},
                    ],
                },
            )
            if method == "GET":
                out = self._policy_json(name, pol)
                if self._iam_races.get(name, 0) > 0:
                    self._iam_races[name] -= 1
                    pol["bindings"].append(
                        {"role": "roles/storage.objectViewer", "members": [f"user:racer{pol['serial']}@example.com"]}
                    )
                    pol["serial"] += 1
                return self._json(200, out)
            if method == "PUT":
                etag = data.get("etag")
                if etag is not None and etag != self._etag(name, pol):
                    return self._json(*_err(412, "Precondition Failed", "conditionNotMet"))
                bindings = data.get("bindings") or []
                version = int(data.get("version") or 1)
                if any(b.get("condition") for b in bindings) and version < 3:
                    return self._json(*_err(400, "IAM policy with conditions requires version 3", "invalid"))
                for b in bindings:
                    if not b.get("role") or not b.get("members"):
                        return self._json(*_err(400, "each binding needs a role and members", "invalid"))
                pol["bindings"] = copy.deepcopy(bindings)
                pol["version"] = version
                pol["serial"] += 1
                return self._json(200, self._policy_json(name, pol))
        return self._json(*_err(405, "method not allowed"))

    @staticmethod
    def _etag(name: str, pol: dict[str, Any]) -> str:
        return base64.b64encode(f"{name}#{pol['serial']}".encode()).decode()

    def _policy_json(self, name: str, pol: dict[str, Any]) -> dict[str, Any]:
        return {
            "kind": "storage#policy",
            "resourceId": f"projects/_/buckets/{name}",
            "version": pol["version"],
            "etag": self._etag(name, pol),
            "bindings": copy.deepcopy(pol["bindings"]),
        }


def _bucket_of(path: str, body: Any) -> str | None:
    if path == "/storage/v1/b" and isinstance(body, dict):
        return body.get("name")
    m = _ANY_BUCKET.match(path)
    return urllib.parse.unquote(m.group(1)) if m else None


# ============================================================================ IAM admin (gRPC)


_SA_RESOURCE = re.compile(r"^projects/([^/]+)/serviceAccounts/([^/]+)$")


@dataclass
class _Account:
    bindings: list[Any] = field(default_factory=list)  # policy_pb2.Binding
    version: int = 1
    serial: int = 1
    denied: bool = False
    races: int = 0


class IamAdminFake:
    """``google.iam.admin.v1.IAM`` GetIamPolicy/SetIamPolicy over plaintext gRPC on loopback.

    ``endpoint`` is ``http://HOST:PORT`` (the ``http://`` scheme tells ``WorkloadIdentity`` to use
    a plaintext channel; ``host`` defaults to 127.0.0.1). ``calls`` records (method, resource).
    """

    SERVICE = "google.iam.admin.v1.IAM"

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._accounts: dict[str, _Account] = {}
        self._lock = threading.RLock()
        self.calls: list[tuple[str, str]] = []
        self._server: Any = None
        self.port: int | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def add_service_account(self, email: str, bindings: list[dict[str, Any]] | None = None, version: int = 1) -> None:
        from google.iam.v1 import policy_pb2
        from google.type import expr_pb2

        acct = _Account(version=version)
        for b in bindings or []:
            pb = policy_pb2.Binding(role=b["role"], members=list(b["members"]))
            if b.get("condition"):
                pb.condition.CopyFrom(expr_pb2.Expr(**b["condition"]))
            acct.bindings.append(pb)
        with self._lock:
            self._accounts[email] = acct

    def deny(self, email: str) -> None:
        """The caller lacks iam.serviceAccounts.get/setIamPolicy on ``email``."""
        with self._lock:
            self._accounts[email].denied = True

    def race(self, email: str, times: int = 1) -> None:
        """After each of the next ``times`` reads, another writer changes the policy (new etag)."""
        with self._lock:
            self._accounts[email].races = times

    def bindings(self, email: str) -> list[dict[str, Any]]:
        with self._lock:
            out = []
            for b in self._accounts[email].bindings:
                d: dict[str, Any] = {"role": b.role, "members": sorted(b.members)}
                if b.HasField("condition"):
                    d["condition"] = {"title": b.condition.title, "expression": b.condition.expression}
                out.append(d)
            return out

    def version(self, email: str) -> int:
        with self._lock:
            return self._accounts[email].version

    def writes(self) -> list[tuple[str, str]]:
        return [c for c in self.calls if c[0] == "SetIamPolicy"]

    # ---- service
    def _lookup(self, resource: str, context: Any) -> _Account:
        import grpc

        m = _SA_RESOURCE.match(resource)
        if not m:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"Invalid resource name {resource!r}")
        acct = self._accounts.get(m.group(2))
        if acct is None:
            _abort(context, grpc.StatusCode.NOT_FOUND, f"Service account {m.group(2)} does not exist.")
        if acct.denied:
            _abort(
                context,
                grpc.StatusCode.PERMISSION_DENIED,
                "Permission 'iam.serviceAccounts.getIamPolicy' denied on resource (or it may not exist).",
            )
        return acct

    @staticmethod
    def _etag(acct: _Account) -> bytes:
        return f"etag-{acct.serial}".encode()

    def _policy(self, acct: _Account) -> Any:
        from google.iam.v1 import policy_pb2

        return policy_pb2.Policy(version=acct.version, etag=self._etag(acct), bindings=acct.bindings)

    def _get(self, request: Any, context: Any) -> Any:
        import grpc

        with self._lock:
            self.calls.append(("GetIamPolicy", request.resource))
            acct = self._lookup(request.resource, context)
            requested = request.options.requested_policy_version or 1
            if requested not in (0, 1, 3):
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "requested_policy_version must be 1 or 3")
            if requested < 3 and any(b.HasField("condition") for b in acct.bindings):
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "The policy contains conditional role bindings; request policy version 3.",
                )
            out = self._policy(acct)
            if acct.races > 0:
                from google.iam.v1 import policy_pb2

                acct.races -= 1
                acct.bindings.append(
                    policy_pb2.Binding(
                        role="roles/iam.serviceAccountUser", members=[f"user:racer{acct.serial}@example.com"]
                    )
                )
                acct.serial += 1
            return out

    def _set(self, request: Any, context: Any) -> Any:
        import grpc

        with self._lock:
            self.calls.append(("SetIamPolicy", request.resource))
            acct = self._lookup(request.resource, context)
            pol = request.policy
            if pol.etag and pol.etag != self._etag(acct):
                context.abort(
                    grpc.StatusCode.ABORTED,
                    "There were concurrent policy changes. Please retry the whole "
                    "read-modify-write with exponential backoff.",
                )
            if any(b.HasField("condition") for b in pol.bindings) and pol.version < 3:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Policy with conditions must be version 3.")
            for b in pol.bindings:
                if not b.role or not b.members:
                    context.abort(
                        grpc.StatusCode.INVALID_ARGUMENT, "Each binding needs a role and at least one member."
                    )
            acct.bindings = list(pol.bindings)
            acct.version = pol.version or 1
            acct.serial += 1
            return self._policy(acct)

    def start(self) -> IamAdminFake:
        import grpc
        from google.iam.v1 import iam_policy_pb2, policy_pb2

        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        handlers = {
            "GetIamPolicy": grpc.unary_unary_rpc_method_handler(
                self._get,
                request_deserializer=iam_policy_pb2.GetIamPolicyRequest.FromString,
                response_serializer=policy_pb2.Policy.SerializeToString,
            ),
            "SetIamPolicy": grpc.unary_unary_rpc_method_handler(
                self._set,
                request_deserializer=iam_policy_pb2.SetIamPolicyRequest.FromString,
                response_serializer=policy_pb2.Policy.SerializeToString,
            ),
        }
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(self.SERVICE, handlers),))
        self.port = self._server.add_insecure_port(f"{self.host}:0")
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None)
            self._server = None

    def __enter__(self) -> IamAdminFake:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
