"""The programs rendered workloads run (operator/featurestore_operator/render/programs/), run as
programs: shell scripts pass shellcheck and run under ``sh``/``bash`` in a temp dir (fixed paths
swapped for temp ones, fakes first on PATH); the Python ones run against the real Feast."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from featurestore_operator.render import authz, freshness, gitref, incluster, jobs, pods, programs
from featurestore_operator.render.feast_config import FEAST_CONFIG_DIR
from featurestore_operator.render.freshness import parse_summary

from tests.support.prerequisites import need_module, need_tool

PROGRAMS = Path(programs.__file__).parent
SHELL = sorted(PROGRAMS.glob("*.sh"))
#: SC2016 in git_auth.sh: the credential helper is single-quoted on purpose, so git's own shell
#: expands ${GIT_TOKEN} when it runs the helper and the token is never written to .gitconfig.
EXCLUDES = {"git_auth.sh": "SC2016"}


def test_every_program_is_used_by_render():
    texts = [authz.SERVE_COMMAND[2], pods.FEAST_CLI[2], incluster.REDIS_SCRIPT, gitref.RESOLVE_SCRIPT]
    texts += [v for k, v in vars(jobs).items() if k.endswith(("_SCRIPT", "_PROGRAM"))]
    for path in [*SHELL, *PROGRAMS.glob("*.py")]:
        if path.name != "__init__.py":
            assert any(path.read_text() in t for t in texts), f"{path.name} is not rendered anywhere"


@pytest.mark.parametrize("script", SHELL, ids=lambda s: s.name)
def test_shellcheck(script: Path):
    """Every shell program."""
    tool = need_tool("shellcheck", "Debian package shellcheck: hack/setup.sh installs it")
    exclude = ["-e", EXCLUDES[script.name]] if script.name in EXCLUDES else []
    out = subprocess.run([tool, "-s", "sh", *exclude, str(script)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def _sh(script: str, *args: str, env: dict[str, str] | None = None, stdin: str | None = None):
    return subprocess.run(
        ["bash", "-c", script, "--", *args],
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_copy_repo_copies_the_configmap_keys_as_plain_files(tmp_path: Path):
    """The kubelet's ConfigMap volume layout (``..<ts>/`` + ``..data`` + a symlink per key) becomes
    plain files, dotfile keys included and the hidden directories left out."""
    src, dst = tmp_path / "repo-source", tmp_path / "repo"
    (src / "..2026_12_07").mkdir(parents=True)
    dst.mkdir()
    for key in ("features.py", ".feastignore"):
        (src / "..2026_12_07" / key).write_text(f"# {key}\n")
        (src / key).symlink_to(f"..data/{key}")
    (src / "..data").symlink_to("..2026_12_07")
    script = jobs.COPY_REPO_SCRIPT.replace(jobs.REPO_SOURCE_DIR + "/", f"{src}/").replace(
        f" {jobs.REPO_DIR}/", f" {dst}/"
    )
    assert script != jobs.COPY_REPO_SCRIPT and str(src) in script and str(dst) in script
    out = _sh(script)
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in dst.iterdir()) == [".feastignore", "features.py"]
    assert all(not p.is_symlink() and p.read_text() == f"# {p.name}\n" for p in dst.iterdir())


def _git(*args: str, cwd: Path) -> str:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def test_git_fetch_checks_out_the_ref_and_keeps_the_token_off_disk(tmp_path: Path):
    need_tool("git", "Debian package git: hack/setup.sh installs it")
    origin, home, repo = tmp_path / "origin", tmp_path / "home", tmp_path / "repo"
    for d in (origin, home):
        d.mkdir()
    _git("init", "-q", "-b", "main", cwd=origin)
    (origin / "features.py").write_text("# v1\n")
    _git("add", ".", cwd=origin)
    _git("-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "v1", cwd=origin)
    head = _git("rev-parse", "HEAD", cwd=origin).strip()
    script = jobs.GIT_FETCH_SCRIPT.replace(jobs.REPO_DIR, str(repo))
    assert script.count(str(repo)) == 4, "every /repo of the script was swapped"
    token = "s3cr3t-token"
    out = _sh(script, f"file://{origin}", "main", env={"HOME": str(home), "GIT_TOKEN": token})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == head and (repo / "features.py").read_text() == "# v1\n"
    config = (home / ".gitconfig").read_text()
    assert "credential" in config and token not in config


def test_add_permissions_copies_the_operators_permissions_file(tmp_path: Path):
    assert f"{FEAST_CONFIG_DIR}/{authz.PERMISSIONS_FILE}" in jobs.ADD_PERMISSIONS_SCRIPT
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / authz.PERMISSIONS_FILE).write_text("# perms\n")
    (tmp_path / "work").mkdir()
    out = _sh(jobs.ADD_PERMISSIONS_SCRIPT.replace(FEAST_CONFIG_DIR, str(tmp_path / "etc")), str(tmp_path / "work"))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "work" / authz.PERMISSIONS_FILE).read_text() == "# perms\n"


def test_redis_gets_its_password_on_stdin_never_in_argv(tmp_path: Path):
    fake = tmp_path / "redis-server"
    fake.write_text('#!/bin/sh\necho "argv: $*"\necho "pid: $$"\ncat\n')
    fake.chmod(0o755)
    wrapper = f'echo "shell: $$"\n{incluster.REDIS_SCRIPT}'
    out = _sh(wrapper, "--dir", "/data", env={"PATH": f"{tmp_path}:/usr/bin:/bin", "REDIS_PASSWORD": "pw$1 x"})
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(": ", 1) for line in out.stdout.splitlines()[:3])
    assert lines["argv"] == "- --dir /data" and "pw" not in lines["argv"]
    assert lines["pid"] == lines["shell"], "exec: redis-server replaces the shell (gets the kubelet's SIGTERM)"
    assert "requirepass pw$1 x" in out.stdout


# ------------------------------------------------------------------------------- Python programs


def _load(name: str, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> ModuleType:
    """The program ``name`` imported as a module (its ``__main__`` block does not run)."""
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    spec = importlib.util.spec_from_file_location(f"program_{name.removesuffix('.py')}", PROGRAMS / name)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _feast_repo(tmp_path: Path, views: dict[str, dt.datetime | None], registry: str = "") -> Path:
    """A small real Feast repo (local provider, file registry): ``views`` applied, each with a
    materialization interval ending at its time (None: never materialized)."""
    feast = need_module("feast", "Feast runs the summary program in the materialization pod")
    yaml_path = tmp_path / "feature_store.yaml"
    yaml_path.write_text(
        f"project: p\nprovider: local\nregistry: {registry or tmp_path / 'registry.db'}\n"
        f"online_store: {{type: sqlite, path: {tmp_path}/online.db}}\nentity_key_serialization_version: 3\n"
    )
    store = feast.FeatureStore(fs_yaml_file=yaml_path)
    pandas = need_module("pandas")
    data = pandas.DataFrame({"driver_id": [1], "rate": [0.5], "ts": [pandas.Timestamp("2026-12-01", tz="UTC")]})
    data.to_parquet(tmp_path / "data.parquet")
    driver = feast.Entity(name="driver", join_keys=["driver_id"], value_type=feast.ValueType.INT64)
    source = feast.FileSource(path=str(tmp_path / "data.parquet"), timestamp_field="ts")
    fvs = {name: feast.FeatureView(name=name, entities=[driver], source=source) for name in views}
    store.apply([driver, *fvs.values()])
    for name, end in views.items():
        if end is not None:
            store.registry.apply_materialization(fvs[name], "p", end - dt.timedelta(hours=1), end)
    return yaml_path


def _materialize(yaml_path: Path, log: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """The materialization program as the container runs it (`python -c SOURCE ARGS`)."""
    return subprocess.Popen(
        [sys.executable, "-c", jobs.MATERIALIZE_PROGRAM, *args],
        env={**os.environ, "FEAST_FS_YAML_FILE_PATH": str(yaml_path), "FEAST_TERMINATION_LOG": str(log), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_freshness_summary_reports_each_materialized_view(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """What the operator parses from the termination message: each view's newest interval end."""
    feast = need_module("feast", "the program imports Feast")
    program = _load("materialize.py", monkeypatch, {})
    end = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
    yaml_path = _feast_repo(tmp_path, {"zeta": end, "alpha": end - dt.timedelta(hours=2), "never": None})
    message = json.dumps(program.summary(feast.FeatureStore(fs_yaml_file=yaml_path)), separators=(",", ":"))
    summary = parse_summary(message)
    assert summary is not None and not summary.truncated
    assert [(v.name, v.materialized_until) for v in summary.views] == [
        ("alpha", end - dt.timedelta(hours=2)),
        ("zeta", end),
    ]


