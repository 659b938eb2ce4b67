"""The operator's /metrics names every tenant's FeatureStores (namespace, name, feature views): the chart
fences its pod with a NetworkPolicy that admits the metrics port only from the scrapers the admin names
(metrics.networkPolicy.from; default: namespaces labelled featurestore.kubeflow.org/metrics-scraper=true,
a label only a cluster admin can set), while the webhook and health ports stay reachable. A fence is
never rendered open by mistake: no metrics rule without peers (that would admit every source), no peer
that selects everything. The real API server accepts the policy; enforcement is the CNI's."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from tests.support.helm import CHART, helm, render


def fence(docs: list[dict[str, Any]]) -> dict[str, Any]:
    [policy] = [d for d in docs if d["kind"] == "NetworkPolicy"]
    return policy


def metrics_rules(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in policy["spec"]["ingress"] if any(p["port"] == "metrics" for p in r.get("ports", []))]


@pytest.mark.parametrize("values", [[], ["--set", "webhook.enabled=false"]], ids=["defaults", "no-webhook"])
def test_metrics_port_only_from_the_named_scrapers(helm_bin, values):
    docs = render(helm_bin, *values)
    policy = fence(docs)
    [dep] = [d for d in docs if d["kind"] == "Deployment"]
    pod = dep["spec"]["template"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    names = {p["name"] for p in pod["spec"]["containers"][0]["ports"]}
    for rule in policy["spec"]["ingress"]:
        assert {p["port"] for p in rule["ports"]} <= names, "a named port the container does not have"
        if not rule.get("from"):  # open to every source: never the metrics port
            assert {p["port"] for p in rule["ports"]} <= {"health", "webhook"}, rule
    [metrics] = metrics_rules(policy)
    scrapers = {"featurestore.kubeflow.org/metrics-scraper": "true"}
    assert metrics["from"] == [{"namespaceSelector": {"matchLabels": scrapers}}]
    assert ("webhook" in names) == ("webhook.enabled=false" not in values)


def test_no_scrapers_means_metrics_closed_not_open(helm_bin):
    policy = fence(render(helm_bin, "--set-json", "metrics.networkPolicy.from=[]"))
    assert metrics_rules(policy) == []
    assert all(rule.get("from") is None for rule in policy["spec"]["ingress"])  # health/webhook only


@pytest.mark.parametrize("peers", ["[{}]", '[{"namespaceSelector": {}}]', '[{"podSelector": {}}]'])
def test_a_peer_selecting_everything_is_refused(helm_bin, peers):
    values = f"metrics.networkPolicy.from={peers}"
    out = helm(helm_bin, "template", "fso", str(CHART), "--set-json", values, check=False)
    assert out.returncode != 0 and "networkPolicy" in out.stderr, out.stderr


def test_the_api_server_accepts_the_fence(helm_bin, kube_api, namespace):
    policy = fence(render(helm_bin, namespace=namespace))
    created = client.NetworkingV1Api(kube_api).create_namespaced_network_policy(namespace, policy)
    assert created.spec.ingress[1].ports[0].port == "metrics"
