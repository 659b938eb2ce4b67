"""A stand-in for the GKE metadata server with Workload Identity, for pods on the e2e node
(tests/support/node.py).

On GKE with Workload Identity every pod reaches ``http://metadata.google.internal``
(169.254.169.254:80). A pod whose Kubernetes service account (KSA) is annotated
``iam.gke.io/gcp-service-account: GSA`` and granted ``roles/iam.workloadIdentityUser`` on that GSA
(member ``serviceAccount:POOL[NAMESPACE/KSA]``) gets the GSA's tokens; any other pod gets its KSA's
federated identity (email ``POOL``). ``WorkloadIdentity`` decides that the same way, from the pod
the request comes from (by its IP, through the API server) and the IAM fake's policies.

Feast's pods need it on the GCP path: pyarrow's GCS filesystem (google-cloud-cpp) and gcsfs ask for
Google's default credentials, and without a metadata server google-cloud-cpp retries for minutes
(an apply Job or a materialization "hangs"). The storage calls themselves go to the GCS emulator
(API_ENDPOINT_OVERRIDE / FSSPEC_GCS_ENDPOINT_URL / CLOUD_STORAGE_EMULATOR_ENDPOINT, set by the test;
never STORAGE_EMULATOR_HOST, which makes google-cloud-storage send no token at all). Each token is
random and recorded in a :class:`TokenBook` with the IAM member it stands for; the enforcing GCS
stand-in (``iam_fake.GcsBucketOverlay(callers=book.member)``) checks that member against the bucket's
IAM policy, as GCS does. The member is ``serviceAccount:GSA`` for a pod acting as its GSA, and GKE's
direct Workload Identity principal of its KSA otherwise
(``principal://iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/POOL/subject/ns/NS/sa/KSA``,
https://cloud.google.com/kubernetes-engine/docs/concepts/workload-identity#principal-identifiers).

Served: the ping (``/``), ``/computeMetadata/v1/instance/service-accounts/{default,EMAIL}/``
(recursive JSON, ``email``, ``scopes``, ``token``) and ``/computeMetadata/v1/project/{project-id,
numeric-project-id}``; every request must carry ``Metadata-Flavor: Google`` (403 otherwise, as on
GKE). ``tokens`` records (pod, email) of every token handed out.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: Where pods find the metadata server on GKE (and on the e2e node: an address of its bridge).
METADATA_IP = "169.254.169.254"
METADATA_HOST = "metadata.google.internal"
GSA_ANNOTATION = "iam.gke.io/gcp-service-account"
WORKLOAD_IDENTITY_USER = "roles/iam.workloadIdentityUser"
ACCOUNTS = "/computeMetadata/v1/instance/service-accounts"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
#: The project number the stand-in reports (numeric-project-id) and names principals with.
PROJECT_NUMBER = "123456789012"


@dataclass(frozen=True)
class Identity:
    pod: str  # NAMESPACE/NAME, or the client address when no pod has it
    email: str
    member: str = ""  # the IAM member its tokens stand for ("": none, e.g. not a pod)


def principal(pool: str, namespace: str, ksa: str, number: str = PROJECT_NUMBER) -> str:
    """GKE's direct Workload Identity principal of a KSA (no GSA)."""
    return (
        f"principal://iam.googleapis.com/projects/{number}/locations/global/workloadIdentityPools/{pool}"
        f"/subject/ns/{namespace}/sa/{ksa}"
    )


class TokenBook:
    """Access tokens handed out, each random, with the member it stands for (what Google's token
    validation tells GCS). ``member(token)``: that member, or None for a token never minted."""

    def __init__(self) -> None:
        self._members: dict[str, str] = {}
        self._lock = threading.Lock()

    def mint(self, member: str) -> str:
        token = "ya29.stand-in." + secrets.token_urlsafe(24)
        with self._lock:
            self._members[token] = member
        return token

    def member(self, token: str) -> str | None:
        with self._lock:
            return self._members.get(token)