def test_a_failed_run_keeps_its_exit_code_and_still_reports(tmp_path: Path):
    yaml_path = _feast_repo(tmp_path, {"zeta": None})
    run = _materialize(yaml_path, tmp_path / "log", "--views", "no_such_view")
    out, _ = run.communicate(timeout=180)
    assert run.returncode == 1 and "no_such_view" in out, out
    assert parse_summary((tmp_path / "log").read_text()) is not None


def _gcs_like(tmp_path: Path) -> str:
    """A file registry as Feast treats one on GCS: re-read only when asked (cache_mode thread skips
    the mtime check a local registry gets before a commit, as a gs:// path does)."""
    return f"{{path: {tmp_path / 'registry.db'}, cache_mode: thread, cache_ttl_seconds: 600}}"


def _intervals(yaml_path: Path) -> dict[str, list[tuple[dt.datetime, dt.datetime]]]:
    feast = need_module("feast")
    views = feast.FeatureStore(fs_yaml_file=yaml_path).list_feature_views(allow_cache=False)
    return {fv.name: sorted(fv.materialization_intervals) for fv in views}


def test_two_shares_materialize_every_view_once_and_keep_each_others_intervals(tmp_path: Path):
    """Two shares at once on one file registry: 3 views over 2 shares are cut into 2 windows each,
    every window falls to one share, and no share's registry commit erases another's interval
    (Feast rewrites the whole registry per commit): every view is recorded contiguously to the
    run's end, and each share's report merges to that end."""
    yaml_path = _feast_repo(tmp_path, {"alpha": None, "beta": None, "gamma": None}, _gcs_like(tmp_path))
    shares = [
        _materialize(yaml_path, tmp_path / f"log-{i}", env={"FEAST_SLICE_COUNT": "2", "JOB_COMPLETION_INDEX": str(i)})
        for i in (0, 1)
    ]
    outs = [p.communicate(timeout=240)[0] for p in shares]
    assert [p.returncode for p in shares] == [0, 0], outs
    assert "share 0 of 2: ['alpha@1/2', 'beta@1/2', 'gamma@1/2']" in outs[0], outs
    assert "share 1 of 2: ['alpha@2/2', 'beta@2/2', 'gamma@2/2']" in outs[1], outs
    intervals = _intervals(yaml_path)
    for view in ("alpha", "beta", "gamma"):
        origins = [a for a, b in intervals[view] if a == b]
        (a0, a1), (b0, b1) = [(a, b) for a, b in intervals[view] if a < b]
        assert origins and set(origins) == {a0}, f"each new view's start is recorded first: {intervals[view]}"
        assert a1 == b0 and a0 < a1 < b1, (view, intervals[view])
        assert b1.second == 0, "the shares' run end is floored to the minute, so both cut the same windows"
    merged = freshness.merge([parse_summary((tmp_path / f"log-{i}").read_text()) for i in (0, 1)])
    assert merged is not None and {(v.name, v.materialized_until) for v in merged.views} == {
        (view, max(e for _, e in intervals[view])) for view in ("alpha", "beta", "gamma")
    }


