"""Prometheus metrics of the operator process."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter("featurestore_reconciles_total", "Reconcile passes by result", ["result"])
RECONCILE_SECONDS = Histogram(
    "featurestore_reconcile_duration_seconds", "Duration of one reconcile pass",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
STORES = Gauge("featurestore_stores", "FeatureStores by phase", ["phase"])
API_CALLS = Counter("featurestore_kube_api_calls_total", "Kubernetes API calls made by the reconciler", ["kind"])
