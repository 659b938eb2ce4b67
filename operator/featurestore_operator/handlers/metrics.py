"""Prometheus metrics of the operator process (defined in :mod:`featurestore_operator.metrics`, so
that reconcile can record its API requests without importing handlers)."""

from __future__ import annotations

from ..metrics import API_CALLS, API_WRITES, RECONCILE_SECONDS, RECONCILES, STORES

__all__ = ["API_CALLS", "API_WRITES", "RECONCILE_SECONDS", "RECONCILES", "STORES"]
