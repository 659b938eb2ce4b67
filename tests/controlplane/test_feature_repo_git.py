"""Feature repos from git, against the real API server, Job/CronJob controllers and operator process,
with a private git server (git http-backend behind HTTPS + basic auth, tests/support/git_server.py).

Pods do not run on this tier: the resolver and fetch containers the operator rendered are run as
local processes with the env and volumes the kubelet would give them (tests/support/podrunner.py),
and their termination message is handed to the API server as the kubelet would (FakeKubelet).

- a branch is resolved to its commit, a push is a new commit -> a new apply Job of that commit ->
  status.featureRepo shows it resolved, applied and serving; Events name the commit;
- a forged report (a pod posing as the resolver's, not controlled by its Job) is ignored;
- a pinned commit is never resolved (no resolver objects) and stays applied after a push;
- a wrong token gives FeatureRepo ResolutionFailed naming the Secret and key;
- the operator process never opens a connection to the repository (the git server records the
  process tree of every client).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from kubernetes import client

from tests.support.git_server import GitServer
from tests.support.kube import SERVER_PODS, G, P, V, condition, fs_manifest, get_fs, start_cron_run
from tests.support.podrunner import PodRunner, unshare_available
from tests.support.prerequisites import missing
from tests.support.waiting import wait_for

TOKEN = "s3cret-token"
SERVERS = SERVER_PODS + ",app.kubernetes.io/component!=repo-resolver"
RESOLVERS = "app.kubernetes.io/component=repo-resolver"
APPLY = "app.kubernetes.io/component=feature-repo"


@pytest.fixture
def git() -> Iterator[GitServer]:
    server = GitServer(TOKEN)
    try:
        yield server
    finally:
        server.close()


def _job(kube_api, ns: str, name: str) -> dict:
    resp = client.BatchV1Api(kube_api).read_namespaced_job(name, ns, _preload_content=False)
    return json.loads(resp.data)


def _jobs(kube_api, ns: str, selector: str) -> list[dict]:
    resp = client.BatchV1Api(kube_api).list_namespaced_job(ns, label_selector=selector, _preload_content=False)
    return json.loads(resp.data)["items"]


def run_resolver(kube_api, kubelet, git: GitServer, ns: str, job: str, token: str) -> str:
    """Run the resolver Job's container as the kubelet would (Secret git-creds holding ``token``) and
    report its exit and termination message to the API server."""
    obj = _job(kube_api, ns, job)
    with PodRunner(
        [obj], secrets={"git-creds": {"token": token}}, extra_env={"GIT_SSL_CAINFO": str(git.ca_file)}, namespace=ns
    ) as runner:
        pod = runner.pod(obj)
        res = pod.run_job()
        message = pod.termination_message("resolve")
        print("resolver:", res.returncode, res.stdout[-2000:], res.stderr[-2000:])
    phase = "Succeeded" if res.returncode == 0 else "Failed"
    wait_for(lambda: kubelet.pods(ns, f"job-name={job}"), timeout=30, what=f"the pod of Job {job}")
    kubelet.run(ns, f"job-name={job}", phase, {"resolve": message})
    return message


def fetch_commit(kube_api, git: GitServer, ns: str, job: str) -> str:
    """Run the apply Job's fetch-repo init container; returns the commit it checked out."""
    obj = _job(kube_api, ns, job)
    cms = {"gr-feast-config": client.CoreV1Api(kube_api).read_namespaced_config_map("gr-feast-config", ns).data}
    env = {"GIT_SSL_CAINFO": str(git.ca_file)}
    with PodRunner(
        [obj], secrets={"git-creds": {"token": TOKEN}}, config_maps=cms, extra_env=env, namespace=ns
    ) as runner:
        res = runner.pod(obj).run(runner.pod(obj).prepare("fetch-repo", init=True), timeout=120)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip().splitlines()[-1]


def _store(git: GitServer, ref: str, **extra) -> dict:
    source = {"url": git.url("features"), "ref": ref, "secretRef": {"name": "git-creds"}, **extra}
    return fs_manifest("gr", featureRepo={"git": source})


def _secret(kube_api, ns: str, token: str) -> None:
    client.CoreV1Api(kube_api).create_namespaced_secret(
        ns, {"metadata": {"name": "git-creds"}, "stringData": {"token": token}}
    )


def _repo_status(kube_api, ns: str) -> dict:
    return ((get_fs(kube_api, ns, "gr") or {}).get("status") or {}).get("featureRepo") or {}


