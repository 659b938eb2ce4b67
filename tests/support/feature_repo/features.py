"""A small Feast feature repo (driver statistics) for the data-path tests and the bench.

``__DRIVER_STATS_PARQUET__`` is replaced by the absolute path of the parquet file the test
generates (see ``tests/support/feature_repo/__init__.py``): offline data stays on a local path
because pyarrow's own GCS filesystem ignores STORAGE_EMULATOR_HOST (a gs:// FileSource hangs
against fake-gcs-server). The registry itself lives on gs:// (the emulator).
"""

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource, ValueType
from feast.types import Float32, Int64, String

driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64, description="A driver")

driver_stats_source = FileSource(
    name="driver_stats_source",
    path="__DRIVER_STATS_PARQUET__",
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
)

#: /push writes here; its batch source is what materialization reads.
driver_stats_push_source = PushSource(name="driver_stats_push_source", batch_source=driver_stats_source)

#: Materialized by the CronJob (``--views driver_hourly_stats``) and push-enabled.
driver_hourly_stats = FeatureView(
    name="driver_hourly_stats",
    entities=[driver],
    ttl=timedelta(days=2),
    schema=[
        Field(name="conv_rate", dtype=Float32),
        Field(name="acc_rate", dtype=Float32),
        Field(name="avg_daily_trips", dtype=Int64),
        Field(name="city", dtype=String),
    ],
    online=True,
    source=driver_stats_push_source,
)

#: Same source, NOT listed in the CronJob's --views: it must stay empty in Redis.
driver_rating = FeatureView(
    name="driver_rating",
    entities=[driver],
    ttl=timedelta(days=2),
    schema=[Field(name="rating", dtype=Float32)],
    online=True,
    source=driver_stats_source,
)

driver_activity = FeatureService(name="driver_activity", features=[driver_hourly_stats])
