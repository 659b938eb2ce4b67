"""Current Kubernetes, checked without a current API server (the live tiers run 1.20.2, the only
version this machine builds). For each version of :data:`k8s_schemas.VERSIONS` (oldest and newest GKE
supports, the newest kubernetes-validate ships, and its oldest):

* the discovery that version serves is derived from its OpenAPI schemas and the operator's own
  ``Discovery`` picks API versions from it (tests/support/schema_cluster.py), exactly as on a live
  cluster; every example and every component is rendered with those versions and every object is
  validated strictly (unknown fields are errors); objects of CRDs are checked against the vendored
  upstream CRD where there is one, else they must be listed in docs/support.md as not schema-checked;
* no removed or deprecated API version is ever picked or rendered where a newer one is served;
* `helm template --kube-version X` of the chart, for every value set the chart tests use, and the
  CRD, validate strictly too.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from featurestore_operator.reconcile.versions import discovery
from featurestore_operator.render import ApiVersions
from featurestore_operator.runtime.kinds import KINDS
from featurestore_operator.runtime.kube import UnsafeRequest

from tests.support import k8s_schemas
from tests.support.chart_values import ALL_MONITORING, EVERYTHING, MONITORING_APIS, VALUE_SETS
from tests.support.k8s_schemas import VERSIONS, SchemaMissing, served
from tests.support.pod_security import pod_templates, violations
from tests.support.rendered_stores import rendered
from tests.support.schema_cluster import SchemaApiServer, discovered, kubeflow_crds

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "featurestore-operator"
SUPPORT_PAGE = ROOT / "docs" / "support.md"
#: libyaml where PyYAML has it: the chart's output holds the 175 kB CRD (pure-Python parsing: ~1 s a run)
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
CHART_VALUE_SETS = {
    **VALUE_SETS,
    "everything": EVERYTHING,
    "everything-namespaced": [*EVERYTHING, "--set", "watchNamespaces={a,b}"],
    "monitoring": [*ALL_MONITORING, *MONITORING_APIS],
    # the shape the control-plane tests install (SESSION_CRD, NO_WEBHOOK, test_chart_authz.py)
    "no-crd-no-webhook-no-authz": [
        *("--set", "crds.install=false", "--set", "webhook.enabled=false"),
        *("--set", "authz.kubernetes.enabled=false", "--set", "resyncSeconds=10"),
    ],
}


def _priority(api_version: str) -> tuple[int, int, int]:
    """Kubernetes' version priority (GA > beta > alpha, then the higher number): bigger is newer."""
    m = re.fullmatch(r"(?:.*/)?v(\d+)(?:(alpha|beta)(\d+))?", api_version)
    assert m, api_version
    level = {"alpha": 0, "beta": 1, None: 2}[m.group(2)]
    return level, int(m.group(1)), int(m.group(3) or 0)


def _newer_served(obj: dict[str, Any], gvks: frozenset[k8s_schemas.GVK]) -> list[str]:
    group = obj["apiVersion"].rpartition("/")[0]
    return [
        k8s_schemas.api_version_of(g)
        for g in gvks
        if g[0] == group and g[2] == obj["kind"] and _priority(g[1]) > _priority(obj["apiVersion"])
    ]


def _check(obj: dict[str, Any], version: str) -> tuple[str, list[str]]:
    """('kubernetes' | 'crd' | 'unchecked', problems) for one object."""
    try:
        return "kubernetes", k8s_schemas.problems(obj, version)
    except SchemaMissing:
        pass
    try:
        return "crd", k8s_schemas.crd_problems(obj)
    except SchemaMissing:
        return "unchecked", []


def _unchecked_documented() -> set[str]:
    """Kinds docs/support.md lists under "Not schema-checked"."""
    text = SUPPORT_PAGE.read_text()
    section = text.split("### Not schema-checked", 1)[1].split("\n#", 1)[0]
    return set(re.findall(r"`([A-Z][A-Za-z]+)` \(`[a-z.-]+/v[0-9a-z]+`\)", section))


# --------------------------------------------------------------------------- the derived discovery