def _apply_job_of(kube_api, ns: str, commit: str) -> str | None:
    for job in _jobs(kube_api, ns, APPLY):
        init = job["spec"]["template"]["spec"].get("initContainers") or []
        if any(c["name"] == "fetch-repo" and c["args"][-1] == commit for c in init):
            return job["metadata"]["name"]
    return None


def _applied(kube_api, kubelet, ns: str, commit: str) -> dict | None:
    kubelet.run(ns, SERVERS)
    job = _apply_job_of(kube_api, ns, commit)
    if job:
        kubelet.run(ns, f"job-name={job}", "Succeeded")
    st = _repo_status(kube_api, ns)
    return st if st.get("appliedCommit") == commit and st.get("servingCommit") == commit else None


def _events(kube_api, ns: str, reason: str) -> list[str]:
    items = client.CoreV1Api(kube_api).list_namespaced_event(ns, field_selector="involvedObject.name=gr").items
    return [e.message for e in items if e.reason == reason]


@pytest.fixture(autouse=True)
def _needs_unshare():
    why = unshare_available()
    if why:
        missing(f"podrunner: {why}")


def test_a_pushed_commit_is_resolved_applied_and_served(operator, control_plane, kube_api, kubelet, namespace, git):
    first = git.create("features", {"features.py": "# one\n"})
    _secret(kube_api, namespace, TOKEN)
    client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
        G, V, namespace, P, _store(git, "main", pollMinutes=2)
    )
    [resolver] = wait_for(lambda: _jobs(kube_api, namespace, RESOLVERS), timeout=60, what="the resolver Job")
    version = "v1beta1" if control_plane.minor < 21 else "v1"
    cron = client.CustomObjectsApi(kube_api).get_namespaced_custom_object(
        "batch", version, namespace, "cronjobs", "gr-resolve"
    )
    schedule = cron["spec"]["schedule"]
    assert schedule.endswith("-59/2 * * * *"), schedule  # every 2 minutes at the store's own offset
    assert json.loads(run_resolver(kube_api, kubelet, git, namespace, resolver["metadata"]["name"], TOKEN)) == {
        "v": 1,
        "ref": "refs/heads/main",
        "commit": first,
    }
    st = wait_for(lambda: _applied(kube_api, kubelet, namespace, first), timeout=120, what="the first commit applied")
    assert st["resolvedCommit"] == first and st["resolvedRef"] == "refs/heads/main" and st["ref"] == "main"
    assert fetch_commit(kube_api, git, namespace, _apply_job_of(kube_api, namespace, first)) == first
    assert any(first in m for m in _events(kube_api, namespace, "FeatureRepoApplied"))

    # A developer pushes; the next scheduled resolution (started here as the CronJob controller would).
    second = git.push("features", {"features.py": "# two\n"})
    run = start_cron_run(kube_api, control_plane.minor, namespace, "gr-resolve", "gr-resolve-run1")
    # Attack: a pod posing as that run (its job-name label, not controlled by the Job) reports a commit
    # of the attacker's choosing; the operator reads only the Job's own pod.
    client.CoreV1Api(kube_api).create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": "forged", "labels": {"job-name": "gr-resolve-run1", "forged": "yes"}},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "resolve", "image": "busybox"}]},
        },
    )
    forged = json.dumps({"v": 1, "ref": "refs/heads/main", "commit": "f" * 40})
    wait_for(lambda: kubelet.run(namespace, "forged=yes", "Succeeded", {"resolve": forged}), timeout=30, what="forged")
    run_resolver(kube_api, kubelet, git, namespace, run["metadata"]["name"], TOKEN)
    wait_for(lambda: _apply_job_of(kube_api, namespace, second), timeout=120, what="an apply Job of the new commit")
    assert _apply_job_of(kube_api, namespace, "f" * 40) is None, "the forged report was used"
    st = wait_for(lambda: _applied(kube_api, kubelet, namespace, second), timeout=120, what="the new commit applied")
    assert st["resolvedCommit"] == second and st["appliedAt"] and st["resolvedAt"]
    assert st["lastResolutionError"] is None if "lastResolutionError" in st else True
    assert any(second in m for m in _events(kube_api, namespace, "FeatureRepoApplied"))

    # The operator process never connected to the repository; the resolver and fetch processes did.
    assert git.connections, "nothing reached the git server"
    assert all(chain for _, _, chain in git.connections), f"a connection without its process: {git.connections}"
    assert operator.pid not in git.client_pids(), git.connections


