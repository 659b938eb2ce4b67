"""Per-FeatureStore gauges for alerts (charts' PrometheusRule) and the dashboard, set from status.

The store's worker (``runtime.workers``) calls :func:`observe` after a pass wrote its status and
:func:`forget` once the store is gone, so a deleted store leaves no series behind.
"""

from __future__ import annotations

import datetime as dt

from .api.status import FeatureStoreStatus
from .metrics import (
    MATERIALIZATION_FAILED,
    MATERIALIZATION_LAST_SUCCESS,
    STORE_READY,
    forget_freshness,
    record_freshness,
)

_GAUGES = (STORE_READY, MATERIALIZATION_FAILED, MATERIALIZATION_LAST_SUCCESS)


def _timestamp(rfc3339: str) -> float:
    return dt.datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


def observe(namespace: str, name: str, status: FeatureStoreStatus) -> None:
    ready = status.condition("Ready")
    STORE_READY.labels(namespace, name).set(1 if ready is not None and ready.status == "True" else 0)
    mat = status.materialization
    MATERIALIZATION_FAILED.labels(namespace, name).set(1 if mat.last_result == "Failed" else 0)
    if mat.last_successful_time:
        MATERIALIZATION_LAST_SUCCESS.labels(namespace, name).set(_timestamp(mat.last_successful_time))
    views = {v.name: _timestamp(v.last_end) for v in mat.feature_views}
    record_freshness(namespace, name, views, dt.datetime.now(dt.UTC).timestamp())


def forget(namespace: str, name: str) -> None:
    forget_freshness(namespace, name)
    for gauge in _GAUGES:
        try:
            gauge.remove(namespace, name)
        except KeyError:  # never observed
            pass
