"""Per-component pod settings: every knob reaches every component's pod template (checked against
the Kubernetes schema), operator-level defaults merge under the FeatureStore's own, and hostile
values are refused with the field named - or, if they get past the model (operator defaults), are
dropped in render so the operator's labels, annotations and env always win."""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
import pytest
from featurestore_operator.api import OperatorConfig, SpecError, parse_featurestore, resolve
from featurestore_operator.api.pods import PodDefaults, PodSettings
from featurestore_operator.backends.planned import planned_endpoints
from featurestore_operator.render import RepoSource, authz, render
from featurestore_operator.render.hardening import NO_SIDECAR
from featurestore_operator.render.names import CONFIG_HASH_ANNOTATION, OWNER_LABEL, labels

UID = "0b5e9a52-8c1e-4a43-9b2e-5c0d7f6b1a11"

POD: dict[str, Any] = {
    "env": [
        {"name": "FOO", "value": "bar"},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "team-secret", "key": "token"}}},
        {"name": "MY_POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ],
    "envFrom": [{"configMapRef": {"name": "team-env"}}, {"secretRef": {"name": "team-creds"}, "prefix": "T_"}],
    "nodeSelector": {"cloud.google.com/gke-nodepool": "feast"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "feast", "effect": "NoSchedule"}],
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}]}
                ]
            }
        }
    },
    "topologySpreadConstraints": [
        {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway"}
    ],
    "annotations": {"cluster-autoscaler.kubernetes.io/safe-to-evict": "true", "sidecar.istio.io/proxyCPU": "50m"},
    "labels": {"team": "fraud"},
    "imagePullSecrets": [{"name": "private-registry"}],
    "priorityClassName": "feast-high",
    "logLevel": "DEBUG",
}

#: (kind, object name suffix, main container, pod path in the spec)
WORKLOADS = {
    "featureServer": ("Deployment", "demo-feature-server", "feature-server"),
    "registryServer": ("Deployment", "demo-registry-server", "registry-server"),
    "offlineServer": ("Deployment", "demo-offline-server", "offline-server"),
    "ui": ("Deployment", "demo-ui", "ui"),
    "materialization": ("CronJob", "demo-materialize", "materialize"),
    "apply": ("Job", None, "feast-apply"),
    "redis": ("StatefulSet", "demo-redis", "redis"),
}


