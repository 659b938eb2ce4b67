"""The bad-input corpus (tests/support/bad_manifests.py) against the model, the CLI and pure render.

* ``featurestore-operator validate`` rejects every manifest the model must reject, naming the field;
* every manifest the model accepts renders objects that survive a YAML round trip, a
  feature_store.yaml with exactly Feast's keys, and containers where user strings reach processes
  only as whole argv entries (never inside a shell script; literal after the kubelet's $(VAR)
  expansion).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from featurestore_operator.api import OperatorConfig, SpecError, parse_featurestore, resolve
from featurestore_operator.backends.planned import planned_endpoints
from featurestore_operator.cli import _dump, main
from featurestore_operator.render import RepoSource, authz, gitref, incluster, jobs, pods, render

from tests.support.bad_manifests import Case, corpus

CASES = corpus()
SHELLS = {"sh", "bash", "/bin/sh", "/bin/bash"}
#: The fixed shell scripts of the render package (module constants *_SCRIPT): no user input inside.
SCRIPTS = {
    v
    for m in (jobs, incluster, gitref)
    for k, v in vars(m).items()
    if k.endswith(("_SCRIPT", "_PROGRAM")) and isinstance(v, str)
}
SCRIPTS |= {authz.SERVE_COMMAND[2], pods.FEAST_CLI[2]}
FEAST_KEYS = {"project", "provider", "registry", "online_store", "offline_store", "entity_key_serialization_version"}
CONFIGS = {
    "local": OperatorConfig(),
    "gcp": OperatorConfig(default_provider="gcp", gcp_project="test-project", gcp_region="us-central1"),
}


def test_corpus_is_big_and_varied():
    kinds = {k: sum(1 for c in CASES if c.kind == k) for k in ("invalid", "reference", "hostile", "pruned")}
    assert len(CASES) >= 100, kinds
    assert kinds["invalid"] >= 80 and kinds["reference"] >= 5 and kinds["hostile"] >= 5, kinds
    assert len({c.name for c in CASES}) == len(CASES), "every case needs its own object name"


def _validate(tmp_path: Path, case: Case, capsys) -> tuple[int, str]:
    path = tmp_path / "fs.yaml"
    path.write_text(json.dumps(case.manifest))  # JSON is YAML: any string survives exactly
    code = main(["validate", "-f", str(path)])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_validate_cli_names_the_field(case: Case, tmp_path, capsys):
    code, err = _validate(tmp_path, case, capsys)
    if case.kind in ("invalid", "pruned") and case.model:
        assert code == 1, f"validate accepted {case.id}"
        assert case.reported_field in err, f"{case.id}: error does not name {case.reported_field}: {err[:500]}"
        assert "Traceback" not in err
    elif case.kind in ("reference", "hostile"):
        assert code == 0, err


def _containers(obj: dict) -> list[dict]:
    spec = obj.get("spec") or {}
    if obj["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    pod = ((spec.get("template") or {}).get("spec")) or {}
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


def kubelet_expand(arg: str, env: set[str]) -> str:
    """The kubelet's $(VAR) expansion of command/args ($$ escapes $; unknown vars stay literal)."""
    out, i = [], 0
    while i < len(arg):
        if arg[i] == "$" and i + 1 < len(arg):
            if arg[i + 1] == "$":
                out.append("$")
                i += 2
                continue
            if arg[i + 1] == "(":
                end = arg.find(")", i + 2)
                if end != -1 and arg[i + 2 : end] in env:
                    out.append(f"<env {arg[i + 2 : end]}>")
                    i = end + 1
                    continue
        out.append(arg[i])
        i += 1
    return "".join(out)


def _user_strings(case: Case) -> list[str]:
    spec = case.manifest["spec"]
    git = (spec.get("featureRepo") or {}).get("git") or {}
    out = [git.get("url"), git.get("ref"), *((spec.get("materialization") or {}).get("featureViews") or [])]
    return [s for s in out if s]


def _accepted() -> list[tuple[Case, str]]:
    out = []
    for case in CASES:
        for provider, config in CONFIGS.items():
            try:
                fs = parse_featurestore(
                    {**case.manifest, "metadata": {**case.manifest["metadata"], "namespace": "team-a"}}
                )
                resolve(fs.spec, config)
            except SpecError:
                continue
            out.append((case, provider))
    return out


ACCEPTED = _accepted()


def test_every_hostile_and_reference_case_is_accepted_by_the_model():
    accepted = {c.id for c, _ in ACCEPTED}
    for case in CASES:
        if case.kind in ("hostile", "reference"):
            assert case.id in accepted, case.id


@pytest.mark.parametrize("case,provider", ACCEPTED, ids=[f"{c.id}@{p}" for c, p in ACCEPTED])
def test_rendered_objects_keep_user_strings_out_of_shells_and_yaml(case: Case, provider: str):
    config = CONFIGS[provider]
    fs = parse_featurestore(
        {**case.manifest, "metadata": {**case.manifest["metadata"], "namespace": "team-a", "uid": "u1"}}
    )
    fs = fs.model_copy(update={"spec": resolve(fs.spec, config)})
    repo = RepoSource(revision="0123456789abcdef") if fs.spec.feature_repo else None
    rendered = render(fs, planned_endpoints(fs), config, repo=repo)

    # YAML: every object and the printed stream round-trip exactly; feature_store.yaml has Feast's keys only.
    for obj in rendered.objects:
        assert yaml.safe_load(yaml.safe_dump(obj)) == obj
    assert list(yaml.safe_load_all(_dump(rendered.objects, "yaml"))) == rendered.objects
    for text in (rendered.server_yaml, rendered.client_yaml):
        doc = yaml.safe_load(text)
        assert set(doc) - {"materialization"} == FEAST_KEYS and doc["project"] == fs.spec.project

    # argv: shells run fixed scripts only; user strings arrive whole, literal after $(VAR) expansion.
    users = _user_strings(case)
    seen: set[str] = set()
    for obj in rendered.objects:
        for c in _containers(obj):
            env = {e["name"] for e in c.get("env") or []}
            argv = [*(c.get("command") or []), *(c.get("args") or [])]
            if argv and os.path.basename(argv[0]) in SHELLS:
                assert argv[1] == "-c" and argv[2] in SCRIPTS and argv[3] == "--", (
                    f"{obj['kind']} {c['name']}: {argv[:4]}"
                )
                for u in users:
                    assert u not in argv[2]
            expanded = [kubelet_expand(a, env) for a in argv]
            seen.update(u for u in users if u in expanded)
            for a in expanded:
                assert "\n" not in a or a in SCRIPTS, f"newline in argv entry {a!r}"
            # no $(VAR) at all: the Redis password used to be one (`--requirepass`, visible in /proc)
            assert not any("<env " in a for a in expanded), f"{c['name']}: argv expands an env var: {expanded}"
            assert c["image"] == re.sub(r"\s", "", c["image"])
    for u in case.argv:
        assert u in seen, f"{u!r} is not a whole argv entry of any container"


def test_validate_entry_point_as_a_process(tmp_path):
    """The installed command, as a user runs it, on a few corpus members."""
    picks = [c for c in CASES if c.kind == "invalid" and c.model][::25][:4]
    for case in picks:
        path = tmp_path / f"{case.name}.json"
        path.write_text(json.dumps(case.manifest))
        out = subprocess.run(
            [sys.executable, "-m", "featurestore_operator.cli", "validate", "-f", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 1 and case.field in out.stderr, (case.id, out.stderr[:500])
