"""Per-store gauges the chart's alerts and dashboard read, set from a FeatureStore's status."""

from __future__ import annotations

from featurestore_operator import store_metrics
from featurestore_operator.api.status import FeatureStoreStatus
from prometheus_client import REGISTRY


def _value(metric: str, ns: str = "team-a", name: str = "demo") -> float | None:
    return REGISTRY.get_sample_value(metric, {"namespace": ns, "name": name})


def test_gauges_follow_status_and_go_away():
    status = FeatureStoreStatus.model_validate(
        {
            "conditions": [{"type": "Ready", "status": "False", "reason": "Creating"}],
            "materialization": {"lastResult": "Failed", "lastSuccessfulTime": "2026-11-29T10:00:00Z"},
        }
    )
    store_metrics.observe("team-a", "demo", status)
    assert _value("featurestore_ready") == 0
    assert _value("featurestore_materialization_failed") == 1
    assert _value("featurestore_materialization_last_success_timestamp_seconds") == 1795946400.0

    status = FeatureStoreStatus.model_validate(
        {
            "conditions": [{"type": "Ready", "status": "True", "reason": "Ready"}],
            "materialization": {"lastResult": "Succeeded", "lastSuccessfulTime": "2026-11-29T11:00:00Z"},
        }
    )
    store_metrics.observe("team-a", "demo", status)
    assert _value("featurestore_ready") == 1 and _value("featurestore_materialization_failed") == 0
    assert _value("featurestore_materialization_last_success_timestamp_seconds") == 1795950000.0

    store_metrics.forget("team-a", "demo")
    assert _value("featurestore_ready") is None
    assert _value("featurestore_materialization_last_success_timestamp_seconds") is None
    store_metrics.forget("team-a", "demo")  # twice is fine
