"""Prometheus metrics of the operator process.

Defined here, below both layers that record them: reconcile (Kubernetes API requests, in
``reconcile.kube.Kube``) and handlers (passes, durations, stores by phase); the HTTP endpoint
is started in ``handlers.startup``.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter("featurestore_reconciles_total", "Reconcile passes by result", ["result"])
RECONCILE_SECONDS = Histogram(
    "featurestore_reconcile_duration_seconds",
    "Duration of one reconcile pass",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
STORES = Gauge("featurestore_stores", "FeatureStores by phase", ["phase"])
API_CALLS = Counter(
    "featurestore_kube_api_calls_total",
    "Kubernetes API requests made by the reconciler (not kopf's own watches), by resource and HTTP method",
    ["resource", "method"],
)
API_WRITES = Counter(
    "featurestore_kube_api_writes_total",
    "Kubernetes API write requests (PATCH, POST, PUT, DELETE) made by the reconciler, by resource. "
    "A server-side apply that changes nothing still counts: the applier's cache exists to not send it",
    ["resource"],
)
