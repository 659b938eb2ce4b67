"""The e2e scenario (tests/e2e/scenario.sh, the same one the kind run uses) on a real node assembled
on this machine: tests/support/node.py (control plane + containerd/runc + kubelet + kube-proxy +
bridge CNI + dnsmasq cluster DNS + hostPath PVs) with the images hack/provision-node.sh built from
the repo's Dockerfile. Every workload runs as a real container.

The node fixture's teardown asserts that nothing is left on the machine: no bridge, no KUBE-/CNI-
iptables chains, no network namespace, mount or process of ours.
"""

from __future__ import annotations

import json
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
from tests.support.gke_metadata import (
    METADATA_HOST,
    METADATA_IP,
    WORKLOAD_IDENTITY_USER,
    GkeMetadataServer,
    TokenBook,
    WorkloadIdentity,
    principal,
)
from tests.support.iam_fake import GcsBucketOverlay, IamAdminFake
from tests.support.memorystore_fake import MemorystoreFake
from tests.support.node import BRIDGE, Node, missing_parts
from tests.support.prerequisites import missing
from tests.support.release import (
    Release,
    make_release,
    provisioned_keys_match,
    registry_up,
    start_registry,
    stop_registry,
)
from tests.support.waiting import wait_for

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SCENARIO = HERE / "scenario.sh"
SCENARIO_GCP = HERE / "scenario-gcp.sh"
GCP_EXAMPLE = ROOT / "examples" / "gcp-memorystore.yaml"
NS = "kubeflow-user-example-com"  # examples/feature-repos/demo.yaml's
OTHER_NS = "kubeflow-user-other"  # another profile
#: the e2e tier's local registry (fixed: a repeated push of the same layers is then skipped at once)
REGISTRY_PORT = int(os.environ.get("FSO_E2E_REGISTRY_PORT", "5055"))


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
    missing(message)


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


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Release]:
    """hack/release.sh as a maintainer runs it, on a clone of this tree's HEAD (its release commit and
    tag stay there), for the tree's own version, pushing to a local registry (hack/local-registry.sh,
    Debian's docker-registry). Same version, same image inputs: the release pushes the images
    hack/provision-node.sh built (a new version would change pyproject.toml and the package's
    __version__, which the operator image holds: a build of minutes)."""
    for tool in ("docker-registry", "skopeo"):
        if not shutil.which(tool):
            _missing(f"run hack/provision-node.sh (hack/test.sh does): missing {tool}")
    address = f"127.0.0.1:{REGISTRY_PORT}"
    ours = not registry_up(address)
    try:
        assert start_registry(REGISTRY_PORT) == address
        workdir = tmp_path_factory.mktemp("release")
        made = make_release(address, workdir)
        print(f"[release] {made.version} to {address} in {made.seconds:.0f}s")
        if provisioned_keys_match(workdir / "repo"):
            for image in (made.operator_image, made.feast_image):
                assert f"{image} (reused)" in made.output, f"{image}: built again, not hack/provision-node.sh's"
        yield made
    finally:
        if ours:
            stop_registry(REGISTRY_PORT)


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
def test_scenario_on_node(release: Release, node: Node, tmp_path: Path) -> None:
    """The release (hack/release.sh) installed from the local registry as a user installs it: `helm
    install oci://…` with the chart's own default images, which the node's containerd pulls (plain
    HTTP, loopback only: Node.trust_registry; nothing of the release's tags is imported) ->
    examples/local.yaml Ready -> pods -> materialize -> client pod reads features through cluster
    DNS -> config roll-out -> deletion removes everything (scenario.sh)."""
    images = [release.operator_image, release.feast_image]
    node.trust_registry(release.registry)
    node.remove_images(*images)  # containerd's root persists across runs: an earlier run's pull
    assert not [i for i in images if node.image_digest(i)], "the release's images are pulled, never imported"
    text = _run_scenario(
        node,
        SCENARIO,
        tmp_path / "scenario.log",
        CHART_REF=release.chart,
        CHART_VERSION=release.version,
        CHART_PULL_ARGS="--plain-http",
        FEAST_IMAGE=release.feast_image,  # the scenario's own Jobs and client pods
        PULL_POLICY="IfNotPresent",
    )
    assert "ONLINE-FEATURES-OK" in text
    assert f"installing the chart {release.chart} --version {release.version}" in text
    _assert_installed_from(release, node)


