"""The apply Job's pod template must not change when only the server config changes.

Found by the first real-pod run (tests/e2e/test_node.py): after `registry.cacheTtlSeconds` changed,
the operator re-applied Job NAME-apply-<revision> with a new config-hash annotation in its pod
template. A Job's template is immutable, so the API server answered 422 on every pass and the
store's status was never updated again. The Job is named by the repo revision alone, so its template
must depend on nothing a config change alters.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from featurestore_operator.api import OperatorConfig, parse_featurestore, resolve
from featurestore_operator.backends.planned import planned_endpoints
from featurestore_operator.render import RepoSource, render

ROOT = Path(__file__).resolve().parents[2]
CONFIG = OperatorConfig()
REPO = RepoSource(revision="a1b2c3d4e5f60718")


def _store(cache_ttl: int):
    doc = yaml.safe_load((ROOT / "examples" / "local.yaml").read_text())
    doc["metadata"]["uid"] = "0b5e9a52-8c1e-4a43-9b2e-5c0d7f6b1a11"
    doc["spec"]["registry"] = {"cacheTtlSeconds": cache_ttl}
    fs = parse_featurestore(doc)
    return fs.model_copy(update={"spec": resolve(fs.spec, CONFIG)})


def _objects(cache_ttl: int) -> dict[tuple[str, str], dict]:
    fs = _store(cache_ttl)
    out = render(fs, planned_endpoints(fs), CONFIG, None, REPO)
    return {(o["kind"], o["metadata"]["name"]): o for o in out.objects}


def test_config_change_keeps_the_apply_job_template():
    before, after = _objects(60), _objects(17)
    [job] = [key for key in before if key[0] == "Job"]
    assert job in after, "the apply Job is named by the repo revision"
    assert before[job]["spec"]["template"] == after[job]["spec"]["template"]
    # the servers still roll on the change
    server = ("Deployment", "demo-feature-server")
    assert before[server]["spec"]["template"] != after[server]["spec"]["template"]
