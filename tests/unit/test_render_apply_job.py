"""The apply Job is named by everything its pod template depends on.

Found by the first real-pod run (tests/e2e/test_node.py), and by reading (issue 14): after
`registry.cacheTtlSeconds` changed, the operator re-applied Job NAME-apply-<revision> with a new
config-hash annotation in its pod template. A Job's template is immutable, so the API server answered
422 on every pass and the store's status was never updated again. Now any change of the template
(config, image, pod settings) is a Job of another name: a new `feast apply`, never a refused update;
an unchanged store renders the same name (no new Job on resync).
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


def _store(cache_ttl: int, image: str | None = None):
    doc = yaml.safe_load((ROOT / "examples" / "local.yaml").read_text())
    doc["metadata"]["uid"] = "0b5e9a52-8c1e-4a43-9b2e-5c0d7f6b1a11"
    doc["spec"]["registry"] = {"cacheTtlSeconds": cache_ttl}
    if image:
        doc["spec"]["images"] = {"feast": image}
    fs = parse_featurestore(doc)
    return fs.model_copy(update={"spec": resolve(fs.spec, CONFIG)})


def _jobs(cache_ttl: int, image: str | None = None) -> dict[str, dict]:
    fs = _store(cache_ttl, image)
    out = render(fs, planned_endpoints(fs), CONFIG, None, REPO)
    return {o["metadata"]["name"]: o for o in out.objects if o["kind"] == "Job"}


def test_a_template_change_is_a_new_job_never_an_update():
    [same] = _jobs(60)
    assert [same] == list(_jobs(60)), "an unchanged store renders the same Job"
    [ttl] = _jobs(17)
    [image] = _jobs(60, "registry.example.com/feast:0.67.0")
    assert len({same, ttl, image}) == 3, "config and image changes each name a new Job"
    for name in (same, ttl, image):
        assert name.startswith("demo-apply-") and len(name) <= 63
