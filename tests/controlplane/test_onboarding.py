"""Kubeflow integration against the real API server with the real operator process: profile
onboarding from the template, PodDefault / AuthorizationPolicy / NetworkPolicy / Role contents,
opt-out, user edits and deletions surviving restarts, Profiles, a shared online store, and optional
CRDs that are absent at first (on a second, bare control plane)."""

from __future__ import annotations

import base64
import json
import re
import secrets
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes import config as kube_config
from kubernetes.client.rest import ApiException

from tests.support import chart_identity, kube
from tests.support.kube import G, P, V, condition, gone, list_fs
from tests.support.logs import tracebacks
from tests.support.operator_process import OperatorProcess
from tests.support.prerequisites import project_crd_files, support_crd_files
from tests.support.rbac import can
from tests.support.waiting import wait_for

PROFILE_LABEL = {"app.kubernetes.io/part-of": "kubeflow-profile"}
OPT_OUT = "featurestore.kubeflow.org/onboarding"
ONBOARDED_FROM = "featurestore.kubeflow.org/onboarded-from"
TEMPLATE: dict[str, Any] = {
    "name": "feast",
    "labels": {"team": "data"},
    "spec": {
        "project": "{namespace}",
        "provider": "local",
        "featureServer": {"replicas": 2},
        "materialization": {"schedule": "*/30 * * * *"},
        "kubeflow": {"allowedNamespaces": ["kserve-models"]},
    },
}