class _View:
    def __init__(self, name: str, intervals: list[tuple[dt.datetime, dt.datetime]], ttl: dt.timedelta | None = None):
        self.name, self.materialization_intervals, self.ttl = name, intervals, ttl
        self.most_recent_end_time = max((e for _, e in intervals), default=None)


class _PlanStore:
    def __init__(self, *views: _View):
        self.views = views

    def _get_feature_views_to_materialize(self, asked: list[str] | None) -> list[_View]:
        return [v for v in self.views if asked is None or v.name in asked]


T0 = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def test_one_view_is_cut_into_disjoint_windows_that_cover_its_interval(monkeypatch: pytest.MonkeyPatch):
    need_module("feast", "the program imports Feast")
    program = _load("materialize.py", monkeypatch, {})
    end = T0 + dt.timedelta(hours=7, seconds=1)
    for count in (2, 3, 5):
        units = program.plan(_PlanStore(_View("big", [(T0 - dt.timedelta(days=1), T0)])), None, end, count)
        shares = [units[i::count] for i in range(count)]
        assert all(len(s) == 1 for s in shares), "every share gets one window of the one view"
        spans = sorted((u.start, u.end) for s in shares for u in s)
        assert spans[0][0] == T0 and spans[-1][1] == end, spans
        assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False)), f"gaps or overlaps: {spans}"