def test_a_pinned_commit_is_never_resolved(operator, kube_api, kubelet, namespace, git):
    first = git.create("features", {"features.py": "# one\n"})
    _secret(kube_api, namespace, TOKEN)
    client.CustomObjectsApi(kube_api).create_namespaced_custom_object(G, V, namespace, P, _store(git, first))
    st = wait_for(lambda: _applied(kube_api, kubelet, namespace, first), timeout=120, what="the pinned commit applied")
    assert st["resolvedCommit"] == first and st["resolvedRef"] == first
    git.push("features", {"features.py": "# two\n"})
    operator.wait_reconciles(2)
    assert _jobs(kube_api, namespace, RESOLVERS) == [], "a pinned commit got a resolver Job"
    assert [j["metadata"]["name"] for j in _jobs(kube_api, namespace, APPLY)] == [
        _apply_job_of(kube_api, namespace, first)
    ]
    assert _repo_status(kube_api, namespace)["appliedCommit"] == first
    assert git.connections == [], "nothing but pods may talk to the repository: no pod ran"


def test_a_wrong_token_names_the_secret_and_key(operator, kube_api, kubelet, namespace, git):
    git.create("features", {"features.py": "# one\n"})
    _secret(kube_api, namespace, "not-the-token")
    client.CustomObjectsApi(kube_api).create_namespaced_custom_object(G, V, namespace, P, _store(git, "main"))
    [resolver] = wait_for(lambda: _jobs(kube_api, namespace, RESOLVERS), timeout=60, what="the resolver Job")
    message = run_resolver(kube_api, kubelet, git, namespace, resolver["metadata"]["name"], "not-the-token")
    assert json.loads(message) == {"v": 1, "error": "auth"}

    def failed():
        kubelet.run(namespace, SERVERS)
        c = condition(get_fs(kube_api, namespace, "gr"), "FeatureRepo")
        return c if c and c["reason"] == "ResolutionFailed" else None

    c = wait_for(failed, timeout=120, what="FeatureRepo ResolutionFailed")
    assert c["status"] == "False" and "'git-creds'" in c["message"] and "'token'" in c["message"], c
    assert "not-the-token" not in json.dumps(get_fs(kube_api, namespace, "gr")), "the token leaked into status"
    assert _jobs(kube_api, namespace, APPLY) == [], "an apply Job ran without a resolved commit"
    # the servers wait for a first applied commit (they would cache an empty registry)
    server = condition(get_fs(kube_api, namespace, "gr"), "FeatureServer")
    assert server["reason"] == "WaitingForFeatureRepo", server
    assert not client.AppsV1Api(kube_api).list_namespaced_deployment(namespace).items
    assert operator.pid not in git.client_pids()


def test_a_reapply_token_applies_the_current_commit_once_per_new_token(operator, kube_api, kubelet, namespace, git):
    first = git.create("features", {"features.py": "# one\n"})
    _secret(kube_api, namespace, TOKEN)
    api = client.CustomObjectsApi(kube_api)
    api.create_namespaced_custom_object(G, V, namespace, P, _store(git, first))
    wait_for(lambda: _applied(kube_api, kubelet, namespace, first), timeout=120, what="the pinned commit applied")
    [before] = [j["metadata"]["name"] for j in _jobs(kube_api, namespace, APPLY)]

    def annotate(token):
        api.patch_namespaced_custom_object(
            G, V, namespace, P, "gr", {"metadata": {"annotations": {"featurestore.kubeflow.org/reapply": token}}}
        )

    def apply_jobs():
        return {j["metadata"]["name"] for j in _jobs(kube_api, namespace, APPLY)} - {before}

    annotate("ci-run-1")
    [again] = wait_for(apply_jobs, timeout=60, what="an apply Job for the token")
    assert _apply_job_of(kube_api, namespace, first) in (before, again)  # the same commit, applied again
    kubelet.run(namespace, f"job-name={again}", "Succeeded")
    st = wait_for(
        lambda: (s := _repo_status(kube_api, namespace)).get("reapplyToken") == "ci-run-1" and s,
        timeout=60,
        what="token",
    )
    assert st["appliedCommit"] == first
    # the same token, then no annotation at all: nothing is applied again
    annotate("ci-run-1")
    api.patch_namespaced_custom_object(
        G, V, namespace, P, "gr", {"metadata": {"annotations": {"featurestore.kubeflow.org/reapply": None}}}
    )
    operator.wait_reconciles(2)
    assert apply_jobs() == {again}
    assert _repo_status(kube_api, namespace)["reapplyToken"] == "ci-run-1"