class WorkloadIdentity:
    """GKE's rule: the GSA of the pod's KSA if the KSA is annotated with it and the GSA's policy (in
    the IAM fake) grants the KSA's member workloadIdentityUser; else the KSA's federated identity."""

    def __init__(
        self, request: Callable[[str, str], dict[str, Any]], iam: Any, project: str, pod_wait: float = 10.0
    ) -> None:
        self.request, self.iam, self.pool = request, iam, f"{project}.svc.id.goog"
        self.pod_wait = pod_wait

    def __call__(self, client_ip: str) -> Identity:
        pods = self._pods_at(client_ip)
        if not pods:
            return Identity(client_ip, self.pool)
        meta, ksa = pods[0]["metadata"], pods[0]["spec"].get("serviceAccountName") or "default"
        ns = meta["namespace"]
        account = self.request("GET", f"/api/v1/namespaces/{ns}/serviceaccounts/{ksa}")
        gsa = (account["metadata"].get("annotations") or {}).get(GSA_ANNOTATION)
        member = f"serviceAccount:{self.pool}[{ns}/{ksa}]"
        granted = gsa and any(
            b["role"] == WORKLOAD_IDENTITY_USER and member in b["members"] for b in self.iam.bindings(gsa)
        )
        pod = f"{ns}/{meta['name']}"
        if gsa and granted:
            return Identity(pod, gsa, f"serviceAccount:{gsa}")
        return Identity(pod, self.pool, principal(self.pool, ns, ksa))

    def _pods_at(self, client_ip: str) -> list[dict[str, Any]]:
        """The pods whose status holds ``client_ip``. A container can call before the kubelet has
        reported its pod's IP to the API server; GKE's metadata server then holds the request until it
        knows the pod (GKE docs: a new pod's first requests may wait a few seconds), so this waits too
        (``pod_wait`` seconds; then the caller is no pod and gets no identity)."""
        selector = urllib.parse.quote(f"status.podIP={client_ip}")
        deadline = time.monotonic() + self.pod_wait
        while True:
            pods = self.request("GET", f"/api/v1/pods?fieldSelector={selector}")["items"]
            if pods or time.monotonic() > deadline:
                return pods
            time.sleep(0.5)


class GkeMetadataServer:
    """``with GkeMetadataServer(address, port, project=..., identity=...) as md:`` serves until exit.
    ``identity(client_ip)`` says whose credentials a caller gets (``WorkloadIdentity``); ``book`` records
    every token minted with its member (share it with the enforcing GCS stand-in)."""

    def __init__(
        self,
        address: str = METADATA_IP,
        port: int = 80,
        *,
        project: str,
        identity: Callable[[str], Identity],
        book: TokenBook | None = None,
    ) -> None:
        self.address, self.port = address, port
        self.project, self.identity = project, identity
        self.book = book or TokenBook()
        self.tokens: list[Identity] = []
        self._server: ThreadingHTTPServer | None = None

    def _answer(self, path: str, client_ip: str) -> tuple[int, str, str]:
        """(status, content type, body) for ``path`` (query string removed). The account is
        ``default`` or its email, as on GKE (google-cloud-cpp asks for the token by email)."""
        path = path.rstrip("/") or "/"
        answers: dict[str, Any] = {
            "/": "",
            "/computeMetadata/v1": "",
            "/computeMetadata/v1/project/project-id": self.project,
            "/computeMetadata/v1/project/numeric-project-id": PROJECT_NUMBER,
        }
        if path in answers:
            return 200, "application/text", answers[path]
        if not path.startswith(ACCOUNTS):
            return 404, "text/plain", "not found"
        who = self.identity(client_ip)
        account, _, item = path[len(ACCOUNTS) :].lstrip("/").partition("/")
        if account not in ("", "default", who.email):
            return 404, "text/plain", f"no service account {account}"
        if not account:
            return 200, "application/text", f"default/\n{who.email}/\n"
        if item == "token":
            self.tokens.append(who)
            access = self.book.mint(who.member) if who.member else "ya29.stand-in.no-identity"
            token = {"access_token": access, "expires_in": 3599, "token_type": "Bearer"}
            return 200, "application/json", json.dumps(token)
        items: dict[str, Any] = {
            "": json.dumps({"aliases": ["default"], "email": who.email, "scopes": SCOPES}),
            "email": who.email,
            "scopes": "\n".join(SCOPES),
        }
        if item not in items:
            return 404, "text/plain", "not found"
        return 200, "application/json" if item == "" else "application/text", items[item]

    def start(self) -> GkeMetadataServer:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if self.headers.get("Metadata-Flavor") != "Google":
                    status, ctype, body = 403, "text/plain", "Missing Metadata-Flavor: Google header"
                else:
                    try:
                        status, ctype, body = outer._answer(self.path.split("?", 1)[0], self.client_address[0])
                    except Exception as exc:  # noqa: BLE001 - answer like a server in trouble
                        status, ctype, body = 500, "text/plain", repr(exc)
                data = body.encode()
                self.send_response(status)
                self.send_header("Metadata-Flavor", "Google")
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer((self.address, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name="gke-metadata", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> GkeMetadataServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
