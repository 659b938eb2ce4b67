"""Prometheus metrics of the operator process.

Defined here, below every layer that records them: runtime (Kubernetes API requests in
``runtime.kube.Kube``, watches, passes, durations, stores by phase), backends and reconcile (cloud
operations, per-store gauges); the HTTP endpoint is started in ``handlers.main``.
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
    "Kubernetes API requests made by the operator's client (runtime/kube.py: watches included), by resource "
    "and HTTP method",
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
WATCH_UP = Gauge(
    "featurestore_watch_up",
    "1 while a watch of the operator is listed and streaming, 0 while it fails or waits for its "
    "resource to be served, by watch: resource{label selector}@namespace (*: all; runtime/watches.py)",
    ["watch"],
)
WATCH_FAILURES = Counter(
    "featurestore_watch_failures_total", "Failures of the operator's watches (then retried), by kind", ["kind"]
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
    "featurestore_materialization_failed",
    "1 while the FeatureStore's last materialization run failed, else 0",
    ["namespace", "name"],
)
MATERIALIZATION_LAST_SUCCESS = Gauge(
    "featurestore_materialization_last_success_timestamp_seconds",
    "When the FeatureStore's materialization last succeeded (Unix time); absent until it has",
    ["namespace", "name"],
)
#: Materialization state per feature view (render/freshness.py), set after each materialization
#: run from the Job's summary. Alert on the lag, e.g. ``featurestore_feature_view_freshness_lag_seconds
#: > 2 * 3600`` for an hourly schedule; the timestamp lets Prometheus compute it too
#: (``time() - featurestore_feature_view_materialized_until_timestamp_seconds``).
VIEW_LABELS = ["namespace", "featurestore", "feature_view"]
MATERIALIZED_UNTIL = Gauge(
    "featurestore_feature_view_materialized_until_timestamp_seconds",
    "End of the last successful materialization interval of a feature view (Unix time)",
    VIEW_LABELS,
)
FRESHNESS_LAG = Gauge(
    "featurestore_feature_view_freshness_lag_seconds",
    "Seconds between the last reconcile pass and the end of a feature view's last materialization",
    VIEW_LABELS,
)
_views_of: dict[tuple[str, str], set[str]] = {}


def record_freshness(namespace: str, store: str, views: dict[str, float], now: float) -> None:
    """Set both gauges for one store from {feature view: materialized-until Unix time}; views no
    longer reported lose their series."""
    for gone in _views_of.get((namespace, store), set()) - views.keys():
        MATERIALIZED_UNTIL.remove(namespace, store, gone)
        FRESHNESS_LAG.remove(namespace, store, gone)
    for view, until in views.items():
        MATERIALIZED_UNTIL.labels(namespace, store, view).set(until)
        FRESHNESS_LAG.labels(namespace, store, view).set(max(0.0, now - until))
    _views_of[(namespace, store)] = set(views)


def forget_freshness(namespace: str, store: str) -> None:
    """Drop a deleted store's series."""
    record_freshness(namespace, store, {}, 0.0)
    _views_of.pop((namespace, store), None)
