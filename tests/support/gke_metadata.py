"""A stand-in for the GKE metadata server, for pods on the e2e node (tests/support/node.py).

On GKE with Workload Identity every pod reaches ``http://metadata.google.internal``
(169.254.169.254:80), which hands out an access token of the Google service account bound to the
pod's KSA. Feast's pods need it on the GCP path: pyarrow's GCS filesystem (google-cloud-cpp) and
gcsfs both ask for Google's default credentials, and without a metadata server google-cloud-cpp
retries for minutes (an apply Job or a materialization "hangs"). The storage calls themselves go to
the GCS emulator (STORAGE_EMULATOR_HOST / CLOUD_STORAGE_EMULATOR_ENDPOINT, set by the test), which
ignores the token.

Served: the ping (``/``), ``/computeMetadata/v1/instance/service-accounts/default/`` (recursive
JSON, ``email``, ``scopes``, ``token``) and ``/computeMetadata/v1/project/{project-id,
numeric-project-id}``; every request must carry ``Metadata-Flavor: Google`` (403 otherwise, as on
GKE). ``requests`` records the paths asked for.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: Where pods find the metadata server on GKE (and on the e2e node: Node.add_host_address).
METADATA_IP = "169.254.169.254"
METADATA_HOST = "metadata.google.internal"
ACCOUNTS = "/computeMetadata/v1/instance/service-accounts"
SA_PREFIX = f"{ACCOUNTS}/default"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]


class GkeMetadataServer:
    """``with GkeMetadataServer(address, port, project=..., email=...) as md:`` serves until exit."""

    def __init__(self, address: str = METADATA_IP, port: int = 80, *, project: str, email: str) -> None:
        self.address, self.port = address, port
        self.project, self.email = project, email
        self.requests: list[str] = []
        self._server: ThreadingHTTPServer | None = None

    def _answer(self, path: str) -> tuple[int, str, str]:
        """(status, content type, body) for ``path`` (query string removed). The account is
        ``default`` or its email, as on GKE (google-cloud-cpp asks for the token by email)."""
        path = (path.rstrip("/") or "/").replace(f"{ACCOUNTS}/{self.email}", f"{ACCOUNTS}/default")
        account = {"aliases": ["default"], "email": self.email, "scopes": SCOPES}
        token = {"access_token": "e2e-workload-identity-token", "expires_in": 3599, "token_type": "Bearer"}
        answers: dict[str, Any] = {
            "/": "",
            "/computeMetadata/v1": "",
            "/computeMetadata/v1/project/project-id": self.project,
            "/computeMetadata/v1/project/numeric-project-id": "123456789012",
            SA_PREFIX: account,
            f"{SA_PREFIX}/email": self.email,
            f"{SA_PREFIX}/scopes": "\n".join(SCOPES),
            f"{SA_PREFIX}/token": token,
            ACCOUNTS: f"default/\n{self.email}/\n",
        }
        if path not in answers:
            return 404, "text/plain", "not found"
        body = answers[path]
        if isinstance(body, dict):
            return 200, "application/json", json.dumps(body)
        return 200, "application/text", body

    def start(self) -> GkeMetadataServer:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                path = self.path.split("?", 1)[0]
                outer.requests.append(path)
                if self.headers.get("Metadata-Flavor") != "Google":
                    status, ctype, body = 403, "text/plain", "Missing Metadata-Flavor: Google header"
                else:
                    status, ctype, body = outer._answer(path)
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
