"""Runs in the Feast image after `feast materialize-incremental` (materialize.sh): prints one line
of JSON, the termination message render/freshness.py parses. Views sorted by name, cut before the
kubelet's 4096-byte limit ("truncated": true)."""

import json
import os
from pathlib import Path
from typing import Any

from feast import FeatureStore

LIMIT = 4000


def summary(store: FeatureStore) -> dict[str, Any]:
    views: dict[str, str] = {}
    size, cut = 40, False
    for fv in sorted(store.list_feature_views(allow_cache=False), key=lambda v: v.name):
        end = fv.most_recent_end_time
        if end is None:
            continue
        item = {fv.name: end.isoformat()}
        size += len(json.dumps(item)) + 1
        if size > LIMIT:
            cut = True
            break
        views.update(item)
    return {"v": 1, "views": views, "truncated": cut}


if __name__ == "__main__":
    store = FeatureStore(fs_yaml_file=Path(os.environ["FEAST_FS_YAML_FILE_PATH"]))
    print(json.dumps(summary(store), separators=(",", ":")))
