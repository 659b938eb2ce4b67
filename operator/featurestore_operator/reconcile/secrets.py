"""Secrets step: the serving TLS material a store needs and the digests of every Secret its pods
consume (so a rotated Secret rolls exactly the workloads that use it). Only digests reach render."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ..api import FeatureStore
from ..backends import rotation, tls
from ..backends.base import BackendContext
from ..render import Endpoints, SecretHashes
from ..render.names import Names
from .outcomes import BackendResults


@dataclass(frozen=True)
class SecretInputs:
    #: the store's serving TLS Secret data and render input (None: spec.tls off)
    tls: tls.TlsMaterial | None
    #: endpoints with the serving TLS input filled in
    endpoints: Endpoints
    hashes: SecretHashes

    def secrets(self, fs: FeatureStore) -> dict[str, dict[str, str]]:
        """Secrets this pass writes besides the online store's: name -> data."""
        return {tls.secret_name(fs): self.tls.data} if self.tls and self.tls.data is not None else {}


async def secret_inputs(
    fs: FeatureStore, backends: BackendResults, ctx: BackendContext, now: dt.datetime
) -> SecretInputs:
    material = await tls.ensure_serving(fs, ctx, now)
    endpoints = backends.endpoints
    if material is not None:
        endpoints = Endpoints(online=endpoints.online, offline=endpoints.offline, serving_tls=material.serving)
    # what this pass is about to write counts, not what the API holds now: one rollout, at once
    pending = {tls.secret_name(fs): material.data} if material and material.data is not None else {}
    if backends.online_secret:
        pending[Names(fs).online_secret] = backends.online_secret

    async def current(name: str) -> dict[str, str] | None:
        return pending.get(name) or await ctx.get_secret(name)

    hashes = await rotation.secret_hashes(fs, endpoints, BackendContext(config=ctx.config, get_secret=current))
    return SecretInputs(material, endpoints, hashes)