def test_the_derived_discovery_is_what_each_version_serves():
    """Pins the derivation on facts from the Kubernetes deprecation guide
    (https://kubernetes.io/docs/reference/using-api/deprecation-guide/)."""
    assert ("autoscaling", "v2beta2", "HorizontalPodAutoscaler") in served("1.25.0")  # removed in 1.26
    assert ("autoscaling", "v2beta2", "HorizontalPodAutoscaler") not in served("1.26.0")
    for version in VERSIONS:
        gvks = served(version)
        assert ("batch", "v1beta1", "CronJob") not in gvks  # removed in 1.25
        assert ("policy", "v1beta1", "PodDisruptionBudget") not in gvks  # removed in 1.25
        assert {("batch", "v1", "CronJob"), ("policy", "v1", "PodDisruptionBudget"), ("", "v1", "Pod")} <= gvks
    assert k8s_schemas.SCHEMAS.joinpath(f"v{kubernetes_validate.latest_version()}-local-strict").is_dir()
    assert max(VERSIONS, key=lambda v: tuple(map(int, v.split(".")))) == kubernetes_validate.latest_version()


def test_discovery_probes_the_facade_as_live():
    """The stand-in refuses a kind/version the facade would refuse to send (it runs the facade's own
    check), and the discovery asked about every child kind."""
    api = SchemaApiServer("1.37.0")
    with pytest.raises(UnsafeRequest):
        asyncio.run(api.served("CronJob", "batch/v2", None))
    asyncio.run(discovery(api).versions())  # type: ignore[arg-type]
    probed = {kind for kind, _ in api.probes}
    assert {k.kind for k in KINDS.values() if k.apply_order is not None} <= probed


# --------------------------------------------------------------------------- rendered objects


@pytest.mark.parametrize("version", sorted(VERSIONS), ids=[f"k8s-{v}" for v in sorted(VERSIONS)])
def test_every_rendered_object_is_valid_for(version):
    versions = discovered(version)
    # the Kubeflow CRDs are there, so every optional object is rendered (RayCluster, PodDefault, ...)
    assert versions.optional_kinds >= {"PodDefault", "AuthorizationPolicy", "RayCluster", "Certificate"}
    errors, checked, unchecked = [], {"kubernetes": 0, "crd": 0}, set()
    for store, objects in rendered(versions).items():
        for obj in objects:
            how, problems = _check(obj, version)
            if how == "unchecked":
                unchecked.add(obj["kind"])
                continue
            checked[how] += 1
            errors += [f"{store}: {obj['kind']}/{obj['metadata']['name']}: {p}" for p in problems]
    assert not errors, f"invalid for Kubernetes {version}:\n" + "\n".join(errors)
    assert checked["kubernetes"] >= 120 and checked["crd"] >= 1, checked
    assert unchecked <= _unchecked_documented(), (
        f"objects of {sorted(unchecked - _unchecked_documented())} are neither schema-checked nor listed "
        f'under "Not schema-checked" in {SUPPORT_PAGE.relative_to(ROOT)}'
    )


@pytest.mark.parametrize("version", sorted(VERSIONS), ids=[f"k8s-{v}" for v in sorted(VERSIONS)])
def test_no_deprecated_version_is_rendered_where_a_newer_is_served(version):
    gvks = served(version) | kubeflow_crds()
    stale = {
        f"{o['kind']} {o['apiVersion']} (served: {newer})"
        for objects in rendered(discovered(version)).values()
        for o in objects
        if (newer := _newer_served(o, gvks))
    }
    assert not stale, stale


