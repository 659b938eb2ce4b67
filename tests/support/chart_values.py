"""The chart's value sets the tests use: the control-plane chart tests install and template them, the
unit tier renders each with `helm template --kube-version` for current Kubernetes versions
(tests/unit/test_current_kubernetes.py)."""

from __future__ import annotations

VALUE_SETS: dict[str, list[str]] = {
    "defaults": [],
    "ha-namespaced-gcp": [
        "--set",
        "replicaCount=2",
        "--set",
        "watchNamespaces={team-a,team-b}",
        "--set",
        "defaultProvider=gcp",
        "--set",
        "gcp.project=my-project",
        "--set",
        "gcp.region=europe-west1",
        "--set",
        "gcp.network=projects/my-project/global/networks/default",
        "--set",
        "serviceAccount.gcpServiceAccount=featurestore-operator@my-project.iam.gserviceaccount.com",
        "--set",
        "images.feast=registry.example.com/feast:0.67.0",
        "--set",
        "image.digest=sha256:" + "a" * 64,
    ],
    "election-onboarding-kind": [
        "--set",
        "leaderElection.enabled=true",
        "--set",
        "istio=false",
        "--set",
        "kubeflow.onboarding.enabled=true",
        "--set",
        "kubeflow.onboarding.template.project=default",
        "--set",
        "metrics.service.enabled=false",
        "--set",
        "kubeflow.aggregateRoles=false",
    ],
    "webhook-cert-manager-policy": [
        "--set",
        "webhook.certManager.enabled=true",
        "--set",
        "policy.maxReplicas=5",
        "--set",
        "policy.allowedProjects={my-project,shared-project}",
        "--set",
        "clusterId=cluster-1",
    ],
}

#: every optional RBAC shape at once (tests/controlplane/test_chart_rbac_table.py)
EVERYTHING = [
    "--set",
    "compute.enabled=true",
    "--set",
    "kubeflow.onboarding.enabled=true",
    "--set",
    "kubeflow.onboarding.template.project=default",
    "--set",
    "leaderElection.enabled=true",
]

#: the Prometheus Operator kinds as a cluster would announce them to `helm template`
MONITORING_APIS = [
    "--api-versions",
    "monitoring.coreos.com/v1/ServiceMonitor",
    "--api-versions",
    "monitoring.coreos.com/v1/PodMonitor",
    "--api-versions",
    "monitoring.coreos.com/v1/PrometheusRule",
]
ALL_MONITORING = [
    "--set",
    "monitoring.serviceMonitor.enabled=true",
    "--set",
    "monitoring.podMonitor.enabled=true",
    "--set",
    "monitoring.prometheusRule.enabled=true",
    "--set",
    "monitoring.dashboard.enabled=true",
]