def _assert_installed_from(release: Release, node: Node) -> None:
    """What the cluster holds came from the registry: the Helm release's chart version and appVersion,
    the operator pod's image and its imageID (the registry's manifest digest), the kubelet's pull of
    both images (events), and containerd's images of both tags at the registry's digests."""
    helm = subprocess.run(
        ["helm", "list", "-n", "featurestore-system", "-o", "json"], env=node.env(), capture_output=True, text=True
    )
    assert helm.returncode == 0, helm.stderr
    [installed] = [r for r in json.loads(helm.stdout) if r["name"] == "featurestore-operator"]
    assert (installed["chart"], installed["app_version"]) == (
        f"featurestore-operator-{release.version}",
        release.version,
    )
    pods = node.request("GET", "/api/v1/namespaces/featurestore-system/pods")["items"]
    statuses = [c for p in pods if p["status"].get("phase") == "Running" for c in p["status"]["containerStatuses"]]
    operator_digest = release.digest(release.operator_image)
    assert [(c["image"], c["imageID"]) for c in statuses] == [
        (release.operator_image, f"{release.registry}/featurestore-operator@{operator_digest}")
    ], statuses
    for image in (release.operator_image, release.feast_image):
        assert node.image_digest(image) == release.digest(image), f"containerd's {image} is the registry's"
    pulled = {
        e["message"].split('"')[1]
        for ns in ("featurestore-system", NS)
        for e in node.request("GET", f"/api/v1/namespaces/{ns}/events")["items"]
        if e.get("reason") == "Pulled" and e["message"].startswith("Successfully pulled image")
    }
    assert {release.operator_image, release.feast_image} <= pulled, f"the kubelet pulled: {pulled}"


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


def _second_store(tmp_path: Path, first: dict[str, Any], bucket: str) -> tuple[dict[str, Any], Path]:
    """A second store in the same profile (its own Memorystore and bucket, the namespace's GSA), with
    one feature server replica to keep the node's load modest."""
    store = yaml.safe_load(yaml.safe_dump(first))
    store["metadata"]["name"] = f"{first['metadata']['name']}-2"
    store["spec"]["offlineStore"]["gcs"]["bucket"] = bucket
    store["spec"]["featureServer"] = {"replicas": 1}
    path = tmp_path / "gcp-store-2.yaml"
    path.write_text(yaml.safe_dump(store))
    return store, path


def _account(project: str, name: str) -> str:
    return f"{name}@{project}.iam.gserviceaccount.com"