def test_a_share_planning_after_another_share_committed_cuts_the_same_windows(monkeypatch: pytest.MonkeyPatch):
    """A year of hourly history, then share 0 of this run records its window before share 1 plans:
    share 1 must still cut [frontier before the run, end) (not start again after share 0's window),
    with a long interval list as fast as a short one."""
    need_module("feast", "the program imports Feast")
    program = _load("materialize.py", monkeypatch, {})
    history = [(T0 - dt.timedelta(hours=h + 1), T0 - dt.timedelta(hours=h)) for h in range(24 * 365)]
    end = T0 + dt.timedelta(hours=2)
    before = [(u.start, u.end) for u in program.plan(_PlanStore(_View("v", history)), None, end, 2)]
    assert before == [(T0, T0 + dt.timedelta(hours=1)), (T0 + dt.timedelta(hours=1), end)]
    for done in before:
        t0 = time.monotonic()
        after = [(u.start, u.end) for u in program.plan(_PlanStore(_View("v", [*history, done])), None, end, 2)]
        assert after == before and time.monotonic() - t0 < 5, (done, after)


def test_every_share_takes_a_window_of_every_view_and_a_new_view_starts_its_ttl_before_the_end(
    monkeypatch: pytest.MonkeyPatch,
):
    """Two views over two shares: not a view each (as uneven as the views' sizes) but each share
    one half of every view's interval."""
    need_module("feast", "the program imports Feast")
    program = _load("materialize.py", monkeypatch, {})
    end = T0 + dt.timedelta(hours=1)
    store = _PlanStore(_View("b", [(T0 - dt.timedelta(hours=2), T0)]), _View("a", [], ttl=dt.timedelta(hours=3)))
    units = program.plan(store, None, end, 2)
    half = end - dt.timedelta(hours=1, minutes=30)
    assert [(u.label, u.start, u.end) for u in units] == [
        ("a@1/2", end - dt.timedelta(hours=3), half),
        ("a@2/2", half, end),
        ("b@1/2", T0, T0 + dt.timedelta(minutes=30)),
        ("b@2/2", T0 + dt.timedelta(minutes=30), end),
    ]
    assert [u.label for u in units[0::2]] == ["a@1/2", "b@1/2"], "share 0: the first window of each view"
    with pytest.raises(ValueError, match="No start time found for feature view c"):
        program.plan(_PlanStore(_View("c", [], ttl=None)), None, end, 1)


def test_a_view_with_a_failed_window_is_fresh_only_to_the_gap_and_the_next_run_starts_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The later window of a view succeeded and the earlier one failed (or its record was lost): the
    summary must not report the view fresh to the run's end, and the next run re-does the gap."""
    feast = need_module("feast", "the program imports Feast")
    program = _load("materialize.py", monkeypatch, {})
    cut, end = T0 + dt.timedelta(hours=1), T0 + dt.timedelta(hours=2)
    yaml_path = _feast_repo(tmp_path, {"big": T0, "whole": end})
    store = feast.FeatureStore(fs_yaml_file=yaml_path)
    store.registry.apply_materialization(store.get_feature_view("big"), "p", cut, end)  # window 2 of 2 only
    store.registry.apply_materialization(store.get_feature_view("whole"), "p", end - dt.timedelta(hours=1), end)
    summary = parse_summary(json.dumps(program.summary(store)))
    assert summary is not None
    assert {(v.name, v.materialized_until) for v in summary.views} == {("big", T0), ("whole", end)}
    later = end + dt.timedelta(hours=1)
    assert [(u.view, u.start, u.end) for u in program.plan(store, ["big"], later, 1)] == [("big", T0, later)]