def project_of(namespace: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", namespace)


def onboarding_env(template: dict[str, Any] = TEMPLATE, **extra: str) -> dict[str, str]:
    # debug logging: "onboarding: NS skipped: WHY" is the positive signal before a negative check
    return {
        "FSO_RESYNC_SECONDS": "10",
        "FSO_ONBOARDING_ENABLED": "true",
        "FSO_DEBUG": "1",
        "FSO_ONBOARDING_TEMPLATE": json.dumps(template),
        **extra,
    }


@pytest.fixture
def start_operator(control_plane, featurestore_crd) -> Iterator[Any]:
    """Start operator processes (stopped, and their logs printed, at the end of the test)."""
    procs: list[OperatorProcess] = []

    def start(env: dict[str, str], kubeconfig: str | None = None) -> OperatorProcess:
        proc = OperatorProcess(kubeconfig or control_plane.kubeconfig, env=env)
        procs.append(proc)
        return proc.start()

    yield start
    for proc in procs:
        proc.stop()
        print(f"--- operator log {proc.log_path}\n" + proc.log_text()[-8000:])


@pytest.fixture
def profiles(kube_api) -> Iterator[Any]:
    """Create Profiles (cluster-scoped, kubeflow.org/v1); deleted after the test."""
    custom = client.CustomObjectsApi(kube_api)
    made: list[str] = []

    def make(name: str, annotations: dict[str, str] | None = None) -> str:
        custom.create_cluster_custom_object(
            "kubeflow.org",
            "v1",
            "profiles",
            {
                "apiVersion": "kubeflow.org/v1",
                "kind": "Profile",
                "metadata": {"name": name, **({"annotations": annotations} if annotations else {})},
                "spec": {"owner": {"kind": "User", "name": f"{name}@example.com"}},
            },
        )
        made.append(name)
        return name

    yield make
    for name in made:
        try:
            custom.delete_cluster_custom_object("kubeflow.org", "v1", "profiles", name)
        except ApiException as exc:
            if exc.status != 404:
                raise


def onboarded_fs(kube_api, ns: str) -> dict[str, Any] | None:
    """The onboarded FeatureStore (named ``feast`` by the template), None when absent."""
    return kube.get_fs(kube_api, ns, "feast")


def skipped(proc: OperatorProcess, ns: str) -> bool:
    """The operator evaluated ``ns`` and decided not to onboard it (a debug log line)."""
    return f"onboarding: {ns} skipped" in proc.log_text()


def wait_skipped(proc: OperatorProcess, ns: str) -> None:
    wait_for(lambda: skipped(proc, ns), timeout=60, interval=0.5, what=f"the operator's verdict on {ns}")


def wait_onboarded(kube_api, ns: str, timeout: float = 60) -> dict[str, Any]:
    return wait_for(lambda: onboarded_fs(kube_api, ns), timeout=timeout, interval=0.3, what=f"FeatureStore in {ns}")


def marker(kube_api, ns: str):
    try:
        return client.CoreV1Api(kube_api).read_namespaced_config_map("featurestore-onboarding", ns)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


# --------------------------------------------------------------------------------------------


def test_labelled_namespace_gets_featurestore_podDefault_policy_and_reader_role(
    start_operator, kube_api, make_namespace
):
    start_operator(onboarding_env())
    ns = make_namespace("kubeflow-user-alice", labels=PROFILE_LABEL)
    fs = wait_onboarded(kube_api, ns)

    # The template's fields, {namespace} substituted and sanitized to a Feast project.
    assert fs["spec"]["project"] == project_of(ns)
    assert fs["spec"]["provider"] == "local"
    assert fs["spec"]["featureServer"]["replicas"] == 2
    assert fs["spec"]["materialization"]["schedule"] == "*/30 * * * *"
    assert fs["spec"]["kubeflow"]["allowedNamespaces"] == ["kserve-models"]
    assert fs["metadata"]["labels"]["team"] == "data"
    assert re.fullmatch(r"[0-9a-f]{12}", fs["metadata"]["annotations"][ONBOARDED_FROM])
    cm = wait_for(lambda: marker(kube_api, ns), what="onboarding marker")
    assert cm.data["featureStore"] == "feast" and cm.data["result"] == "Created"
    assert cm.data["templateHash"] == fs["metadata"]["annotations"][ONBOARDED_FROM]

    # Notebook access: the PodDefault mounts the client config and points Feast at it.
    custom, core = client.CustomObjectsApi(kube_api), client.CoreV1Api(kube_api)
    pd = wait_for(
        lambda: custom.get_namespaced_custom_object(
            "kubeflow.org", "v1alpha1", ns, "poddefaults", "feast-feast-access"
        ),
        what="PodDefault",
    )
    spec = pd["spec"]
    assert spec["selector"] == {"matchLabels": {"access-feast-feast": "true"}}
    assert spec["desc"] == "Allow access to Feast (feast)"
    assert spec["env"] == [  # the namespace's only store is its default (and has its own variable too)
        {"name": "FEAST_FS_YAML_FILE_PATH", "value": "/etc/feast/feast/feature_store.yaml"},
        {"name": "FEAST_FEAST_FS_YAML_FILE_PATH", "value": "/etc/feast/feast/feature_store.yaml"},
    ]
    assert spec["volumes"] == [{"name": "feast-feast", "configMap": {"name": "feast-feast-client"}}]
    assert spec["volumeMounts"] == [{"name": "feast-feast", "mountPath": "/etc/feast/feast", "readOnly": True}]
    assert pd["metadata"]["ownerReferences"][0]["uid"] == fs["metadata"]["uid"]
    client_cfg = yaml.safe_load(
        wait_for(lambda: core.read_namespaced_config_map("feast-feast-client", ns), what="client ConfigMap").data[
            "feature_store.yaml"
        ]
    )
    assert client_cfg["project"] == project_of(ns)
    assert client_cfg["online_store"] == {
        "type": "remote",
        "path": f"http://feast-feature-server.{ns}.svc.cluster.local:6566",
    }
    assert "password" not in json.dumps(client_cfg)

    # Network: only the profile namespace and the allowed namespaces may call the feature server.
    ap = wait_for(
        lambda: custom.get_namespaced_custom_object(
            "security.istio.io", "v1beta1", ns, "authorizationpolicies", "feast-feature-server"
        ),
        what="AuthorizationPolicy",
    )
    assert ap["spec"]["action"] == "ALLOW"
    assert ap["spec"]["rules"] == [
        {"from": [{"source": {"namespaces": [ns, "kserve-models"]}}], "to": [{"operation": {"ports": ["6566"]}}]}
    ]
    assert ap["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "feature-server"
    # NetworkPolicies too (Istio does not fence traffic that bypasses the sidecar).
    netpol = wait_for(
        lambda: client.NetworkingV1Api(kube_api).read_namespaced_network_policy("feast-feature-server", ns),
        what="NetworkPolicy",
    )
    assert netpol.spec.ingress[0].ports[0].port == 6566

    # Identity: the profile's default-editor may read this client config, and nothing more from us.
    editor = f"system:serviceaccount:{ns}:default-editor"
    wait_for(
        lambda: can(kube_api, editor, "get", "configmaps", "", ns, name="feast-feast-client"),
        what="default-editor reads the client config",
    )
    assert not can(kube_api, editor, "get", "configmaps", "", ns, name="feast-feast-config")
    assert not can(kube_api, editor, "list", "configmaps", "", ns)
    viewer = f"system:serviceaccount:{ns}:default-viewer"
    assert not can(kube_api, viewer, "get", "configmaps", "", ns, name="feast-feast-client")

    fs = wait_for(
        lambda: (f := onboarded_fs(kube_api, ns)) and condition(f, "Kubeflow") and f, what="Kubeflow condition"
    )
    assert condition(fs, "Kubeflow")["status"] == "True", condition(fs, "Kubeflow")
    events = wait_for(
        lambda: [
            e
            for e in core.list_namespaced_event(ns, field_selector="involvedObject.name=feast").items
            if e.reason == "Onboarded"
        ],
        what="Onboarded event",
    )
    assert fs["metadata"]["annotations"][ONBOARDED_FROM] in events[0].message

    # Deleted owned Kubeflow objects are restored (the operator watches PodDefaults and its Roles;
    # PodDefaults in kubeflow.org/v1alpha1 although the group's preferred version is v1, Profiles).
    custom.delete_namespaced_custom_object("kubeflow.org", "v1alpha1", ns, "poddefaults", "feast-feast-access")
    wait_for(
        lambda: custom.get_namespaced_custom_object(
            "kubeflow.org", "v1alpha1", ns, "poddefaults", "feast-feast-access"
        ),
        timeout=60,
        what="PodDefault restored",
    )
    rbac = client.RbacAuthorizationV1Api(kube_api)
    rbac.delete_namespaced_role("feast-feast-client-reader", ns)
    wait_for(lambda: rbac.read_namespaced_role("feast-feast-client-reader", ns), timeout=60, what="Role restored")


def test_opt_out_unlabelled_and_label_removal(start_operator, kube_api, make_namespace):
    proc = start_operator(onboarding_env())
    by_annotation = make_namespace("optout-a", labels=PROFILE_LABEL, annotations={OPT_OUT: "disabled"})
    by_label = make_namespace("optout-l", labels={**PROFILE_LABEL, OPT_OUT: "disabled"})
    unlabelled = make_namespace("plain")
    control = make_namespace("control", labels=PROFILE_LABEL)
    wait_onboarded(kube_api, control)
    core = client.CoreV1Api(kube_api)
    # the control store reconciled (its client ConfigMap exists) before we check below that it stays
    wait_for(
        lambda: core.read_namespaced_config_map("feast-feast-client", control),
        timeout=120,
        interval=0.5,
        what="the control store's client ConfigMap",
    )
    for ns in (by_annotation, by_label, unlabelled):
        wait_skipped(proc, ns)
        assert not list_fs(kube_api, ns), ns
        assert marker(kube_api, ns) is None, ns

    # Opting back in onboards the namespace.
    core.patch_namespace(by_annotation, {"metadata": {"annotations": {OPT_OUT: None}}})
    wait_onboarded(kube_api, by_annotation)

    # Removing the label (or opting out later) deletes nothing: a namespace labelled after that
    # change (later in the same watch stream) is onboarded, and the control store is still there.
    core.patch_namespace(control, {"metadata": {"labels": {"app.kubernetes.io/part-of": None, OPT_OUT: "disabled"}}})
    wait_onboarded(kube_api, make_namespace("sentinel", labels=PROFILE_LABEL))
    assert onboarded_fs(kube_api, control) is not None
    assert client.CoreV1Api(kube_api).read_namespaced_config_map("feast-feast-client", control)


def test_user_edits_and_deletions_survive_restarts_and_template_changes(start_operator, kube_api, make_namespace):
    first = start_operator(onboarding_env())
    edited = make_namespace("edited", labels=PROFILE_LABEL)
    deleted = make_namespace("deleted", labels=PROFILE_LABEL)
    wait_onboarded(kube_api, edited)
    wait_onboarded(kube_api, deleted)
    for ns in (edited, deleted):  # onboarding finished (its last step) before the operator stops
        wait_for(lambda ns=ns: marker(kube_api, ns), what=f"marker in {ns}")
    custom = client.CustomObjectsApi(kube_api)
    custom.patch_namespaced_custom_object(
        G,
        V,
        edited,
        P,
        "feast",
        {
            "metadata": {"labels": {"team": "mine"}},
            "spec": {"featureServer": {"replicas": 1}, "materialization": {"schedule": "0 3 * * *"}},
        },
    )
    before = onboarded_fs(kube_api, edited)
    custom.delete_namespaced_custom_object(G, V, deleted, P, "feast")
    wait_for(lambda: onboarded_fs(kube_api, deleted) is None, what="deleted")
    first.stop()

    # A new operator with a changed template: resume looks at every profile namespace again.
    changed = {**TEMPLATE, "spec": {**TEMPLATE["spec"], "featureServer": {"replicas": 3}}}
    second = start_operator(onboarding_env(changed))
    later = make_namespace("later", labels=PROFILE_LABEL)
    assert wait_onboarded(kube_api, later)["spec"]["featureServer"]["replicas"] == 3  # new template for new profiles
    for ns in (edited, deleted):  # the new process looked at both: its marker says it was onboarded before
        wait_for(
            lambda ns=ns: f"namespace {ns} was onboarded before" in second.log_text(),
            timeout=60,
            what=f"the second operator's verdict on {ns}",
        )
    after = onboarded_fs(kube_api, edited)
    assert after["spec"] == before["spec"] and after["metadata"]["generation"] == before["metadata"]["generation"]
    assert after["metadata"]["labels"]["team"] == "mine"
    assert (
        after["metadata"]["annotations"][ONBOARDED_FROM]
        != onboarded_fs(kube_api, later)["metadata"]["annotations"][ONBOARDED_FROM]
    )
    assert onboarded_fs(kube_api, deleted) is None, "a FeatureStore the user deleted came back"

    # Deleting the marker asks for onboarding again.
    client.CoreV1Api(kube_api).delete_namespaced_config_map("featurestore-onboarding", deleted)
    assert wait_onboarded(kube_api, deleted)["spec"]["featureServer"]["replicas"] == 3
    assert second.alive()


def test_existing_featurestore_of_the_same_name_is_left_alone(start_operator, kube_api, make_namespace):
    ns = make_namespace("own")
    custom = client.CustomObjectsApi(kube_api)
    custom.create_namespaced_custom_object(
        G,
        V,
        ns,
        P,
        {"apiVersion": f"{G}/{V}", "kind": "FeatureStore", "metadata": {"name": "feast"}, "spec": {"project": "mine"}},
    )
    original = onboarded_fs(kube_api, ns)
    start_operator(onboarding_env())
    client.CoreV1Api(kube_api).patch_namespace(ns, {"metadata": {"labels": PROFILE_LABEL}})
    cm = wait_for(lambda: marker(kube_api, ns), what="marker")
    assert cm.data["result"] == "Existed"
    fs = onboarded_fs(kube_api, ns)
    assert fs["spec"]["project"] == "mine" and ONBOARDED_FROM not in (fs["metadata"].get("annotations") or {})
    assert fs["metadata"]["generation"] == original["metadata"]["generation"]


def test_profiles_onboard_their_namespace(start_operator, kube_api, make_namespace, profiles):
    proc = start_operator(onboarding_env())
    # Profile first: no namespace yet (no profile controller runs here), then the namespace appears.
    early = profiles(f"alice-{secrets.token_hex(3)}")
    wait_skipped(proc, early)  # "does not exist" yet
    make_namespace(name=early)  # not labelled: the Profile alone qualifies it
    assert wait_onboarded(kube_api, early)["spec"]["project"] == project_of(early)
    # Namespace first, Profile later.
    late = make_namespace("bob")
    wait_skipped(proc, late)
    assert not list_fs(kube_api, late)
    profiles(late)
    wait_onboarded(kube_api, late)
    # Opt-out on the Profile.
    out = profiles(f"carol-{secrets.token_hex(3)}", annotations={OPT_OUT: "disabled"})
    make_namespace(name=out)
    wait_for(
        lambda: proc.log_text().count(f"onboarding: {out} skipped") >= 2,
        timeout=60,
        what=f"the verdicts on {out} after its Profile and after its namespace",
    )
    assert not list_fs(kube_api, out)
    # Deleting a Profile deletes nothing of ours (a Profile created after the deletion is onboarded,
    # so the deletion has been seen).
    client.CustomObjectsApi(kube_api).delete_cluster_custom_object("kubeflow.org", "v1", "profiles", late)
    sentinel = profiles(f"dan-{secrets.token_hex(3)}")
    make_namespace(name=sentinel)
    wait_onboarded(kube_api, sentinel)
    assert onboarded_fs(kube_api, late) is not None


def test_network_policy_when_istio_is_off(start_operator, kube_api, make_namespace):
    start_operator(onboarding_env(FSO_ISTIO="false"))
    ns = make_namespace("noistio", labels=PROFILE_LABEL)
    wait_onboarded(kube_api, ns)
    net = client.NetworkingV1Api(kube_api)
    policy = wait_for(lambda: net.read_namespaced_network_policy("feast-feature-server", ns), what="NetworkPolicy")
    assert policy.spec.policy_types == ["Ingress"]
    assert policy.spec.pod_selector.match_labels["app.kubernetes.io/component"] == "feature-server"
    [rule] = policy.spec.ingress
    # its own namespace as podSelector {} (Kubernetes 1.20 sets no kubernetes.io/metadata.name), others by name
    own, other = rule._from
    assert own.namespace_selector is None and own.pod_selector.to_dict() == {
        "match_expressions": None,
        "match_labels": None,
    }
    [expr] = other.namespace_selector.match_expressions
    assert (expr.key, expr.operator, expr.values) == ("kubernetes.io/metadata.name", "In", ["kserve-models"])
    assert [(p.port, p.protocol) for p in rule.ports] == [(6566, "TCP")]
    custom = client.CustomObjectsApi(kube_api)
    assert not custom.list_namespaced_custom_object("security.istio.io", "v1beta1", ns, "authorizationpolicies")[
        "items"
    ]
    fs = wait_for(
        lambda: (f := onboarded_fs(kube_api, ns)) and condition(f, "Kubeflow") and f, what="Kubeflow condition"
    )
    assert condition(fs, "Kubeflow")["status"] == "True", condition(fs, "Kubeflow")


def test_shared_online_store_one_redis_many_projects(start_operator, kube_api, make_namespace):
    core = client.CoreV1Api(kube_api)
    system = make_namespace("feast-system")
    core.create_namespaced_secret(
        system,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="shared-redis"),
            string_data={"host": "10.1.2.3", "port": "6378", "password": "s3cret-one"},
        ),
    )
    template = {
        "name": "feast",
        "spec": {"project": "{namespace}", "provider": "local"},
        "sharedOnlineStore": {"secretRef": {"namespace": system, "name": "shared-redis"}},
    }
    start_operator(onboarding_env(template))
    a = make_namespace("team-a", labels=PROFILE_LABEL)
    b = make_namespace("team-b", labels=PROFILE_LABEL)
    for ns in (a, b):
        fs = wait_onboarded(kube_api, ns)
        assert fs["spec"]["project"] == project_of(ns)
        assert fs["spec"]["onlineStore"] == {
            "external": {"secretRef": {"name": "feast-shared-online-store"}, "tls": False}
        }
        # the marker is onboarding's last step: the copy got its ownerReference (set once the store exists) before
        wait_for(lambda ns=ns: marker(kube_api, ns), timeout=60, interval=0.3, what=f"{ns} onboarded")
        copy = core.read_namespaced_secret("feast-shared-online-store", ns)
        assert base64.b64decode(copy.data["password"]).decode() == "s3cret-one"
        assert copy.metadata.owner_references and copy.metadata.owner_references[0].uid == fs["metadata"]["uid"]
        assert not copy.metadata.owner_references[0].controller
        cfg = wait_for(
            lambda ns=ns: core.read_namespaced_config_map("feast-feast-config", ns), what="server config"
        ).data["feature_store.yaml"]
        server = yaml.safe_load(cfg)
        assert server["project"] == project_of(ns)
        assert server["online_store"]["connection_string"] == "10.1.2.3:6378,password=${REDIS_PASSWORD}"
        assert "s3cret" not in cfg
        assert not client.AppsV1Api(kube_api).list_namespaced_stateful_set(ns).items, "no Redis per profile"
        fs = wait_for(
            lambda ns=ns: (
                (f := onboarded_fs(kube_api, ns)) and (c := condition(f, "OnlineStore")) and c["status"] == "True" and f
            ),
            what="OnlineStore ready on the shared Redis",
        )

    # A rotated password reaches every copy.
    core.patch_namespaced_secret("shared-redis", system, {"stringData": {"password": "s3cret-two"}})
    for ns in (a, b):
        wait_for(
            lambda ns=ns: (
                base64.b64decode(core.read_namespaced_secret("feast-shared-online-store", ns).data["password"]).decode()
                == "s3cret-two"
            ),
            timeout=60,
            what=f"rotated copy in {ns}",
        )

    # The copy goes with its FeatureStore.
    client.CustomObjectsApi(kube_api).delete_namespaced_custom_object(G, V, a, P, "feast")

    wait_for(
        gone(lambda: core.read_namespaced_secret("feast-shared-online-store", a)),
        timeout=90,
        what="copy garbage-collected",
    )