#: clusters older than the schema set, as their discovery answers (the live tier runs the 1.20 one)
LEGACY_CLUSTERS: dict[str, frozenset[k8s_schemas.GVK]] = {
    # 1.20: CronJob and PDB in beta only, HPA v2beta2, an Istio before 1.22
    "1.20-istio-1.21": frozenset(
        {
            ("batch", "v1beta1", "CronJob"),
            ("policy", "v1beta1", "PodDisruptionBudget"),
            ("autoscaling", "v2beta2", "HorizontalPodAutoscaler"),
            ("security.istio.io", "v1beta1", "AuthorizationPolicy"),
        }
    ),
    # 1.21 .. 1.24: both CronJob and PDB versions, HPA v2 from 1.23; Istio >= 1.22 serves both
    "1.23-istio-1.22": frozenset(
        {
            ("batch", "v1", "CronJob"),
            ("batch", "v1beta1", "CronJob"),
            ("policy", "v1", "PodDisruptionBudget"),
            ("policy", "v1beta1", "PodDisruptionBudget"),
            ("autoscaling", "v2", "HorizontalPodAutoscaler"),
            ("autoscaling", "v2beta2", "HorizontalPodAutoscaler"),
            ("security.istio.io", "v1", "AuthorizationPolicy"),
            ("security.istio.io", "v1beta1", "AuthorizationPolicy"),
        }
    ),
}
LEGACY_PICKS = {
    "1.20-istio-1.21": ApiVersions(
        cronjob="batch/v1beta1",
        pdb="policy/v1beta1",
        hpa="autoscaling/v2beta2",
        authorization_policy="security.istio.io/v1beta1",
        cronjob_time_zone=False,
        optional_kinds=frozenset({"AuthorizationPolicy"}),
    ),
    "1.23-istio-1.22": ApiVersions(
        cronjob="batch/v1",
        pdb="policy/v1",
        hpa="autoscaling/v2",
        authorization_policy="security.istio.io/v1",
        cronjob_time_zone=False,  # batch/v1beta1 still served: a server without spec.timeZone
        optional_kinds=frozenset({"AuthorizationPolicy"}),
    ),
}


@pytest.mark.parametrize("cluster", sorted(LEGACY_CLUSTERS))
def test_the_picker_takes_the_newest_served_version(cluster):
    """CronJob batch/v1beta1, PDB policy/v1beta1, HPA autoscaling/v2beta2 and AuthorizationPolicy
    v1beta1 only where nothing newer is served."""
    picked = {"CronJob", "PodDisruptionBudget", "HorizontalPodAutoscaler"}
    api = SchemaApiServer("1.25.0")
    api.gvks = frozenset(g for g in served("1.25.0") if g[2] not in picked) | LEGACY_CLUSTERS[cluster]
    assert asyncio.run(discovery(api, namespace="team-a").versions()) == LEGACY_PICKS[cluster]  # type: ignore[arg-type]


def test_the_kinds_table_prefers_the_newest_version_current_kubernetes_serves():
    """Each kind's first choice is the newest the newest Kubernetes (or the CRD) serves, and its
    versions are listed newest first: the picker takes the first served."""
    latest = served(kubernetes_validate.latest_version()) | kubeflow_crds()
    for kind in KINDS.values():
        offered = [g[1] for g in latest if g[0] == kind.group and g[2] == kind.kind]
        if not offered:
            continue  # not a built-in kind and no vendored CRD
        assert kind.versions[0] == max(offered, key=_priority), (kind.kind, kind.versions, offered)
        assert list(kind.versions) == sorted(kind.versions, key=_priority, reverse=True), kind.kind


# --------------------------------------------------------------------------- chart and CRD


TEMPLATES = sorted((CHART / "templates").glob("*"))


def _consulted() -> set[str]:
    """The API versions the chart's templates ask Capabilities about."""
    return {m for t in TEMPLATES for m in re.findall(r'Capabilities\.APIVersions\.Has "([^"]+)"', t.read_text())}


def _capabilities(version: str) -> frozenset[str]:
    """What `helm install` would find in that cluster's discovery, as `--api-versions` values."""
    gvks = served(version)
    return frozenset(
        {k8s_schemas.api_version_of(g) for g in gvks} | {f"{k8s_schemas.api_version_of(g)}/{g[2]}" for g in gvks}
    )


def _template(helm: str, version: str, values: list[str]) -> list[dict[str, Any]]:
    """`helm template --kube-version` with the cluster's served API versions as Capabilities."""
    apis = [a for api in sorted(_capabilities(version)) for a in ("--api-versions", api)]
    cmd = [helm, "template", "fso", str(CHART), "-n", "fso-system", "--include-crds", "--kube-version", version]
    out = subprocess.run([*cmd, *apis, *values], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.load_all(out.stdout, Loader=LOADER) if d]


def test_the_chart_reads_only_api_capabilities():
    """The chart's output depends on the Kubernetes version only through ``.Capabilities.APIVersions.Has``
    (never ``.Capabilities.KubeVersion``): versions that answer those questions alike template alike,
    which lets :func:`chart_docs` run helm once per distinct answer (helm costs ~0.3-1 s a run here)."""
    assert not [t.name for t in TEMPLATES if "KubeVersion" in t.read_text()]
    assert "policy/v1" in _consulted()


