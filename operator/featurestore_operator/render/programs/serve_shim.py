"""Feast's CLI with a verified Kubernetes token parser (render/authz.py): `python -c SOURCE ARGS`."""

import hashlib
import os
import sys
import time

from feast.permissions.auth import kubernetes_token_parser as ktp
from feast.permissions.user import User
from kubernetes import client
from starlette.authentication import AuthenticationError

ALLOWED = set(filter(None, os.environ.get("FSO_FEAST_ROLES", "").split(",")))
TTL = float(os.environ.get("FSO_FEAST_AUTH_CACHE_SECONDS", "30"))
AUDIENCE = os.environ.get("FSO_FEAST_AUDIENCE", "")
CACHE: dict[bytes, tuple[float, User]] = {}


def review(self: ktp.KubernetesTokenParser, access_token: str) -> User:
    if not AUDIENCE:
        raise AuthenticationError("server has no token audience configured")
    status = self.auth_v1.create_token_review(
        client.V1TokenReview(spec=client.V1TokenReviewSpec(token=access_token, audiences=[AUDIENCE]))
    ).status
    if not status or not status.authenticated or not status.user:
        raise AuthenticationError("token not accepted by the Kubernetes API for this store's audience")
    if AUDIENCE not in (status.audiences or []):
        raise AuthenticationError("token is not bound to this store's audience")
    parts = (status.user.username or "").split(":")
    if len(parts) != 4 or parts[:2] != ["system", "serviceaccount"]:
        raise AuthenticationError("only ServiceAccount tokens are accepted")
    roles = (
        set(
            self.get_roles(
                current_namespace=self._read_namespace_from_file(),
                service_account_namespace=parts[2],
                service_account_name=parts[3],
            )
        )
        & ALLOWED
    )
    if not roles:
        raise AuthenticationError("ServiceAccount has no role on this feature store")
    return User(username=f"{parts[2]}:{parts[3]}", roles=sorted(roles), groups=[], namespaces=[parts[2]])


async def verified(self: ktp.KubernetesTokenParser, access_token: str) -> User:
    key = hashlib.sha256(access_token.encode()).digest()
    hit = CACHE.get(key)
    if hit and hit[0] > time.monotonic():
        return hit[1]
    user = review(self, access_token)
    if len(CACHE) >= 4096:
        CACHE.clear()
    CACHE[key] = (time.monotonic() + TTL, user)
    return user


def install() -> None:
    """Replace Feast's unverified parser (it decodes the JWT without checking it)."""
    ktp.KubernetesTokenParser.user_details_from_access_token = verified  # type: ignore[method-assign]


if __name__ == "__main__":
    install()
    from feast.cli.cli import cli

    sys.exit(cli(sys.argv[1:], prog_name="feast"))