def test_concurrent_commits_keep_every_interval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The lost-update race of Feast's file registry, forced: share A's commit has read the stored
    registry, share B commits meanwhile, then A writes its copy. Without the program's registry
    lock A's write erases B's interval; with it B waits for A and commits on top of A's registry."""
    feast = need_module("feast", "the program imports Feast")
    program = _load("materialize.py", monkeypatch, {})
    yaml_path = _feast_repo(tmp_path, {"alpha": None, "beta": None}, _gcs_like(tmp_path))
    a, b = (feast.FeatureStore(fs_yaml_file=yaml_path) for _ in range(2))
    a_read, b_done = threading.Event(), threading.Event()
    write = a.registry.commit

    def paused() -> Any:  # A has read the stored registry; B commits now if it can
        a_read.set()
        b_done.wait(timeout=4)
        return write()

    a.registry.commit = paused
    program.guard_commits(a), program.guard_commits(b)

    def share_b() -> None:
        assert a_read.wait(timeout=60)
        b.registry.apply_materialization(b.get_feature_view("beta"), "p", T0, T0 + dt.timedelta(hours=1))
        b_done.set()

    thread = threading.Thread(target=share_b)
    thread.start()
    a.registry.apply_materialization(a.get_feature_view("alpha"), "p", T0, T0 + dt.timedelta(hours=1))
    thread.join(timeout=60)
    intervals = _intervals(yaml_path)
    assert intervals["alpha"] and intervals["beta"], f"a concurrent commit erased an interval: {intervals}"