@pytest.fixture(scope="module")
def chart_docs(helm_bin) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """{(version, value set): documents} of `helm template --kube-version VERSION` for every version and
    value set; helm runs once per value set and distinct Capabilities answer, in parallel."""
    consulted = _consulted()
    first: dict[frozenset[str], str] = {}
    for version in sorted(VERSIONS):
        first.setdefault(_capabilities(version) & consulted, version)
    jobs = [(v, name) for v in first.values() for name in sorted(CHART_VALUE_SETS)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = dict(zip(jobs, pool.map(lambda j: _template(helm_bin, j[0], CHART_VALUE_SETS[j[1]]), jobs), strict=True))
    return {(v, name): runs[(first[_capabilities(v) & consulted], name)] for v in VERSIONS for name in CHART_VALUE_SETS}


@pytest.mark.parametrize("version", sorted(VERSIONS), ids=[f"k8s-{v}" for v in sorted(VERSIONS)])
def test_chart_templates_are_valid_for(version, chart_docs):
    errors, kinds, unchecked, seen = [], set(), set(), set()
    for (v, value_set), docs in chart_docs.items():
        if v != version:
            continue
        for doc in docs:
            if (text := json.dumps(doc, sort_keys=True)) in seen:
                continue  # the same document in another value set (the CRD, most of all): checked once
            seen.add(text)
            how, problems = _check(doc, version)
            if how == "unchecked":
                unchecked.add(doc["kind"])
                continue
            kinds.add(doc["kind"])
            errors += [f"{value_set}: {doc['kind']}/{doc['metadata']['name']}: {p}" for p in problems]
    assert not errors, f"chart invalid for Kubernetes {version}:\n" + "\n".join(errors)
    assert {"Deployment", "CustomResourceDefinition", "ValidatingWebhookConfiguration", "Certificate"} <= kinds
    assert {"ServiceMonitor", "PodMonitor", "PrometheusRule"} <= unchecked <= _unchecked_documented(), unchecked


@pytest.mark.parametrize("version", sorted(VERSIONS), ids=[f"k8s-{v}" for v in sorted(VERSIONS)])
def test_the_crd_is_valid_for(version):
    files = sorted((ROOT / "crds").glob("*.yaml"))
    assert files
    for path in files:
        for doc in yaml.load_all(path.read_text(), Loader=LOADER):
            assert k8s_schemas.problems(doc, version) == [], path


def test_the_chart_pods_meet_pod_security_restricted(chart_docs):
    """The operator's own Deployment, for every value set (tests/support/pod_security.py)."""
    refused, pods = [], 0
    for (version, value_set), docs in chart_docs.items():
        for doc in docs:
            for where, pod in pod_templates(doc):
                pods += 1
                refused += [f"{value_set}@{version}: {doc['kind']} {where}: {v}" for v in violations(pod)]
    assert not refused, "\n".join(refused)
    assert pods >= len(CHART_VALUE_SETS) * len(VERSIONS)


def test_the_checks_refuse_unknown_fields_and_wrong_types():
    """The validators refuse what a strict server-side apply refuses (the doubles pinned)."""
    objects = [o for objects in rendered(discovered("1.37.0")).values() for o in objects]
    deployment = copy.deepcopy(next(o for o in objects if o["kind"] == "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsNonroot"] = True
    deployment["spec"]["replicas"] = "two"
    problems = k8s_schemas.problems(deployment, "1.37.0")
    assert any("runAsNonroot" in p for p in problems) and any("replicas" in p for p in problems), problems
    certificate = copy.deepcopy(next(o for o in objects if o["kind"] == "Certificate"))
    assert k8s_schemas.crd_problems(certificate) == []
    certificate["spec"]["dnsName"] = ["typo"]
    certificate["spec"]["duration"] = 3600
    problems = k8s_schemas.crd_problems(certificate)
    assert any("dnsName" in p for p in problems) and any("duration" in p for p in problems), problems
    with pytest.raises(SchemaMissing):
        k8s_schemas.problems({"apiVersion": "batch/v1beta1", "kind": "CronJob"}, "1.25.0")  # removed in 1.25