# ------------------------------------------------------------------ optional CRDs absent at first


@pytest.fixture
def bare_control_plane(control_plane, featurestore_crd):
    """A second control plane with only the FeatureStore CRD: no Kubeflow, no Istio (~6 s)."""
    from tests.support.controlplane import ControlPlane

    cp = ControlPlane(control_plane.binaries).start()
    chart_identity.register(cp.server, str(cp.ca_file), cp.token)  # its operators run under the chart's RBAC too
    try:
        cp.install_crds(project_crd_files())
        api = kube_config.new_client_from_config(config_file=cp.kubeconfig)
        try:
            yield cp, api
        finally:
            api.close()
    finally:
        cp.stop()


def _healthy(proc: OperatorProcess) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{proc.health_port}/healthz", timeout=2) as r:
        return r.status == 200


def _onboard_without_kubeflow(cp, api, start_operator) -> tuple[OperatorProcess, str]:
    """An operator (resync far away: what follows must come from watches) and a store onboarded on a
    cluster without the Kubeflow/Istio CRDs, its Kubeflow condition saying so."""
    proc = start_operator(onboarding_env(FSO_RESYNC_SECONDS="600"), kubeconfig=cp.kubeconfig)
    core = client.CoreV1Api(api)
    ns = f"kubeflow-user-{secrets.token_hex(3)}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns, labels=PROFILE_LABEL)))
    wait_onboarded(api, ns)  # onboarding works without the Profile CRD
    c = wait_for(lambda: kubeflow_condition(api, ns, "False"), timeout=60, what="Kubeflow condition False")
    assert c["reason"] == "CRDNotInstalled"
    assert "PodDefault (kubeflow.org/v1alpha1)" in c["message"] and "AuthorizationPolicy" in c["message"]
    assert "picked up" in c["message"]
    return proc, ns


