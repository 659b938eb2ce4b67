"""Feature definitions of the kind e2e (a ConfigMap feature repo; `feast apply` imports this file).

One entity (driver) and one feature view whose FileSource is a parquet file on the FeatureStore's
data volume (provider local mounts its PersistentVolumeClaim at /data in every Feast pod). The
file is written by generate_data.py, run by the e2e script as a one-off Job on the same volume
after `feast apply` and before the materialization. The schema is explicit (entity column
included), so `feast apply` infers nothing and never reads the file: applying works before the
data exists.
"""

import os
from datetime import timedelta

from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.types import Float32, Int64

#: Where generate_data.py writes the data (override for a local run of the repo).
DATA_PATH = os.environ.get("FEAST_E2E_DATA", "/data/driver_stats.parquet")

driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64, description="A driver (driver_id).")

driver_stats_source = FileSource(
    name="driver_stats_source",
    path=DATA_PATH,
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
)

driver_hourly_stats = FeatureView(
    name="driver_hourly_stats",
    entities=[driver],
    # materialize-incremental's first run starts at now - ttl: the generated rows are recent.
    ttl=timedelta(days=7),
    schema=[
        Field(name="driver_id", dtype=Int64),
        Field(name="conv_rate", dtype=Float32),
        Field(name="acc_rate", dtype=Float32),
        Field(name="avg_daily_trips", dtype=Int64),
    ],
    online=True,
    source=driver_stats_source,
)
