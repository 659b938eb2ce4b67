"""The e2e scenario (tests/e2e/scenario.sh, the same one the kind run uses) on a real node assembled
on this machine: tests/support/node.py (control plane + containerd/runc + kubelet + kube-proxy +
bridge CNI + dnsmasq cluster DNS + hostPath PVs) with the images hack/provision-node.sh built from
the repo's Dockerfile. Every workload runs as a real container.

The node fixture's teardown asserts that nothing is left on the machine: no bridge, no KUBE-/CNI-
iptables chains, no network namespace, mount or process of ours.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.controlplane import free_port
from tests.support.dns_responder import PROBE_NAME, DnsResponder, hosts_lines
from tests.support.gcs_emulator import GcsEmulator
from tests.support.gke_metadata import METADATA_HOST, METADATA_IP, GkeMetadataServer, WorkloadIdentity
from tests.support.iam_fake import GcsBucketOverlay, IamAdminFake
from tests.support.memorystore_fake import MemorystoreFake
from tests.support.node import BRIDGE, Node, missing_parts
from tests.support.waiting import wait_for

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SCENARIO = HERE / "scenario.sh"
SCENARIO_GCP = HERE / "scenario-gcp.sh"
GCP_EXAMPLE = ROOT / "examples" / "gcp-memorystore.yaml"
NS = "kubeflow-user-example-com"  # examples/feature-repos/demo.yaml's


def _traces(node: Node) -> list[str]:
    """What of the node is still on this machine after stop()."""
    found = []
    if subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True).returncode == 0:
        found.append(f"bridge {BRIDGE}")
    for table in ("nat", "filter"):
        rules = subprocess.run(["iptables-save", "-t", table], capture_output=True, text=True).stdout
        found += [f"iptables {table}: {line}" for line in rules.splitlines() if "KUBE-" in line or "CNI-" in line]
    netns = Path("/var/run/netns")
    if netns.is_dir():
        found += [f"netns {n}" for n in os.listdir(netns) if n not in node._netns_before]
    mounts = Path("/proc/mounts").read_text().splitlines()
    found += [f"mount {m.split()[1]}" for m in mounts if str(node.workdir) in m]
    found += [f"process {name} ({p.pid})" for name, p in node._procs.items() if p.poll() is None]
    shims = subprocess.run(["pgrep", "-af", str(node.sock)], capture_output=True, text=True).stdout
    found += [f"process {line}" for line in shims.splitlines()]
    return found


def _missing(message: str) -> None:
    if os.environ.get("FSO_REQUIRE_CONTROLPLANE") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def node() -> Iterator[Node]:
    missing = missing_parts()
    if missing:
        _missing("run hack/provision-node.sh (hack/test.sh does): missing " + ", ".join(missing))
    started = time.monotonic()
    n = Node().start()
    print(f"[node] started in {time.monotonic() - started:.0f}s: {n.startup_seconds}")
    yield n
    n.stop()
    assert not _traces(n), "the node left traces behind"


def test_dns_hosts_lines() -> None:
    """ClusterIP Services by IP; headless ones by their endpoints, StatefulSet pods by hostname."""
    services = [
        {"metadata": {"name": "web", "namespace": "a"}, "spec": {"clusterIP": "10.96.0.20"}},
        {"metadata": {"name": "db", "namespace": "a"}, "spec": {"clusterIP": "None"}},
        {"metadata": {"name": "ext", "namespace": "a"}, "spec": {"type": "ExternalName", "externalName": "x.y"}},
    ]
    endpoints = [
        {
            "metadata": {"name": "db", "namespace": "a"},
            "subsets": [{"addresses": [{"ip": "10.244.0.11", "hostname": "db-0"}]}],
        },
        {"metadata": {"name": "web", "namespace": "a"}, "subsets": [{"addresses": [{"ip": "10.244.0.12"}]}]},
    ]
    assert hosts_lines(services, endpoints) == [
        "10.244.0.11 db-0.db.a.svc.cluster.local",
        "10.244.0.11 db.a.svc.cluster.local",
        "10.96.0.20 web.a.svc.cluster.local",
    ]


def test_dns_responder_answers_from_the_start_survives_a_kill_and_follows_services(tmp_path: Path) -> None:
    """A real dnsmasq fed by an instant in-memory API: the first reload comes at once, as under load.
    (The old start sent it a SIGHUP within microseconds of exec, which killed it silently.)"""
    if not shutil.which("dnsmasq"):
        _missing("run hack/provision-node.sh (hack/test.sh does): missing dnsmasq")
    services = [{"metadata": {"name": "kubernetes", "namespace": "default"}, "spec": {"clusterIP": "10.96.0.1"}}]

    def request(method: str, path: str) -> dict[str, object]:
        return {"items": services if path.endswith("/services") else []}

    dns = DnsResponder("127.0.0.1", tmp_path, request, port=free_port(), static=[f"{METADATA_IP} {METADATA_HOST}"])
    dns.start()
    try:
        assert dns.answers(PROBE_NAME) == ["10.96.0.1"]
        assert dns.answers(METADATA_HOST) == [METADATA_IP], "GKE's metadata server name, as on GKE"
        assert dns.answers("nothing.default.svc.cluster.local") == []
        services.append({"metadata": {"name": "web", "namespace": "a"}, "spec": {"clusterIP": "10.96.0.20"}})
        wait_for(lambda: dns.answers("web.a.svc.cluster.local") == ["10.96.0.20"], timeout=30, what="a new Service")
        assert dns._proc
        dns._proc.send_signal(signal.SIGKILL)
        wait_for(lambda: dns.errors, timeout=30, what="the death noticed")
        wait_for(lambda: dns.answers("web.a.svc.cluster.local") == ["10.96.0.20"], timeout=60, what="restarted")
        assert [e for e in dns.errors if "restarted" in e] == dns.errors, dns.errors
    finally:
        dns.stop()


def _run_scenario(node: Node, script: Path, log: Path, **env: str) -> str:
    """Run a scenario script against the node; its output (it must pass and say so)."""
    started = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.run(
            ["bash", str(script)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**node.env(), "TIMEOUT_SECONDS": "900", **env},
            cwd=ROOT,
            timeout=3300,
        )
    text = log.read_text(errors="replace")
    print(text[-6000:])
    print(f"[node] {script.name} took {time.monotonic() - started:.0f}s")
    assert proc.returncode == 0, f"{script.name} failed; last lines:\n" + "\n".join(text.splitlines()[-120:])
    assert "[e2e" in text and "PASSED" in text
    assert node.dns and not [e for e in node.dns.errors if "dnsmasq" in e], f"cluster DNS died: {node.dns.errors}"
    return text


@pytest.mark.timeout(3600)
def test_scenario_on_node(node: Node, tmp_path: Path) -> None:
    """helm install -> examples/local.yaml Ready -> pods -> materialize -> client pod reads features
    through cluster DNS -> config roll-out -> deletion removes everything (scenario.sh)."""
    text = _run_scenario(node, SCENARIO, tmp_path / "scenario.log")
    assert "ONLINE-FEATURES-OK" in text


def _gsa(project: str) -> str:
    """The Google service account of the store in NS. Not the default policy's feast-{namespace}: its
    account id would have 31 characters, and GCP (and the CRD) allow at most 30; the test sets the
    chart's policy.serviceAccountPatterns to it, as an admin would."""
    return f"feast-e2e@{project}.iam.gserviceaccount.com"


