"""Reads the Secrets a store's pods consume and hashes their data for ``render(..., secrets=...)``.

Reconcile calls :func:`secret_hashes` after the backends (so the online-store and TLS Secrets are
current) and before rendering; only digests leave this function, never the data.
"""

from __future__ import annotations

from ..api import FeatureStore
from ..render.inputs import Endpoints, SecretHashes, secret_hash
from ..render.rotation import secret_names
from .base import BackendContext


async def secret_hashes(fs: FeatureStore, endpoints: Endpoints, ctx: BackendContext) -> SecretHashes:
    """A missing Secret is left out (its pods cannot start yet; it counts once it exists)."""
    out: dict[str, str] = {}
    for name in sorted(secret_names(fs, endpoints)):
        data = await ctx.get_secret(name)
        if data is not None:
            out[name] = secret_hash(data)
    return SecretHashes(out)