def kubeflow_condition(api, ns: str, status: str) -> dict[str, Any] | None:
    c = condition(onboarded_fs(api, ns), "Kubeflow")
    return c if c and c["status"] == status else None


def test_missing_optional_crds_are_reported_then_picked_up(bare_control_plane, start_operator):
    # (bare_control_plane first: set up before, torn down after the operator)
    cp, api = bare_control_plane
    proc, ns = _onboard_without_kubeflow(cp, api, start_operator)
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    assert _healthy(proc) and proc.alive()
    assert not tracebacks(proc.log_text())
    # The rest of the store is there; the Role is not (no PodDefault, nothing to read it for).
    assert core.read_namespaced_config_map("feast-feast-client", ns)
    assert not client.RbacAuthorizationV1Api(api).list_namespaced_role(ns).items

    # Kubeflow and Istio get installed: picked up without a restart (well before discovery's TTL).
    cp.install_crds(support_crd_files())
    c = wait_for(lambda: kubeflow_condition(api, ns, "True"), timeout=60, interval=0.5, what="Kubeflow condition True")
    assert c["reason"] == "Configured"
    assert custom.get_namespaced_custom_object("kubeflow.org", "v1alpha1", ns, "poddefaults", "feast-feast-access")
    assert custom.get_namespaced_custom_object(
        "security.istio.io", "v1beta1", ns, "authorizationpolicies", "feast-feature-server"
    )
    wait_for(
        lambda: client.RbacAuthorizationV1Api(api).read_namespaced_role("feast-feast-client-reader", ns),
        what="client config reader Role",
    )
    assert _healthy(proc) and proc.alive()