def _gcp_store(tmp_path: Path, bucket: str, gsa: str) -> tuple[dict[str, Any], Path]:
    """examples/gcp-memorystore.yaml as it is, in the demo feature repo's namespace, with that repo, a
    bucket name of the test's (the repo reads its data from FEAST_E2E_DATA, in that bucket) and the
    Google service account ``gsa``: the manifest, and the file it is written to."""
    store = yaml.safe_load(GCP_EXAMPLE.read_text())
    store["metadata"]["namespace"] = NS
    store["spec"]["featureRepo"] = {"configMap": {"name": "demo-feature-repo"}}
    store["spec"]["offlineStore"]["gcs"]["bucket"] = bucket
    store["spec"]["gcp"]["serviceAccount"] = gsa
    path = tmp_path / "gcp-store.yaml"
    path.write_text(yaml.safe_dump(store))
    return store, path


@pytest.mark.timeout(3600)
def test_gcp_scenario_on_node(node: Node, tmp_path: Path) -> None:
    """examples/gcp-memorystore.yaml on real pods (scenario-gcp.sh): the operator pod reaches the
    Memorystore, GCS and IAM fakes on the host; the Feast pods get Memorystore's AUTH string and CA from
    the store's Secret, the registry and the offline parquet from the bucket, and a token from the
    metadata server as on GKE. Afterwards: the instance deleted, the bucket (Retain) and its data kept,
    the store's KSA bound to the example's Google service account."""
    project = yaml.safe_load(GCP_EXAMPLE.read_text())["spec"]["gcp"]["project"]
    gsa = _gsa(project)
    bucket = f"fso-e2e-{os.getpid()}"
    store, manifest = _gcp_store(tmp_path, bucket, gsa)
    data_uri = f"gs://{bucket}/offline/driver_stats.parquet"
    host = node.host_ip
    with (
        MemorystoreFake(host=host, op_delay=1.0, default_project=project) as memorystore,
        GcsEmulator(host=host) as gcs,
        GcsBucketOverlay(gcs, host=host) as gcs_api,
        IamAdminFake(host=host) as iam,
        GkeMetadataServer(project=project, identity=WorkloadIdentity(node.request, iam, project)) as metadata,
    ):
        iam.add_service_account(gsa)
        # How the pods reach the fakes instead of Google: test-only settings, as an admin would set them.
        # The overlay's env (STORAGE_EMULATOR_HOST for google-cloud-storage and gcsfs, gcsfs without the
        # bucket layout API the fake lacks), and pyarrow's (google-cloud-cpp) own variable.
        gcs_env = {**gcs_api.env(), "CLOUD_STORAGE_EMULATOR_ENDPOINT": gcs_api.endpoint}
        to_gcs = [{"name": k, "value": v} for k, v in gcs_env.items()]
        values = {
            "gcp": {"project": project, "region": store["spec"]["gcp"]["region"]},
            # the test's bucket name is not of the namespace's own prefix: allowed by an admin pattern
            "policy": {"serviceAccountPatterns": [gsa], "customNamePatterns": {"buckets": ["fso-e2e-*"]}},
            "extraEnv": [
                {"name": "FSO_MEMORYSTORE_ENDPOINT", "value": memorystore.endpoint},
                {"name": "FSO_IAM_ENDPOINT", "value": iam.endpoint},
                {"name": "STORAGE_EMULATOR_HOST", "value": gcs_env["STORAGE_EMULATOR_HOST"]},
            ],
            "podDefaults": {"all": {"env": [*to_gcs, {"name": "FEAST_E2E_DATA", "value": data_uri}]}},
        }
        (tmp_path / "values.yaml").write_text(yaml.safe_dump(values))
        text = _run_scenario(
            node,
            SCENARIO_GCP,
            tmp_path / "scenario-gcp.log",
            GCP_MANIFEST=str(manifest),
            DATA_URI=data_uri,
            POD_ENV=", ".join(f"{{name: {e['name']}, value: '{e['value']}'}}" for e in to_gcs),
            HELM_ARGS=f"-f {tmp_path / 'values.yaml'}",
        )
        assert "ONLINE-FEATURES-OK" in text and "HISTORICAL-FEATURES-OK" in text

        creates = [r for r in memorystore.requests if r.rpc == "CreateInstance" and r.status == 200]
        assert len(creates) == 1, "one Memorystore instance for the store"
        assert not memorystore.instances(), "the instance is deleted with the store (online default Delete)"
        objects = {b.name for b in gcs_api.client(project).list_blobs(bucket)}
        assert {"registry.pb", "offline/driver_stats.parquet"} <= objects, f"bucket retained with its data: {objects}"
        assert len(iam.writes()) >= 2, f"Workload Identity granted, then revoked on delete: {iam.writes()}"
        assert not [m for b in iam.bindings(gsa) for m in b["members"]], "the grant is revoked on delete"
        # Workload Identity as GKE decides it: the store's pods (its KSA annotated and bound by the
        # operator) got the GSA's tokens; our own pods (KSA default) only their federated identity.
        # its Deployments and Jobs, and our Job from its CronJob
        store_pods = (f"{store['metadata']['name']}-", "gcp-materialize-e2e-")
        assert {t.email for t in metadata.tokens if t.pod.split("/")[-1].startswith(store_pods)} == {gsa}
        assert {t.email for t in metadata.tokens if not t.pod.split("/")[-1].startswith(store_pods)} == {
            f"{project}.svc.id.goog"
        }, metadata.tokens
