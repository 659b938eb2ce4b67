"""Prometheus metrics of the operator process.

Defined here, below both layers that record them: reconcile (Kubernetes API requests, in
``reconcile.kube.Kube``) and handlers (passes, durations, stores by phase); the HTTP endpoint
is started in ``handlers.startup``.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter("featurestore_reconciles_total", "Reconcile passes by result", ["result"])
RECONCILE_SECONDS = Histogram(
    "featurestore_reconcile_duration_seconds", "Duration of one reconcile pass",
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
WATCHED = Gauge(
    "featurestore_watched_objects",
    "Objects carrying the operator's managed-by label that its watches hold (slim copies), by kind",
    ["kind"],
)
CLOUD_OPERATION_SECONDS = Histogram(
    "featurestore_cloud_operation_duration_seconds",
    "Duration of long-running cloud operations (e.g. Memorystore create: usually 5-10 min), from the "
    "request to the pass that saw them finish, by service, verb and result (done | failed)",
    ["service", "verb", "result"],
    buckets=(5, 15, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600),
)
STORE_READY = Gauge(
    "featurestore_ready", "1 while the FeatureStore's Ready condition is True, else 0", ["namespace", "name"]
)
MATERIALIZATION_FAILED = Gauge(
    "featurestore_materialization_failed", "1 while the FeatureStore's last materialization run failed, else 0",
    ["namespace", "name"],
)
MATERIALIZATION_LAST_SUCCESS = Gauge(
    "featurestore_materialization_last_success_timestamp_seconds",
    "When the FeatureStore's materialization last succeeded (Unix time); absent until it has",
    ["namespace", "name"],
)