def test_a_stale_view_state_commit_keeps_other_shares_intervals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Feast's materialize() commits the view (state MATERIALIZING) from the share's cached copy,
    read before another share recorded its window: that commit must not erase the window."""
    feast = need_module("feast", "the program imports Feast")
    program = _load("materialize.py", monkeypatch, {})
    yaml_path = _feast_repo(tmp_path, {"alpha": None}, _gcs_like(tmp_path))
    a, b = (feast.FeatureStore(fs_yaml_file=yaml_path) for _ in range(2))
    program.guard_commits(a), program.guard_commits(b)
    stale = a.get_feature_view("alpha")
    b.registry.apply_materialization(b.get_feature_view("alpha"), "p", T0, T0 + dt.timedelta(hours=1))
    a.registry.apply_feature_view(stale, "p", commit=True)
    assert _intervals(yaml_path)["alpha"] == [(T0, T0 + dt.timedelta(hours=1))]


def test_freshness_summary_cuts_before_the_termination_message_limit(monkeypatch: pytest.MonkeyPatch):
    need_module("feast", "the program imports Feast")
    program = _load("materialize.py", monkeypatch, {})
    end = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)

    class View:
        def __init__(self, i: int):
            self.name, self.most_recent_end_time = f"view_{i:03d}_{'x' * 60}", end

    class Store:
        def list_feature_views(self, allow_cache: bool) -> list[View]:
            assert allow_cache is False, "the summary must read the registry as just written"
            return [View(i) for i in range(200)]

    doc = program.summary(Store())
    message = json.dumps(doc, separators=(",", ":"))
    assert doc["truncated"] is True and len(message) <= freshness.MAX_MESSAGE
    parsed = parse_summary(message)
    assert parsed is not None and parsed.truncated and len(parsed.views) == len(doc["views"]) > 10


class _ApiServer:
    """TokenReview and RoleBinding list as the API server answers them: a token authenticates only
    for an audience it was minted for, and the status lists the audiences both sides share
    (k8s.io/api authentication/v1 TokenReviewStatus.audiences: "audience identifiers chosen by the
    authenticator that are compatible with both the TokenReview and token"). The real API server
    answers the same shim in tests/datapath/test_authz_tls.py."""

    def __init__(self, kube: Any):
        self.k, self.tokens, self.bindings, self.reviews = kube, {}, [], 0

    def create_token_review(self, body: Any) -> Any:
        self.reviews += 1
        user, audiences = self.tokens.get(body.spec.token, (None, []))
        shared = [a for a in body.spec.audiences if a in audiences]
        if not user or not shared:
            return self.k.V1TokenReview(spec=body.spec, status=self.k.V1TokenReviewStatus(authenticated=False))
        status = self.k.V1TokenReviewStatus(authenticated=True, audiences=shared, user=self.k.V1UserInfo(username=user))
        return self.k.V1TokenReview(spec=body.spec, status=status)

    def list_namespaced_role_binding(self, namespace: str) -> Any:
        assert namespace == "store-ns"
        return self.k.V1RoleBindingList(items=self.bindings)

    def bind(self, role: str, sa_namespace: str, sa_name: str) -> None:
        subject = self.k.RbacV1Subject(kind="ServiceAccount", name=sa_name, namespace=sa_namespace)
        ref = self.k.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name=role)
        meta = self.k.V1ObjectMeta(name=f"b{len(self.bindings)}")
        self.bindings.append(self.k.V1RoleBinding(metadata=meta, role_ref=ref, subjects=[subject]))


def _forged(sa_namespace: str, sa_name: str) -> str:
    """An unsigned JWT naming a ServiceAccount: what an attacker can write without any key."""
    enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")  # noqa: E731
    claims = {"sub": f"system:serviceaccount:{sa_namespace}:{sa_name}", "kubernetes.io": {}}
    return f"{enc({'alg': 'none', 'typ': 'JWT'})}.{enc(claims)}."


@pytest.fixture
def parser(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Feast's own KubernetesTokenParser (in-cluster config skipped) talking to :class:`_ApiServer`,
    its class restored afterwards."""
    ktp = need_module("feast.permissions.auth.kubernetes_token_parser", "the shim patches Feast's parser")
    kube = need_module("kubernetes.client")
    cls = ktp.KubernetesTokenParser
    monkeypatch.setattr(cls, "user_details_from_access_token", cls.user_details_from_access_token)
    (tmp_path / "namespace").write_text("store-ns\n")
    monkeypatch.setattr(ktp, "_namespace_file_path", str(tmp_path / "namespace"))
    api = _ApiServer(kube)
    p = cls.__new__(cls)
    p.auth_v1 = p.rbac_v1 = api
    api.bind("s-feast-writer", "store-ns", "s-feast")
    api.bind("s-feast-reader", "alice", "default-editor")
    api.bind("other-role", "bob", "default-editor")
    return p, api


def _user(p: Any, token: str) -> Any:
    return asyncio.run(p.user_details_from_access_token(token))


def test_serve_shim_trusts_only_the_api_servers_review_for_this_audience(parser, monkeypatch):
    p, api = parser
    errors = need_module("starlette.authentication")
    forged = _forged("store-ns", "s-feast")
    assert "s-feast-writer" in _user(p, forged).roles, "stock Feast 0.67 trusts a forged token: the shim's reason"
    env = {"FSO_FEAST_ROLES": "s-feast-reader,s-feast-writer", "FSO_FEAST_AUDIENCE": "fs.ns.s"}
    _load("serve_shim.py", monkeypatch, env).install()
    api.tokens = {
        "alice-store": ("system:serviceaccount:alice:default-editor", ["fs.ns.s"]),
        "alice-default": ("system:serviceaccount:alice:default-editor", ["https://kubernetes.default.svc"]),
        "bob-store": ("system:serviceaccount:bob:default-editor", ["fs.ns.s"]),
        "human": ("alice@example.com", ["fs.ns.s"]),
    }
    user = _user(p, "alice-store")
    assert (user.username, user.roles, user.namespaces) == ("alice:default-editor", ["s-feast-reader"], ["alice"])
    for token, why in [
        (forged, "not accepted"),
        ("alice-default", "not accepted"),  # a token the API server itself would take
        ("bob-store", "no role"),  # bound only to a role that is not this store's
        ("human", "only ServiceAccount"),
    ]:
        with pytest.raises(errors.AuthenticationError, match=why):
            _user(p, token)
    before = api.reviews
    _user(p, "alice-store")
    with pytest.raises(errors.AuthenticationError):
        _user(p, forged)
    assert api.reviews == before + 1, "an accepted token is cached, a refusal is reviewed again"


@pytest.mark.parametrize("command", [authz.SERVE_COMMAND, pods.FEAST_CLI], ids=["serve-shim", "feast-cli"])
def test_the_rendered_commands_run_feasts_cli(command: list[str]):
    need_module("feast", "the commands run Feast's CLI")
    out = subprocess.run([sys.executable, *command[1:], "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "serve" in out.stdout and "Usage" in out.stdout


_REGISTRY_READER = """
import json, pathlib, sys
from feast.protos.feast.core.Registry_pb2 import Registry
path, stop = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
whole = torn = 0
print("reading", flush=True)
while not stop.exists():
    registry = Registry()
    try:
        registry.ParseFromString(path.read_bytes())
        ok = any(e.spec.name == "driver" for e in registry.entities)
    except Exception:
        ok = False
    whole, torn = whole + ok, torn + (not ok)
print(json.dumps({"whole": whole, "torn": torn}))
"""


def test_a_reader_never_sees_a_torn_registry_while_a_run_commits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Feast's file registry store rewrites the file in place (truncate, then write): a process
    reading it meanwhile (a feature server refreshing its cache, another share planning) parsed an
    empty registry ("Entity driver does not exist in project"). The rendered materialization
    program's commits replace the file whole: a reader in another process sees every read whole."""
    feast = need_module("feast", "the program imports Feast")
    program = ModuleType("rendered_materialize")  # the rendered text, as `python -c` runs it
    monkeypatch.setitem(sys.modules, program.__name__, program)
    exec(compile(jobs.MATERIALIZE_PROGRAM, "materialize", "exec"), program.__dict__)
    yaml_path = _feast_repo(tmp_path, {"alpha": None})
    store = feast.FeatureStore(fs_yaml_file=yaml_path)
    record = program.guard_commits(store)
    stop = tmp_path / "stop"
    reader = subprocess.Popen(
        [sys.executable, "-c", _REGISTRY_READER, str(tmp_path / "registry.db"), str(stop)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout and reader.stdout.readline() == "reading\n"
        for k in range(300):
            start = T0 + dt.timedelta(hours=k)
            record(store.get_feature_view("alpha"), "p", start, start + dt.timedelta(hours=1))
    finally:
        stop.touch()
        counts = json.loads(reader.communicate(timeout=60)[0])
    assert counts["whole"] > 100, f"the reader must have read during the commits: {counts}"
    assert counts["torn"] == 0, f"a reader saw a partly written registry: {counts}"
    assert not list(tmp_path.glob(".registry.db.*")), "no temporary file is left behind"


_TYPECHECK_PROBE = """
import sys, types
program = types.ModuleType("program")
sys.modules["program"] = program
exec(compile(sys.argv[1], "program", "exec"), program.__dict__)
import feast
try:
    feast.Field(name=1, dtype=feast.types.Int64)
except Exception as e:
    print("checked", type(e).__name__)
else:
    print("unchecked")
"""


def test_materialization_skips_feasts_import_time_typechecks_and_apply_keeps_them():
    """typeguard recompiles Feast's @typechecked classes at import (~3.6 of ~6 CPU-s before a run's
    first row): the materialization program, which builds its views from the registry, skips that as
    `python -O` would; `feast apply` (feature definitions written by hand) and the servers keep it."""
    need_module("feast", "the programs import Feast")
    skip = programs.source(programs.SKIP_TYPECHECKS)
    assert jobs.MATERIALIZE_PROGRAM.startswith(skip)
    assert skip not in pods.FEAST_CLI[2] and skip not in authz.SERVE_COMMAND[2]
    prelude = programs.source(programs.PRELUDE)
    answers = {
        name: subprocess.run(
            [sys.executable, "-c", _TYPECHECK_PROBE, text], capture_output=True, text=True, timeout=120
        ).stdout.strip()
        for name, text in {"materialization": jobs.MATERIALIZE_PROGRAM, "prelude": prelude}.items()
    }
    assert answers == {"materialization": "unchecked", "prelude": "checked TypeCheckError"}, answers