def test_optional_crds_installed_later_are_watched(bare_control_plane, start_operator):
    """docs/concepts/design.md: installing PodDefault/AuthorizationPolicy CRDs later is picked up - including the
    watches: a deleted PodDefault comes back and a new Profile onboards its namespace, with the
    resync 600 s away (only a watch can see either)."""
    cp, api = bare_control_plane
    proc, ns = _onboard_without_kubeflow(cp, api, start_operator)
    custom = client.CustomObjectsApi(api)
    cp.install_crds(support_crd_files())
    wait_for(lambda: kubeflow_condition(api, ns, "True"), timeout=60, interval=0.5, what="Kubeflow condition True")

    custom.delete_namespaced_custom_object("kubeflow.org", "v1alpha1", ns, "poddefaults", "feast-feast-access")
    wait_for(
        lambda: custom.get_namespaced_custom_object(
            "kubeflow.org", "v1alpha1", ns, "poddefaults", "feast-feast-access"
        ),
        timeout=60,
        what="the deleted PodDefault restored (PodDefaults watched)",
    )
    profile = f"erin-{secrets.token_hex(3)}"
    client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=profile)))
    wait_skipped(proc, profile)  # unlabelled: not a profile namespace yet
    custom.create_cluster_custom_object(
        "kubeflow.org",
        "v1",
        "profiles",
        {
            "apiVersion": "kubeflow.org/v1",
            "kind": "Profile",
            "metadata": {"name": profile},
            "spec": {"owner": {"kind": "User", "name": f"{profile}@example.com"}},
        },
    )
    wait_onboarded(api, profile)  # Profiles watched
