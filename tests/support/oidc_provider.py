"""A minimal OpenID Connect provider for tests: HTTPS discovery document and JWKS on 127.0.0.1
(certificate for ``localhost``), RS256 tokens signed with its key.

It mirrors what Feast 0.67's ``OidcTokenParser`` reads from a real provider (OpenID Connect
Discovery 1.0 §3: ``issuer``, ``jwks_uri``, ``authorization_endpoint``, ``token_endpoint``; RFC 7517
JWK set with ``kid``) and nothing more: no login, no token endpoint behaviour.
"""

from __future__ import annotations

import datetime as dt
import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from featurestore_operator.backends.certificates import write_self_signed

KID = "test-key"


class OidcProvider:
    def __init__(self, workdir: Path) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ca_file, keyfile = write_self_signed(["localhost"], workdir, dt.timedelta(days=1))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.ca_file, keyfile)
        self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
        self.issuer = f"https://localhost:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def token(self, *, aud: Any = None, iss: str | None = None, sub: str = "alice", **claims: Any) -> str:
        """An RS256 token of this provider's key (``iss`` defaults to this provider)."""
        now = int(time.time())
        body = {"iss": iss or self.issuer, "sub": sub, "preferred_username": sub, "iat": now, "exp": now + 300}
        if aud is not None:
            body["aud"] = aud
        return jwt.encode({**body, **claims}, self.key, algorithm="RS256", headers={"kid": KID})

    def _documents(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {
            "/.well-known/openid-configuration": {
                "issuer": self.issuer,
                "jwks_uri": f"{self.issuer}/jwks",
                "authorization_endpoint": f"{self.issuer}/auth",
                "token_endpoint": f"{self.issuer}/token",
            },
            "/jwks": {"keys": [{**jwk, "kid": KID, "use": "sig", "alg": "RS256"}]},
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                doc = provider._documents().get(self.path)
                raw = json.dumps(doc).encode()
                self.send_response(200 if doc else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler
