"""Resolving git refs: the resolver's report is tenant-written (its pod runs in the store's
namespace), so every way of forging it is tried here first: injection, oversize, a commit of another
ref, a replayed older answer, a moved tag nobody asked to follow, a pinned commit re-resolved."""

from __future__ import annotations

import asyncio
import json

import pytest
from featurestore_operator.api import FeatureStore
from featurestore_operator.api.spec import MaterializationSpec
from featurestore_operator.api.status import FeatureRepoStatus
from featurestore_operator.reconcile import gitref as observe
from featurestore_operator.reconcile.observe import RepoResolving, RepoRevision, observe_repo
from featurestore_operator.render import gitref
from featurestore_operator.render.inputs import ApiVersions, RepoSource

A, B = "a" * 40, "b" * 40


def report(commit: str = A, ref: str = "refs/heads/main", **extra) -> str:
    return json.dumps({"v": 1, "ref": ref, "commit": commit, **extra})


@pytest.mark.parametrize(
    "message",
    [
        report(commit="A" * 40),  # not lowercase hex
        report(commit="a" * 39),
        report(commit="a" * 64),  # sha256 repos are not supported: refused, not truncated
        report(commit=A + "\n"),
        report(commit="$(id)" + "a" * 35),
        report(ref="refs/heads/other"),  # another branch's commit
        report(ref="refs/heads/main\nx"),
        report(extra="x"),  # unknown keys: not a report
        json.dumps({"v": 2, "ref": "refs/heads/main", "commit": A}),
        json.dumps({"v": 1, "error": "Authentication failed for https://user:tok@host"}),  # free text
        json.dumps({"v": 1, "error": "auth", "detail": "x"}),
        json.dumps([1, 2]),
        "not json",
        "",
        report() + " " * gitref.MAX_REPORT,  # oversized
    ],
)
def test_forged_or_malformed_reports_are_dropped(message):
    assert gitref.parse_report(message, "main") is None


def test_a_report_names_a_commit_of_the_specs_ref_only():
    assert gitref.parse_report(report(), "main") == gitref.Resolved("refs/heads/main", A)
    assert gitref.parse_report(report(ref="refs/tags/v1"), "v1") == gitref.Resolved("refs/tags/v1", A)
    assert gitref.parse_report("noise\n" + report(), "main") == gitref.Resolved("refs/heads/main", A)  # last line
    assert gitref.parse_report(json.dumps({"v": 1, "error": "auth"}), "main") == gitref.Unresolved("auth")


def _fs(ref: str = "main", **git) -> FeatureStore:
    return FeatureStore.model_validate(
        {
            "metadata": {"name": "s", "namespace": "ns", "uid": "u-1", "annotations": git.pop("annotations", {})},
            "spec": {
                "project": "p",
                "featureRepo": {"git": {"url": "https://git.example/r.git", "ref": ref, **git}},
            },
        }
    )


class Pods:
    """Answers the one read observe_resolution makes: the pods of a Job (label job-name)."""

    def __init__(self, pods: dict[str, list[dict]]) -> None:
        self.pods = pods
        self.reads: list[str] = []

    async def list(self, kind, version, namespace, labels):
        assert (kind, namespace) == ("Pod", "ns")
        self.reads.append(labels["job-name"])
        return self.pods.get(labels["job-name"], [])


def _job(fs: FeatureStore, name: str, created: str, state: str = "Complete") -> dict:
    labels = {"app.kubernetes.io/component": gitref.COMPONENT, gitref.SOURCE_LABEL: gitref.source_hash(fs)}
    return {
        "kind": "Job",
        "metadata": {"name": name, "uid": f"uid-{name}", "creationTimestamp": created, "labels": labels},
        "status": {"conditions": [{"type": state, "status": "True"}]},
    }


def _pod(job: str, message: str, controlled: bool = True) -> dict:
    owner = {"uid": f"uid-{job}", "controller": True} if controlled else {"uid": "other", "controller": True}
    return {
        "metadata": {"ownerReferences": [owner]},
        "status": {
            "phase": "Succeeded",
            "containerStatuses": [{"name": "resolve", "state": {"terminated": {"message": message}}}],
        },
    }


def _observe(fs, jobs, pods, previous=None, now="2026-12-07T00:00:00Z"):
    kube = Pods(pods)
    got = asyncio.run(observe.observe_resolution(kube, fs, jobs, previous or FeatureRepoStatus(), now))
    return got, kube


def test_the_newest_run_moves_the_branch_and_an_older_one_is_never_replayed():
    fs = _fs()
    old, new = _job(fs, "r-1", "2026-12-07T00:01:00Z"), _job(fs, "r-2", "2026-12-07T00:02:00Z")
    st, _ = _observe(fs, [old, new], {"r-1": [_pod("r-1", report(A))], "r-2": [_pod("r-2", report(B))]})
    assert (st.resolved_commit, st.resolver_job) == (B, "r-2")
    # the newest Job is deleted (by the tenant, or history limits): the older answer is not taken back
    again, kube = _observe(fs, [old], {"r-1": [_pod("r-1", report(A))]}, st)
    assert again.resolved_commit == B and kube.reads == []
    # a read report is not read again (one pod list per run)
    _, kube = _observe(fs, [old, new], {}, st)
    assert kube.reads == []


