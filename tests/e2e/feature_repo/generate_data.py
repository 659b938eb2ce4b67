"""Write the e2e's driver statistics: `python generate_data.py [PATH]` (default /data/driver_stats.parquet).

Hourly rows for the last 24 hours for drivers 1001..1005. The latest row of driver N has
conv_rate (N - 1000) / 10 (1001 -> 0.1), older rows 0.99: the e2e checks that the feature server
returns the latest value, i.e. that materialization picked the newest row.
`feast apply` imports every .py file of the repo: nothing runs at import time.
"""

import sys
from datetime import datetime, timedelta, timezone

DRIVERS = [1001, 1002, 1003, 1004, 1005]
HOURS = 24


def frame(now: datetime):
    import pandas as pd

    rows = []
    for driver in DRIVERS:
        for age in range(HOURS):  # age 0 = the latest row
            ts = now - timedelta(hours=age)
            rows.append({
                "driver_id": driver,
                "event_timestamp": ts,
                "created": now,
                "conv_rate": (driver - 1000) / 10 if age == 0 else 0.99,
                "acc_rate": 0.9,
                "avg_daily_trips": driver - 1000 + age,
            })
    df = pd.DataFrame(rows)
    df["conv_rate"] = df["conv_rate"].astype("float32")
    df["acc_rate"] = df["acc_rate"].astype("float32")
    df["avg_daily_trips"] = df["avg_daily_trips"].astype("int64")
    return df


def main(argv: list[str]) -> int:
    path = argv[1] if len(argv) > 1 else "/data/driver_stats.parquet"
    # a minute in the past: materialize-incremental's end time ("now" in its own pod) is later
    now = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=1)
    df = frame(now)
    df.to_parquet(path, index=False)
    print(f"wrote {len(df)} rows for drivers {DRIVERS[0]}..{DRIVERS[-1]} to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
