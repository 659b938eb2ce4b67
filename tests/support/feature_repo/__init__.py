"""The data-path feature repo (``features.py``) and the parquet data it reads.

The repo reaches ``feast apply`` exactly as an operator user ships it: as the keys of a ConfigMap
(``repo_files``) mounted at /repo by the rendered apply Job.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROJECT = "driver_ranking"
PARQUET_PLACEHOLDER = "__DRIVER_STATS_PARQUET__"

#: Entities with data; UNKNOWN_DRIVER has none (the online store answers nulls for it).
DRIVERS = [1001, 1002, 1003, 1004, 1005]
UNKNOWN_DRIVER = 9999
HOURLY_FEATURES = ["conv_rate", "acc_rate", "avg_daily_trips", "city"]
FEATURE_REFS = [f"driver_hourly_stats:{f}" for f in HOURLY_FEATURES]
RATING_REF = "driver_rating:rating"

#: A repo file that fails at import: `feast apply` must exit non-zero and write nothing.
BROKEN_FILE = ("broken_view.py", "from feast import FeatureView\n\nraise RuntimeError('deliberately broken feature repo file')\n")


def repo_files(parquet_path: str | Path) -> dict[str, str]:
    """ConfigMap data of the feature repo: file name -> content, the parquet path filled in.

    Also a ``.feastignore`` (a dotfile key) and a file it ignores, which would fail `feast apply`
    if the dotfile did not reach the repo dir Feast reads."""
    source = (HERE / "features.py").read_text()
    assert PARQUET_PLACEHOLDER in source
    return {
        "features.py": source.replace(PARQUET_PLACEHOLDER, str(parquet_path)),
        ".feastignore": "# scratch files are not part of the repo\nscratch_*.py\n",
        "scratch_notes.py": "raise RuntimeError('scratch_notes.py must be skipped through .feastignore')\n",
    }


def latest_values(driver_id: int) -> dict[str, object]:
    """The newest row's values of a driver (what materialization must put online)."""
    i = driver_id - 1000
    return {
        "conv_rate": round(0.1 * i, 3),
        "acc_rate": round(0.5 + 0.05 * i, 3),
        "avg_daily_trips": 100 * i,
        "city": f"city-{i}",
        "rating": round(4.0 + 0.1 * i, 3),
    }


def _stale_values(driver_id: int) -> dict[str, object]:
    i = driver_id - 1000
    return {"conv_rate": 0.9, "acc_rate": 0.01, "avg_daily_trips": -i, "city": "stale", "rating": 0.0}


def write_driver_stats(path: str | Path, now: dt.datetime | None = None) -> dict[int, dict[str, object]]:
    """Write the driver stats parquet: per driver one stale row (5 h old) and one newest row
    (1 h old). Returns the newest values per driver."""
    import pandas as pd

    now = (now or dt.datetime.now(dt.timezone.utc)).replace(microsecond=0)
    rows = []
    for d in DRIVERS:
        for age, values in ((5, _stale_values(d)), (1, latest_values(d))):
            ts = now - dt.timedelta(hours=age)
            rows.append({"driver_id": d, "event_timestamp": ts, "created": ts, **values})
    df = pd.DataFrame(rows)
    df["driver_id"] = df["driver_id"].astype("int64")
    df["avg_daily_trips"] = df["avg_daily_trips"].astype("int64")
    df["conv_rate"] = df["conv_rate"].astype("float32")
    df["acc_rate"] = df["acc_rate"].astype("float32")
    df["rating"] = df["rating"].astype("float32")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(path, index=False)
    return {d: latest_values(d) for d in DRIVERS}
