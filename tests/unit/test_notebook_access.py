"""Notebook access composes: rendered PodDefaults of any number of stores go through the PodDefault
admission stand-in (Kubeflow's webhook rules, tests/support/poddefaults.py) into one pod without a
conflict; the default-store rule (render.kubeflow.default_store); the Kubeflow condition in a
namespace the webhook ignores. On the real API server with the real operator:
tests/controlplane/test_notebook_access.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from featurestore_operator.api import OperatorConfig, parse_featurestore, resolve
from featurestore_operator.backends.planned import planned_endpoints
from featurestore_operator.reconcile.conditions import kubeflow_part
from featurestore_operator.reconcile.controller import default_marks
from featurestore_operator.reconcile.observe import NotebookFacts, observe_notebooks
from featurestore_operator.render import ApiVersions, NotebookAccess, render
from featurestore_operator.render.kubeflow import default_store

from tests.support.fake_kube import FakeKube
from tests.support.poddefaults import PodDefaultConflict, apply_poddefaults

NS = "kubeflow-user-example-com"
PROFILE = {"app.kubernetes.io/part-of": "kubeflow-profile"}


def _fs(name: str, **spec: Any):
    doc = {
        "apiVersion": "featurestore.kubeflow.org/v1alpha1",
        "kind": "FeatureStore",
        "metadata": {"name": name, "namespace": NS, "uid": "0b5e9a52-8c1e-4a43-9b2e-5c0d7f6b1a11"},
        "spec": {"project": name.replace("-", "_"), "provider": "local", **spec},
    }
    fs = parse_featurestore(doc)
    return fs.model_copy(update={"spec": resolve(fs.spec, OperatorConfig())})


def _pd(fs, default: bool) -> dict:
    objs = render(fs, planned_endpoints(fs), OperatorConfig(), ApiVersions(), access=NotebookAccess(default)).objects
    return next(o for o in objs if o["kind"] == "PodDefault")


def _notebook(*stores: str) -> dict:
    return {
        "metadata": {"name": "nb-0", "namespace": NS, "labels": {f"access-feast-{s}": "true" for s in stores}},
        "spec": {"containers": [{"name": "nb", "image": "jupyter"}]},
    }


def _env(pod: dict) -> dict[str, str]:
    return {
        e["name"]: e.get("value") or e["valueFrom"]["secretKeyRef"]["name"] for e in pod["spec"]["containers"][0]["env"]
    }


OIDC = {"type": "oidc", "oidc": {"issuer": "https://idp.example.com/r", "clientId": "feast"}}


@pytest.mark.parametrize("authz", [{}, {"type": "kubernetes"}, OIDC], ids=["none", "kubernetes", "oidc"])
def test_three_stores_compose_in_one_notebook(authz):
    if authz.get("type") == "oidc":
        stores = [_fs(n, authz={**OIDC, "oidc": {**OIDC["oidc"], "secretRef": {"name": f"{n}-oidc"}}}) for n in "abc"]
    else:
        stores = [_fs(n, authz=authz) for n in "abc"]
    pds = [_pd(fs, default=fs.metadata.name == "b") for fs in stores]
    pod = apply_poddefaults(_notebook("a", "b", "c"), pds, namespace_labels=PROFILE)
    env = _env(pod)
    assert env["FEAST_FS_YAML_FILE_PATH"] == "/etc/feast/b/feature_store.yaml"
    for n in "abc":
        assert env[f"FEAST_{n.upper()}_FS_YAML_FILE_PATH"] == f"/etc/feast/{n}/feature_store.yaml"
    mounts = pod["spec"]["containers"][0]["volumeMounts"]
    assert len({m["mountPath"] for m in mounts}) == len(mounts) == len(pod["spec"]["volumes"])


def test_two_defaults_would_be_refused_by_kubeflow():
    """What the rule prevents: Kubeflow's webhook refuses a pod whose PodDefaults set the shared
    variable differently (the pre-fix behaviour, every store setting it)."""
    pds = [_pd(_fs(n), default=True) for n in "ab"]
    with pytest.raises(PodDefaultConflict, match="FEAST_FS_YAML_FILE_PATH"):
        apply_poddefaults(_notebook("a", "b"), pds, namespace_labels=PROFILE)


def test_default_store_rule():
    a, b, c = ("2026-01-01T00:00:00Z", "a"), ("2026-01-02T00:00:00Z", "b"), ("2026-01-03T00:00:00Z", "c")
    assert default_store([a], {}) == "a"  # the only store
    assert default_store([a], {"a": False}) is None  # ... unless it says false
    assert default_store([a, b], {}) is None  # several, none marked: none
    assert default_store([a, b, c], {"c": True}) == "c"  # the marked one
    assert default_store([a, b, c], {"c": True, "b": True}) == "b"  # several marked: the oldest
    assert default_store([a, b], {"a": False, "b": None}) is None


def test_marks_are_read_of_the_namespace_only_and_only_booleans():
    def body(ns: str, name: str, mark: Any) -> dict:
        return {"metadata": {"namespace": ns, "name": name}, "spec": {"kubeflow": {"defaultStore": mark}}}

    bodies = {
        (NS, "a"): body(NS, "a", True),
        (NS, "b"): body(NS, "b", "true"),  # a string from a hostile or broken body: not a mark
        ("other", "c"): body("other", "c", True),
    }
    assert default_marks(bodies, NS) == {"a": True, "b": None}


def test_observe_reads_the_profile_label_of_the_namespace():
    kube = FakeKube()
    fs = _fs("a")

    def facts(look: bool = True) -> NotebookFacts:
        return asyncio.run(observe_notebooks(kube, fs, "t", [], {}, look))

    assert facts() == NotebookFacts("a", None)  # namespace unreadable: unknown, never claimed False
    kube.objects[("Namespace", "", NS)] = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}
    assert facts() == NotebookFacts("a", False)
    kube.objects[("Namespace", "", NS)]["metadata"]["labels"] = PROFILE
    assert facts() == NotebookFacts("a", True)
    assert facts(look=False) == NotebookFacts("a", None)


def test_kubeflow_condition_false_where_the_webhook_will_not_act():
    kinds = ApiVersions().optional_kinds
    part = kubeflow_part(True, True, kinds, NotebookFacts("a", False), "a")
    assert (part.status, part.reason) == ("False", "NotAProfileNamespace")
    assert "app.kubernetes.io/part-of=kubeflow-profile" in part.message
    ok = kubeflow_part(True, True, kinds, NotebookFacts("b", True), "a")
    assert (ok.status, ok.reason) == ("True", "Configured")
    assert "$FEAST_A_FS_YAML_FILE_PATH" in ok.message and "b is the namespace's default store" in ok.message
    # no PodDefault wanted: the namespace label does not matter
    assert kubeflow_part(False, True, kinds, NotebookFacts(None, False), "a").status == "True"


def _yaml_blocks(path: str, section: str) -> list[dict]:
    """The YAML blocks of one ``## section`` of a docs page."""
    import re
    from pathlib import Path

    import yaml

    text = (Path(__file__).resolve().parents[2] / path).read_text()
    text = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", text, re.S)]


def _pod_from(block: dict) -> dict:
    """The pod a documented snippet makes: a pod fragment (KFP) or an InferenceService, whose
    ``spec.predictor.labels`` KServe puts on the predictor pod."""
    if block.get("kind") == "InferenceService":
        labels = block["spec"]["predictor"]["labels"]
    else:
        labels = block["metadata"]["labels"]
    return {
        "metadata": {"name": "p", "namespace": NS, "labels": dict(labels)},
        "spec": {"containers": [{"name": "main", "image": "x"}]},
    }


def test_documented_kfp_and_kserve_snippets_get_the_stores_config():
    demo = _pd(_fs("demo"), default=True)
    blocks = _yaml_blocks("docs/notebooks.md", "Pipelines (KFP) and models (KServe) in the profile namespace")
    assert {b.get("kind", "pod fragment") for b in blocks} == {"InferenceService", "pod fragment"}
    for block in blocks:
        pod = apply_poddefaults(_pod_from(block), [demo], namespace_labels=PROFILE)
        assert _env(pod)["FEAST_DEMO_FS_YAML_FILE_PATH"] == "/etc/feast/demo/feature_store.yaml", block
        assert pod["spec"]["volumes"][0]["configMap"]["name"] == "demo-feast-client"