@pytest.mark.timeout(3600)
def test_gcp_scenario_on_node(node: Node, tmp_path: Path) -> None:
    """examples/gcp-memorystore.yaml on real pods (scenario-gcp.sh): the operator pod reaches the
    Memorystore, GCS and IAM fakes on the host; the Feast pods get Memorystore's AUTH string and CA from
    the store's Secret, the registry and the offline parquet from the bucket, and a token from the
    metadata server as on GKE. GCS is the ENFORCING stand-in: every call carries a token the metadata
    stand-in minted for the pod's KSA -> GSA, checked against the bucket's IAM. The namespace is a
    Kubeflow profile with two stores; a notebook of the profile (default-editor, Workload Identity to
    the profile's GSA) selects both stores' PodDefaults through the admission stand-in and reads each
    store's registry, online and historical features; a notebook of another profile gets 403.
    Afterwards: the instances deleted, the bucket (Retain) and its data kept, every grant revoked."""
    project = yaml.safe_load(GCP_EXAMPLE.read_text())["spec"]["gcp"]["project"]
    pool = f"{project}.svc.id.goog"
    gsa, notebook_gsa, other_gsa = _gsa(project), _account(project, "kf-e2e-user"), _account(project, "kf-e2e-other")
    bucket = f"fso-e2e-{os.getpid()}"
    store, manifest = _gcp_store(tmp_path, bucket, gsa)
    store2, manifest2 = _second_store(tmp_path, store, f"{bucket}-2")
    data_uri = f"gs://{bucket}/offline/driver_stats.parquet"
    host = node.host_ip
    book = TokenBook()
    operator = principal(pool, "featurestore-system", "featurestore-operator")  # tests/e2e/lib.sh's release
    with (
        MemorystoreFake(host=host, op_delay=1.0, default_project=project) as memorystore,
        GcsEmulator(host=host) as gcs,
        GcsBucketOverlay(
            gcs, host=host, callers=book.member, project_roles={operator: {"roles/storage.admin"}}
        ) as gcs_api,
        IamAdminFake(host=host) as iam,
        GkeMetadataServer(
            project=project, identity=WorkloadIdentity(node.request, iam, project), book=book
        ) as metadata,
    ):
        iam.add_service_account(gsa)
        # what the profile controller's WorkloadIdentity plugin does for each profile's default-editor
        for account, ns in ((notebook_gsa, NS), (other_gsa, OTHER_NS)):
            member = f"serviceAccount:{pool}[{ns}/default-editor]"
            iam.add_service_account(account, [{"role": WORKLOAD_IDENTITY_USER, "members": [member]}])
        # How the pods reach the fakes instead of Google: test-only settings, as an admin would set them.
        # Every client sends its token (never STORAGE_EMULATOR_HOST: google-cloud-storage would go
        # anonymous): google-cloud-storage's API_ENDPOINT_OVERRIDE, gcsfs's fsspec setting, pyarrow's
        # (google-cloud-cpp) emulator variable; gcsfs without the bucket layout API the fake lacks.
        gcs_env = {
            "API_ENDPOINT_OVERRIDE": gcs_api.endpoint,
            "FSSPEC_GCS_ENDPOINT_URL": gcs_api.endpoint,
            "CLOUD_STORAGE_EMULATOR_ENDPOINT": gcs_api.endpoint,
            "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
        }
        to_gcs = [{"name": k, "value": v} for k, v in gcs_env.items()]
        values = {
            "gcp": {"project": project, "region": store["spec"]["gcp"]["region"]},
            # the test's bucket names are not of the namespace's own prefix: allowed by an admin pattern;
            # the profile's notebook GSA is the namespace's by an admin pattern too
            "policy": {
                "serviceAccountPatterns": [gsa, notebook_gsa],
                "customNamePatterns": {"buckets": ["fso-e2e-*"]},
            },
            "extraEnv": [
                {"name": "FSO_MEMORYSTORE_ENDPOINT", "value": memorystore.endpoint},
                {"name": "FSO_IAM_ENDPOINT", "value": iam.endpoint},
                {"name": "API_ENDPOINT_OVERRIDE", "value": gcs_api.endpoint},
            ],
            "feastPodSettings": {"all": {"env": [*to_gcs, {"name": "FEAST_E2E_DATA", "value": data_uri}]}},
        }
        (tmp_path / "values.yaml").write_text(yaml.safe_dump(values))
        text = _run_scenario(
            node,
            SCENARIO_GCP,
            tmp_path / "scenario-gcp.log",
            GCP_MANIFEST=str(manifest),
            GCP_MANIFEST2=str(manifest2),
            DATA_URI=data_uri,
            POD_ENV=", ".join(f"{{name: {e['name']}, value: '{e['value']}'}}" for e in to_gcs),
            NOTEBOOK_ENV=json.dumps(to_gcs),
            NOTEBOOK_GSA=notebook_gsa,
            OTHER_NS=OTHER_NS,
            OTHER_GSA=other_gsa,
            HELM_ARGS=f"-f {tmp_path / 'values.yaml'}",
        )
        assert "ONLINE-FEATURES-OK" in text and "HISTORICAL-FEATURES-OK" in text
        assert "NOTEBOOK-TWO-STORES-OK" in text and "REFUSED-403" in text

        creates = [r for r in memorystore.requests if r.rpc == "CreateInstance" and r.status == 200]
        assert len(creates) == 2, "one Memorystore instance per store"
        assert not memorystore.instances(), "the instances are deleted with the stores (online default Delete)"
        objects = _objects(gcs, bucket)
        assert {"registry.pb", "offline/driver_stats.parquet"} <= objects, f"bucket retained with its data: {objects}"
        assert len(iam.writes()) >= 2, f"Workload Identity granted, then revoked on delete: {iam.writes()}"
        assert not [m for b in iam.bindings(gsa) for m in b["members"]], "the grant is revoked on delete"
        for name in (bucket, f"{bucket}-2"):
            readers = [
                b for b in gcs_api.policy(name).get("bindings", []) if f"serviceAccount:{notebook_gsa}" in b["members"]
            ]
            assert not readers, f"the notebook's read of {name} is revoked with its store: {readers}"
        # the enforcing stand-in refused exactly the other profile's reads (and nothing the product needs)
        refused = {(m, st) for m, _, _, st in gcs_api.refused}
        assert refused == {(f"serviceAccount:{other_gsa}", 403)}, gcs_api.refused

        # Workload Identity as GKE decides it: the store's pods (their KSAs annotated and bound by the
        # operator) got the GSA's tokens; the profile's pods the profile's GSA; the other profile's its own
        def emails(prefix: tuple[str, ...]) -> set[str]:
            return {t.email for t in metadata.tokens if t.pod.split("/")[-1].startswith(prefix)}

        store_pods = (f"{store['metadata']['name']}-", "gcp-materialize-e2e", "gcp-generate-data")
        assert emails(store_pods) == {gsa}, metadata.tokens
        assert emails(("gcp-client-", "gcp-notebook")) == {notebook_gsa}, metadata.tokens
        assert emails(("gcp-other-profile",)) == {other_gsa}, metadata.tokens
        assert {t.email for t in metadata.tokens if t.pod.startswith("featurestore-system/")} == {pool}


def _objects(gcs: GcsEmulator, bucket: str) -> set[str]:
    """The bucket's objects, read from fake-gcs-server itself (behind the enforcing stand-in)."""
    return {b.name for b in gcs.client().list_blobs(bucket)}
