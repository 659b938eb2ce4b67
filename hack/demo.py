"""Local end-to-end demo: the real operator reconciles a FeatureStore on a real API server, and the
workloads it created run as local processes and serve features from Redis.

Stand-ins (all from tests/support, never part of the product): a kube-apiserver/controller-manager
built from Debian's source (no kubelet: a stand-in marks pods ready), a Memorystore REST fake whose
instances are real redis-server processes with TLS + AUTH, and fake-gcs-server for the bucket.
Everything the workloads run - command, args, env from the Secret, mounted files - is read back
from the API server: exactly what the operator created.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kubernetes import client  # noqa: E402
from kubernetes import config as kube_config  # noqa: E402

from tests.support import feature_repo  # noqa: E402
from tests.support.controlplane import ControlPlane, find_binaries, find_tool  # noqa: E402
from tests.support.gcs_emulator import GcsEmulator  # noqa: E402
from tests.support.iam_fake import GcsBucketOverlay  # noqa: E402
from tests.support.kubelet import FakeKubelet  # noqa: E402
from tests.support.memorystore_fake import MemorystoreFake  # noqa: E402
from tests.support.operator_process import OperatorProcess  # noqa: E402
from tests.support.podrunner import PodRunner  # noqa: E402
from tests.support.waiting import wait_for  # noqa: E402

NS, NAME = "kubeflow-user-example-com", "drivers"
G, V, P = "featurestore.kubeflow.org", "v1alpha1", "featurestores"


def step(msg: str) -> None:
    print(f"\n==> {msg}", flush=True)


def kubectl(cp: ControlPlane, *args: str) -> str:
    out = subprocess.run([find_tool("kubectl") or "kubectl", *args], env=cp.env(), capture_output=True, text=True)
    return out.stdout + out.stderr


def main() -> int:
    t0 = time.monotonic()
    step("starting the control plane (etcd + kube-apiserver + kube-controller-manager)")
    cp = ControlPlane(find_binaries()).start()
    data_dir = Path(tempfile.mkdtemp(prefix="fso-demo-", dir="/var/tmp"))
    try:
        cp.install_crds(sorted((ROOT / "crds").glob("*.yaml")) + sorted((ROOT / "tests/support/crds").glob("*.yaml")))
        api = kube_config.new_client_from_config(config_file=cp.kubeconfig)
        core, apps, custom = client.CoreV1Api(api), client.AppsV1Api(api), client.CustomObjectsApi(api)
        with MemorystoreFake(op_delay=2.0) as ms, GcsEmulator() as gcs, GcsBucketOverlay(gcs) as overlay:
            step("starting the operator (provider gcp: Memorystore + GCS stand-ins)")
            op = OperatorProcess(
                cp.kubeconfig,
                env={
                    "FSO_DEFAULT_PROVIDER": "gcp",
                    "FSO_GCP_PROJECT": "demo-project",
                    "FSO_GCP_REGION": "us-central1",
                    "FSO_MEMORYSTORE_ENDPOINT": ms.endpoint,
                    "FSO_RESYNC_SECONDS": "30",
                    **overlay.env(),
                },
            ).start()
            try:
                step(f"applying FeatureStore {NS}/{NAME} with a feature repo ConfigMap")
                core.create_namespace(
                    {"metadata": {"name": NS, "labels": {"app.kubernetes.io/part-of": "kubeflow-profile"}}}
                )
                parquet = data_dir / "driver_stats.parquet"
                expected = feature_repo.write_driver_stats(parquet)
                core.create_namespaced_config_map(
                    NS, {"metadata": {"name": "driver-feature-repo"}, "data": feature_repo.repo_files(parquet)}
                )
                manifest = {
                    "apiVersion": f"{G}/{V}",
                    "kind": "FeatureStore",
                    "metadata": {"name": NAME},
                    "spec": {
                        "project": feature_repo.PROJECT,
                        "onlineStore": {"memorystore": {"memorySizeGb": 1}},
                        "featureRepo": {"configMap": {"name": "driver-feature-repo"}},
                        "materialization": {"schedule": "0 * * * *", "featureViews": ["driver_hourly_stats"]},
                    },
                }
                print(json.dumps(manifest, indent=2))
                custom.create_namespaced_custom_object(G, V, NS, P, manifest)

                step("waiting for Memorystore (create operation) and the objects the operator renders")
                secret = wait_for(
                    lambda: core.read_namespaced_secret(f"{NAME}-online-store", NS),
                    timeout=120,
                    what="online-store Secret",
                )
                batch = client.BatchV1Api(api)
                wait_for(lambda: batch.list_namespaced_job(NS).items, timeout=60, what="the apply Job")
                print(kubectl(cp, "get", "fs,deploy,cronjob,job,cm,secret", "-n", NS))

                def as_objects(kind: str, items: list[Any]) -> list[dict[str, Any]]:
                    return [{**api.sanitize_for_serialization(item), "kind": kind} for item in items]

                objects = as_objects("ConfigMap", core.list_namespaced_config_map(NS).items)
                objects += as_objects("Job", batch.list_namespaced_job(NS).items)
                cron_version = "v1beta1" if cp.minor < 21 else "v1"  # 1.20 serves CronJob only as batch/v1beta1
                for cron in custom.list_namespaced_custom_object("batch", cron_version, NS, "cronjobs")["items"]:
                    objects.append({**cron, "kind": "CronJob", "apiVersion": f"batch/{cron_version}"})
                secrets = {f"{NAME}-online-store": {k: base64.b64decode(v).decode() for k, v in secret.data.items()}}
                runner = PodRunner(objects, secrets=secrets, extra_env=overlay.env(), namespace=NS)
                kubelet = FakeKubelet(api)
                try:
                    job = next(o for o in objects if o["kind"] == "Job")
                    step(f"running the apply Job {job['metadata']['name']} as rendered: feast apply")
                    res = runner.pod(job).run_job(timeout=300)
                    print((res.stdout + res.stderr)[-1500:])
                    if res.returncode != 0:
                        raise SystemExit(f"feast apply failed ({res.returncode})")
                    wait_for(
                        lambda: kubelet.run(NS, f"job-name={job['metadata']['name']}", phase="Succeeded"),
                        timeout=30,
                        what="the apply Job's pod",
                    )

                    step("running the materialization CronJob's container as rendered: feast materialize-incremental")
                    res = runner.pod(runner.find("CronJob")).run_job(timeout=300)
                    print((res.stdout + res.stderr)[-1500:])
                    if res.returncode != 0:
                        raise SystemExit(f"materialization failed ({res.returncode})")

                    step("starting the feature server Deployment's container as rendered: feast serve")
                    # the operator creates the servers once the first feast apply has succeeded
                    wait_for(
                        lambda: apps.read_namespaced_deployment(f"{NAME}-feature-server", NS),
                        timeout=60,
                        what="the feature server Deployment",
                    )
                    runner.objects += as_objects("Deployment", apps.list_namespaced_deployment(NS).items)
                    dep = runner.find("Deployment", f"{NAME}-feature-server")
                    pod = runner.pod(dep)
                    server = pod.start(pod.prepare())
                    server.wait_ready(timeout=120)
                    kubelet.run(NS, f"featurestore.kubeflow.org/name={NAME},app.kubernetes.io/component!=feature-repo")
                    wait_for(
                        lambda: (
                            custom.get_namespaced_custom_object(G, V, NS, P, NAME)["status"].get("phase") == "Ready"
                        ),
                        timeout=60,
                        interval=1,
                        what="FeatureStore Ready",
                    )
                    print(kubectl(cp, "get", "fs", "-n", NS))

                    step("online features served by Feast from Redis (POST /get-online-features)")
                    body = {
                        "features": feature_repo.FEATURE_REFS,
                        "entities": {"driver_id": [*feature_repo.DRIVERS[:3], feature_repo.UNKNOWN_DRIVER]},
                    }
                    req = urllib.request.Request(
                        server.url("http", "/get-online-features"),
                        json.dumps(body).encode(),
                        {"Content-Type": "application/json"},
                    )
                    with urllib.request.urlopen(req, timeout=30) as r:
                        answer = json.loads(r.read())
                    names = answer["metadata"]["feature_names"]
                    print("  ".join(f"{n:>16}" for n in names))
                    for row in range(len(body["entities"]["driver_id"])):
                        print("  ".join(f"{str(col['values'][row]):>16}" for col in answer["results"]))
                    first = feature_repo.DRIVERS[0]
                    got = answer["results"][names.index("conv_rate")]["values"][0]
                    want = expected[first]["conv_rate"]
                    if got is None or abs(float(got) - float(want)) > 1e-4:
                        raise SystemExit(f"driver {first}: conv_rate {got} != {want}")
                    print(
                        f"\ndemo OK in {time.monotonic() - t0:.0f}s: driver {first} conv_rate {got} "
                        f"(unknown driver {feature_repo.UNKNOWN_DRIVER} -> nulls)"
                    )
                finally:
                    runner.close()
            finally:
                op.stop()
    finally:
        cp.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