def test_a_pod_the_job_does_not_control_is_ignored():
    fs = _fs()
    job = _job(fs, "r-1", "2026-12-07T00:01:00Z")
    st, _ = _observe(fs, [job], {"r-1": [_pod("r-1", report(B), controlled=False), _pod("r-1", report(A))]})
    assert st.resolved_commit == A


def test_a_job_for_another_source_is_ignored():
    fs, other = _fs(), _fs(ref="dev")
    st, kube = _observe(fs, [_job(other, "r-1", "2026-12-07T00:01:00Z")], {"r-1": [_pod("r-1", report(B))]})
    assert st.resolved_commit is None and kube.reads == []


def test_a_tag_is_not_moved_unless_followed():
    for follow, want in ((False, A), (True, B)):
        fs = _fs("v1", followTags=follow)
        first = _job(fs, "r-1", "2026-12-07T00:01:00Z")
        st, _ = _observe(fs, [first], {"r-1": [_pod("r-1", report(A, "refs/tags/v1"))]})
        moved = _job(fs, "r-2", "2026-12-07T00:02:00Z")
        st, _ = _observe(fs, [first, moved], {"r-2": [_pod("r-2", report(B, "refs/tags/v1"))]}, st)
        assert st.resolved_commit == want, follow
    # and an unfollowed tag's CronJob is not rendered once it resolved to a tag
    kinds = [o["kind"] for o in gitref.resolver_objects(fs, RepoSource("r", A, resolved_tag=True), ApiVersions())]
    assert kinds == ["Job", "CronJob"]
    unfollowed = _fs("v1")
    kinds = [
        o["kind"] for o in gitref.resolver_objects(unfollowed, RepoSource("r", A, resolved_tag=True), ApiVersions())
    ]
    assert kinds == ["Job"]


def test_a_pinned_commit_is_never_resolved():
    fs = _fs(A)
    assert gitref.resolver_objects(fs, None, ApiVersions()) == []
    forged = _job(fs, "r-1", "2026-12-07T00:01:00Z")
    st, kube = _observe(fs, [forged], {"r-1": [_pod("r-1", report(B, A))]})
    assert st.resolved_commit == A and kube.reads == []


def test_a_failed_resolution_names_the_secret_and_key_and_keeps_the_commit():
    fs = _fs(secretRef={"name": "creds"})
    ok = _job(fs, "r-1", "2026-12-07T00:01:00Z")
    st, _ = _observe(fs, [ok], {"r-1": [_pod("r-1", report(A))]})
    bad = _job(fs, "r-2", "2026-12-07T00:02:00Z", "Failed")
    st, _ = _observe(fs, [ok, bad], {"r-2": [_pod("r-2", json.dumps({"v": 1, "error": "auth"}))]}, st)
    assert st.resolved_commit == A
    assert "'token'" in st.last_resolution_error and "'creds'" in st.last_resolution_error
    ssh = _fs(url="ssh://git@git.example/r.git", secretRef={"name": "creds"})
    assert "'ssh-privatekey'" in observe.error_message(ssh, "auth")
    assert "'known_hosts'" in observe.error_message(ssh, "hostkey")


def test_the_revision_holds_the_commit_and_the_reapply_token():
    fs = _fs()
    assert isinstance(asyncio.run(observe_repo(None, fs, FeatureRepoStatus())), RepoResolving)  # type: ignore[arg-type]

    def revision(status, store=fs):
        got = asyncio.run(observe_repo(None, store, status))  # type: ignore[arg-type]
        assert isinstance(got, RepoRevision)
        return got.revision

    a, b = FeatureRepoStatus(resolved_commit=A), FeatureRepoStatus(resolved_commit=B)
    assert revision(a) != revision(b)
    assert revision(a) == revision(a.model_copy(update={"resolved_at": "later"}))
    assert revision(a) != revision(a.model_copy(update={"reapply_token": "ci-42"}))
    polled = _fs(pollMinutes=30)
    assert revision(a, polled) == revision(a), "poll settings are not part of the revision"


@pytest.mark.parametrize("token", ["ci-1", "2026-12-07T10:00:00Z", "a" * 63])
def test_a_new_reapply_token_is_taken_and_kept_after_the_annotation_is_removed(token):
    fs = _fs(annotations={observe.REAPPLY_ANNOTATION: token})
    st, _ = _observe(fs, [], {})
    assert st.reapply_token == token
    removed, _ = _observe(_fs(), [], {}, st)
    assert removed.reapply_token == token, "removing the annotation must not apply again"


@pytest.mark.parametrize("token", ["", "a" * 64, "x y", "$(id)", "-lead", "a\nb", "a\n"])
def test_a_malformed_reapply_token_is_ignored(token):
    fs = _fs(annotations={observe.REAPPLY_ANNOTATION: token})
    st, _ = _observe(fs, [], {}, FeatureRepoStatus(reapply_token="before"))
    assert st.reapply_token == "before"


@pytest.mark.parametrize("minutes", [1, 2, 5, 7, 59, 60, 90, 180, 1440])
def test_polling_is_jittered_and_a_valid_schedule(minutes):
    schedules = {
        gitref.jitter_schedule(_fs().model_copy(update={"metadata": _meta(uid)}), minutes) for uid in "abcdefgh"
    }
    for s in schedules:  # the model's Kubernetes cron validator accepts it
        assert MaterializationSpec(schedule=s).schedule == s
    if minutes > 1:
        assert len(schedules) > 1, "every store polls at the same minute"


def _meta(uid: str):
    return _fs().metadata.model_copy(update={"uid": uid})