def manifest(pods: dict[str, dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    pods = pods or {}
    body: dict[str, Any] = {
        "project": "demo",
        "provider": "local",
        "featureServer": {"pod": pods.get("featureServer")},
        "registry": {"server": {"enabled": True, "pod": pods.get("registryServer")}},
        "offlineServer": {"enabled": True, "pod": pods.get("offlineServer")},
        "ui": {"enabled": True, "pod": pods.get("ui")},
        "materialization": {"pod": pods.get("materialization")},
        "featureRepo": {"configMap": {"name": "demo-repo"}, "pod": pods.get("apply")},
        "onlineStore": {"inCluster": {"pod": pods.get("redis")}},
        **spec,
    }
    return {
        "apiVersion": "featurestore.kubeflow.org/v1alpha1",
        "kind": "FeatureStore",
        "metadata": {"name": "demo", "namespace": "team-a", "uid": UID},
        "spec": _drop_none(body),
    }


def _drop_none(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _drop_none(v) for k, v in d.items() if v is not None}
    return d


def objects(doc: dict[str, Any], config: OperatorConfig | None = None) -> list[dict[str, Any]]:
    config = config or OperatorConfig()
    fs = parse_featurestore(doc)
    fs = fs.model_copy(update={"spec": resolve(fs.spec, config)})
    return render(fs, planned_endpoints(fs), config, repo=RepoSource(revision="a1b2c3d4e5f60718")).objects


def template(objs: list[dict[str, Any]], component: str) -> dict[str, Any]:
    kind, name, _ = WORKLOADS[component]
    obj = next(o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name))
    spec = obj["spec"]["jobTemplate"]["spec"] if kind == "CronJob" else obj["spec"]
    return spec["template"]


def main_container(tpl: dict[str, Any], component: str) -> dict[str, Any]:
    return next(c for c in tpl["spec"]["containers"] if c["name"] == WORKLOADS[component][2])


@pytest.mark.parametrize("component", sorted(WORKLOADS))
def test_every_knob_reaches_the_component(component):
    objs = objects(manifest({component: POD}))
    tpl = template(objs, component)
    spec, meta = tpl["spec"], tpl["metadata"]
    assert spec["nodeSelector"] == POD["nodeSelector"]
    assert spec["tolerations"] == POD["tolerations"]
    assert spec["affinity"] == POD["affinity"]
    # the spread counts this component's pods of this store unless the user says otherwise
    assert spec["topologySpreadConstraints"][0]["labelSelector"]["matchLabels"][OWNER_LABEL] == "demo"
    assert spec["topologySpreadConstraints"][0]["whenUnsatisfiable"] == "ScheduleAnyway"
    assert spec["imagePullSecrets"] == [{"name": "private-registry"}]
    assert spec["priorityClassName"] == "feast-high"
    assert meta["labels"]["team"] == "fraud"
    assert meta["annotations"]["cluster-autoscaler.kubernetes.io/safe-to-evict"] == "true"
    c = main_container(tpl, component)
    env = {e["name"]: e for e in c["env"]}
    assert env["FOO"]["value"] == "bar" and env["TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "team-secret"
    assert c["envFrom"] == [
        {"configMapRef": {"name": "team-env"}},
        {"prefix": "T_", "secretRef": {"name": "team-creds"}},
    ]
    if component == "materialization":
        assert c["command"] == ["python"] and c["args"][2:4] == ["--log-level", "DEBUG"]
    elif component != "redis":
        assert c["args"][:2] == ["--log-level", "DEBUG"]
    # no other component picked them up
    for other in set(WORKLOADS) - {component}:
        assert "nodeSelector" not in template(objs, other)["spec"], other
    # and the result is a valid Kubernetes object
    for obj in objs:
        if not obj["apiVersion"].startswith(("kubeflow.org", "security.istio.io")):
            kubernetes_validate.validate(obj, kubernetes_validate.latest_version(), strict=True)


def test_log_level_reaches_the_servers_behind_the_authz_shim():
    """Servers with Kubernetes authz run Feast's CLI through the token shim: the level still
    precedes Feast's subcommand (it used to be dropped for them)."""
    doc = manifest({"featureServer": {"logLevel": "DEBUG"}}, authz={"type": "kubernetes"})
    c = main_container(template(objects(doc), "featureServer"), "featureServer")
    assert c["command"] == authz.SERVE_COMMAND and c["args"][:2] == ["--log-level", "DEBUG"]


def test_no_settings_change_nothing():
    bare = objects(manifest())
    assert all("nodeSelector" not in template(bare, c)["spec"] for c in WORKLOADS)
    assert main_container(template(bare, "featureServer"), "featureServer")["args"][0] == "-f"


def test_operator_defaults_merge_under_the_stores_own():
    defaults = PodDefaults.model_validate(
        {
            "all": {
                "nodeSelector": {"pool": "feast"},
                "tolerations": [{"key": "feast", "operator": "Exists"}],
                "env": [{"name": "A", "value": "all"}, {"name": "B", "value": "all"}],
                "logLevel": "INFO",
            },
            "featureServer": {"env": [{"name": "B", "value": "fs-default"}], "priorityClassName": "serving"},
        }
    )
    config = OperatorConfig(pod_defaults=defaults)
    own = {
        "env": [{"name": "C", "value": "own"}],
        "nodeSelector": {"zone": "a"},
        "tolerations": [{"key": "gpu", "operator": "Exists"}],
        "logLevel": "ERROR",
    }
    objs = objects(manifest({"featureServer": own}), config)
    tpl = template(objs, "featureServer")
    assert tpl["spec"]["nodeSelector"] == {"pool": "feast", "zone": "a"}
    assert [t["key"] for t in tpl["spec"]["tolerations"]] == ["feast", "gpu"]
    assert tpl["spec"]["priorityClassName"] == "serving"
    c = main_container(tpl, "featureServer")
    assert [(e["name"], e["value"]) for e in c["env"] if e["name"] in "ABC"] == [
        ("A", "all"),
        ("B", "fs-default"),
        ("C", "own"),
    ]
    assert c["args"][:2] == ["--log-level", "ERROR"]
    # another component gets only `all`
    ui = template(objs, "ui")
    assert ui["spec"]["nodeSelector"] == {"pool": "feast"} and "priorityClassName" not in ui["spec"]


def test_operator_defaults_from_the_environment(monkeypatch):
    monkeypatch.setenv("FSO_POD_DEFAULTS", '{"all": {"nodeSelector": {"pool": "feast"}}}')
    assert OperatorConfig().pod_defaults.all.node_selector == {"pool": "feast"}


def test_registry_and_offline_servers_autoscale():
    auto = {"minReplicas": 2, "maxReplicas": 4, "targetCpuUtilizationPercentage": 60}
    doc = manifest()
    doc["spec"]["registry"]["server"]["autoscaling"] = auto
    doc["spec"]["offlineServer"]["autoscaling"] = auto
    objs = objects(doc)
    hpas = {o["spec"]["scaleTargetRef"]["name"]: o["spec"] for o in objs if o["kind"] == "HorizontalPodAutoscaler"}
    assert set(hpas) == {"demo-registry-server", "demo-offline-server"}
    assert hpas["demo-registry-server"]["minReplicas"] == 2 and hpas["demo-registry-server"]["maxReplicas"] == 4
    deployments = {o["metadata"]["name"]: o["spec"] for o in objs if o["kind"] == "Deployment"}
    assert "replicas" not in deployments["demo-registry-server"]  # owned by the HPA, never fought over
    assert "replicas" not in deployments["demo-offline-server"]
    assert deployments["demo-ui"]["replicas"] == 1


# --------------------------------------------------------------------------- hostile input

HOSTILE = {
    "operator label": ({"labels": {"app.kubernetes.io/instance": "other"}}, "pod.labels", "set by the operator"),
    "owner label": ({"labels": {OWNER_LABEL: "other"}}, "pod.labels", "set by the operator"),
    "poddefault selector": ({"labels": {"access-feast-other": "true"}}, "pod.labels", "set by the operator"),
    "istio inject label": ({"labels": {"sidecar.istio.io/inject": "false"}}, "pod.labels", "set by the operator"),
    "istio inject": ({"annotations": {"sidecar.istio.io/inject": "false"}}, "pod.annotations", "mesh policy"),
    "istio traffic bypass": (
        {"annotations": {"traffic.sidecar.istio.io/excludeOutboundIPRanges": "0.0.0.0/0"}},
        "pod.annotations",
        "mesh policy",
    ),
    "istio host volume": (
        {"annotations": {"sidecar.istio.io/userVolume": '{"h":{"hostPath":{"path":"/"}}}'}},
        "pod.annotations",
        "mesh policy",
    ),
    "apparmor off": (
        {"annotations": {"container.apparmor.security.beta.kubernetes.io/ui": "unconfined"}},
        "pod.annotations",
        "sandbox",
    ),
    "config hash": ({"annotations": {CONFIG_HASH_ANNOTATION: "x"}}, "pod.annotations", "owns them"),
    "config path env": (
        {"env": [{"name": "FEAST_FS_YAML_FILE_PATH", "value": "/tmp/evil.yaml"}]},
        "pod.env[0].name",
        "set by the operator",
    ),
    "redis password env": (
        {"env": [{"name": "REDIS_PASSWORD", "value": "x"}]},
        "pod.env[0].name",
        "set by the operator",
    ),
    "secret of another namespace": (
        {"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k", "namespace": "kube-system"}}}]},
        "pod.env[0].valueFrom.secretKeyRef.namespace",
        "unknown field",
    ),
    "envFrom of another namespace": (
        {"envFrom": [{"secretRef": {"name": "s", "namespace": "kube-system"}}]},
        "pod.envFrom[0].secretRef.namespace",
        "unknown field",
    ),
    "node field": (
        {"env": [{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.volumes"}}}]},
        "pod.env[0].valueFrom.fieldRef.fieldPath",
        "not a supported downward-API field",
    ),
    "value and valueFrom": (
        {"env": [{"name": "X", "value": "a", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]},
        "pod.env[0]",
        "not both",
    ),
    "system priority": ({"priorityClassName": "system-node-critical"}, "pod.priorityClassName", "reserved"),
    "bad log level": ({"logLevel": "TRACE"}, "pod.logLevel", "is not allowed"),
    "host network": ({"hostNetwork": True}, "pod.hostNetwork", "unknown field"),
}


@pytest.mark.parametrize("component", sorted(WORKLOADS))
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_settings_are_refused_naming_the_field(case, component):
    pod, field, message = HOSTILE[case]
    with pytest.raises(SpecError) as err:
        objects(manifest({component: pod}))
    paths = {p: m for p, m in err.value.problems}
    hit = [m for p, m in paths.items() if p.endswith(field)]
    assert hit and message in hit[0], paths


def test_render_keeps_the_operators_labels_annotations_and_env_even_from_defaults():
    """Operator-level defaults are admin input, but render still never lets any layer take the
    operator's keys (built here without validation, as if a check were missed)."""
    evil = PodSettings.model_construct(
        labels={"app.kubernetes.io/component": "x", OWNER_LABEL: "x", "ok": "1"},
        annotations={"sidecar.istio.io/inject": "true", CONFIG_HASH_ANNOTATION: "x", "fine": "1"},
        env=[],
    )
    config = OperatorConfig.model_construct(
        **{
            **OperatorConfig().__dict__,
            "pod_defaults": PodDefaults.model_construct(**{**PodDefaults().__dict__, "all": evil}),
        }
    )
    objs = objects(manifest(), config)
    for component in WORKLOADS:
        tpl = template(objs, component)
        for key in ("app.kubernetes.io/component", OWNER_LABEL):
            assert tpl["metadata"]["labels"][key] != "x", component
        assert tpl["metadata"]["labels"]["ok"] == "1"
        annotations = tpl["metadata"].get("annotations", {})
        assert annotations.get(CONFIG_HASH_ANNOTATION) != "x"
        assert annotations["fine"] == "1"
        # the sidecar choice stays the operator's: native sidecars (default) put every pod here in the mesh
        assert "sidecar.istio.io/inject" not in annotations
    classic = OperatorConfig.model_construct(**{**config.__dict__, "istio_native_sidecars": False})
    for component in ("materialization", "apply"):  # a classic sidecar never exits: Jobs stay out
        annotations = template(objects(manifest(), classic), component)["metadata"]["annotations"]
        assert annotations["sidecar.istio.io/inject"] == NO_SIDECAR["sidecar.istio.io/inject"]


def test_selector_labels_stay_the_operators():
    objs = objects(manifest({"featureServer": {"labels": {"team": "x"}}}))
    dep = next(o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"] == "demo-feature-server")
    sel = dep["spec"]["selector"]["matchLabels"]
    assert sel.items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    assert (
        dep["spec"]["template"]["metadata"]["labels"].items()
        >= labels(parse_featurestore(copy.deepcopy(manifest())), "feature-server").items()
    )
