"""Pod settings through the real API server: the CRD schema keeps every knob (nothing pruned,
free-form affinity preserved), drops fields Kubernetes would honour but we do not offer (a
secretKeyRef's namespace), and the rendered workloads carrying them are accepted by server-side
apply and read back as written."""

from __future__ import annotations

import json
import subprocess

from featurestore_operator.api import OperatorConfig, parse_featurestore, resolve
from featurestore_operator.backends.planned import planned_endpoints
from featurestore_operator.render import RepoSource, render

from tests.support.versions import V120
from tests.unit.test_podknobs import POD, manifest

G = "featurestore.kubeflow.org"
#: the control plane is Kubernetes 1.20


def test_pod_settings_survive_the_api_server_and_apply(control_plane, featurestore_crd, kubectl_bin, namespace):
    doc = manifest({"featureServer": POD, "materialization": POD})
    doc["metadata"] = {"name": "demo"}
    hostile_env = {
        "name": "STOLEN",
        "valueFrom": {"secretKeyRef": {"name": "s", "key": "k", "namespace": "kube-system"}},
    }
    doc["spec"]["ui"]["pod"] = {"env": [hostile_env]}
    created = control_plane.request("POST", f"/apis/{G}/v1alpha1/namespaces/{namespace}/featurestores", doc)

    spec = created["spec"]
    assert spec["featureServer"]["pod"] == POD  # every knob kept, affinity included
    assert spec["materialization"]["pod"] == POD
    # pruned by the schema: the operator never even sees another namespace's name
    assert spec["ui"]["pod"]["env"] == [{"name": "STOLEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]

    fs = parse_featurestore(created)
    config = OperatorConfig()
    fs = fs.model_copy(update={"spec": resolve(fs.spec, config)})
    objs = render(fs, planned_endpoints(fs), config, V120, RepoSource(revision="a1b2c3d4e5f60718")).objects
    workloads = [o for o in objs if o["kind"] in ("Deployment", "StatefulSet", "CronJob", "Job")]
    out = subprocess.run(
        [kubectl_bin, "apply", "--server-side", "--field-manager", "featurestore-operator", "-n", namespace, "-f", "-"],
        input="\n".join(json.dumps(o) for o in workloads),
        capture_output=True,
        text=True,
        timeout=120,
        env=control_plane.env(),
    )
    assert out.returncode == 0, out.stderr

    live = control_plane.request("GET", f"/apis/apps/v1/namespaces/{namespace}/deployments/demo-feature-server")
    pod = live["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == POD["nodeSelector"] and pod["priorityClassName"] == "feast-high"
    assert pod["affinity"] == POD["affinity"] and pod["imagePullSecrets"] == POD["imagePullSecrets"]
    assert pod["tolerations"][0]["key"] == "dedicated"
    assert pod["topologySpreadConstraints"][0]["topologyKey"] == "topology.kubernetes.io/zone"
    assert live["spec"]["template"]["metadata"]["labels"]["team"] == "fraud"
    container = pod["containers"][0]
    assert container["args"][:2] == ["--log-level", "DEBUG"]
    assert {"name": "FOO", "value": "bar"} in container["env"] and container["envFrom"][0]["configMapRef"][
        "name"
    ] == "team-env"
    cron = control_plane.request("GET", f"/apis/batch/v1beta1/namespaces/{namespace}/cronjobs/demo-materialize")
    job_pod = cron["spec"]["jobTemplate"]["spec"]["template"]
    assert job_pod["spec"]["nodeSelector"] == POD["nodeSelector"]
    # Jobs stay in the mesh (Istio native sidecars, the default istioNativeSidecars: true)
    assert "sidecar.istio.io/inject" not in (job_pod["metadata"].get("annotations") or {})
