"""Batch workloads: the materialization CronJob and the feast-apply Job of one repo revision.

User-supplied strings (feature view names, git URL/ref/path) are passed as separate argv entries
after ``--`` to fixed shell scripts; they are never interpolated into a shell string.
"""

from __future__ import annotations

import json
from typing import Any

from ..api import FeatureStore, OperatorConfig
from . import authz, compute, fanout, gitref, podknobs, programs, rayjob
from .feast_config import FEAST_CONFIG_DIR
from .hardening import mesh_annotations
from .inputs import ApiVersions, Endpoints, RepoSource
from .names import CONFIG_HASH_ANNOTATION, REVISION_LABEL, Names, labels, meta, short_hash
from .pods import FEAST_YAML, container_security, empty_dir, feast_container, pod_spec

#: The materialization container's program (render/programs/materialize.py): one Python process
#: materializes (its share of) the views up to now and leaves the freshness summary as the
#: container's termination message (freshness.parse_summary). User input arrives as separate argv
#: entries after the source (`python -c SOURCE --views NAME ...`), never inside a shell string.
MATERIALIZE_PROGRAM = programs.feast_program("materialize.py", typechecks=False)

#: Fetches one commit of a git repo into /repo. $1 url, $2 commit (resolved by ``gitref``, fetched by
#: hash: protocol v2 servers serve any reachable commit); credentials as ``gitref.GIT_AUTH``.
GIT_FETCH_SCRIPT = "set -eu\n" + gitref.GIT_AUTH + programs.source("git_fetch.sh")

REPO_DIR = "/repo"
REPO_SOURCE_DIR = "/repo-source"

#: Copies the user-visible files of the ConfigMap volume at /repo-source into /repo (an emptyDir).
#: The kubelet writes ConfigMap volumes as ``..<timestamp>/`` + ``..data`` + one symlink per key;
#: `feast apply` globs **/*.py, resolves the symlinks into the hidden ``..<timestamp>`` dir and
#: then fails importing the module ``..2026_..features`` (a "relative import"), so Feast must see
#: plain files. ConfigMap keys never contain "/" nor start with "..", so the two globs copy exactly
#: the keys (including dotfiles such as .feastignore).
COPY_REPO_SCRIPT = programs.source("copy_repo.sh")


def k8s_literal(value: str) -> str:
    """``value`` as a literal container argument: the kubelet expands ``$(VAR)`` in command/args
    from the container's env (``$$`` is its escape), so a URL holding ``$(GIT_TOKEN)`` would
    otherwise reach git with the token spliced in."""
    return value.replace("$", "$$")


def materialization(
    fs: FeatureStore, endpoints: Endpoints, config_hash: str, versions: ApiVersions, config: OperatorConfig
) -> list[dict[str, Any]]:
    m = fs.spec.materialization
    if not m.enabled:
        return []
    names = Names(fs)
    knobs = podknobs.settings(fs, config, "materialization")
    args = ["-c", MATERIALIZE_PROGRAM, *podknobs.log_level_args(knobs)]
    for view in m.feature_views:
        args += ["--views", view]
    container = feast_container(fs, endpoints, fanout.CONTAINER, args, m.resources)
    container["command"] = ["python"]
    if compute.job_overrides(fs, endpoints, None):  # an engine: the Job's own feature_store.yaml
        container["env"] = [
            {**e, "value": f"{FEAST_CONFIG_DIR}/{compute.JOB_CONFIG_KEY}"}
            if e["name"] == "FEAST_FS_YAML_FILE_PATH"
            else e
            for e in container["env"]
        ]
    if compute.submits_ray_job(fs):  # the run is a Ray job on the store's RayCluster
        cluster = compute.ray_cluster_name(fs)
        container["env"] += rayjob.env(cluster, compute.ray_head_host(fs), fs.metadata.name)
    containers = fanout.share_containers(container, m.parallelism, versions.indexed_jobs)
    job_labels = labels(fs, "materialization")
    spec: dict[str, Any] = {
        "schedule": m.schedule,
        "suspend": m.suspend,
        "concurrencyPolicy": "Forbid",
        "startingDeadlineSeconds": m.starting_deadline_seconds,
        "successfulJobsHistoryLimit": m.successful_jobs_history_limit,
        "failedJobsHistoryLimit": m.failed_jobs_history_limit,
        "jobTemplate": {
            "metadata": {"labels": job_labels},
            "spec": {
                "backoffLimit": m.backoff_limit,
                "activeDeadlineSeconds": m.active_deadline_seconds,
                **(fanout.indexed_job(m.parallelism) if versions.indexed_jobs else {}),
                "template": podknobs.apply(
                    {
                        "metadata": {
                            "labels": job_labels,
                            "annotations": {**mesh_annotations(config), CONFIG_HASH_ANNOTATION: config_hash},
                        },
                        "spec": pod_spec(
                            fs,
                            endpoints,
                            containers,
                            restartPolicy="Never",
                            serviceAccountName=compute.materialization_service_account(fs, config.compute_enabled),
                        ),
                    },
                    knobs,
                    fs,
                    "materialization",
                    main=tuple(c["name"] for c in containers),
                ),
            },
        },
    }
    if m.time_zone and versions.cronjob_time_zone:
        spec["timeZone"] = m.time_zone
    return [
        {
            "apiVersion": versions.cronjob,
            "kind": "CronJob",
            "metadata": meta(fs, names.materialize, "materialization"),
            "spec": spec,
        }
    ]


def _git_init_container(fs: FeatureStore, commit: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    git = fs.spec.feature_repo.git  # type: ignore[union-attr]
    assert git is not None
    env, mounts, volumes = gitref.git_credentials(fs)
    container = {
        "name": "fetch-repo",
        "image": fs.spec.images.git,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", GIT_FETCH_SCRIPT, "--"],
        "args": [k8s_literal(git.url), commit],
        "env": env,
        "volumeMounts": [{"name": "repo", "mountPath": REPO_DIR}, {"name": "tmp", "mountPath": "/tmp"}, *mounts],
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        "securityContext": container_security(),
    }
    return container, volumes


def _configmap_copy_container(fs: FeatureStore) -> dict[str, Any]:
    """Init container turning the ConfigMap volume into plain files for `feast apply` (see
    COPY_REPO_SCRIPT). Runs on the Feast image, which the Job pulls anyway."""
    return {
        "name": "copy-repo",
        "image": fs.spec.images.feast,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", COPY_REPO_SCRIPT, "--"],
        "volumeMounts": [
            {"name": "repo-source", "mountPath": REPO_SOURCE_DIR, "readOnly": True},
            {"name": "repo", "mountPath": REPO_DIR},
        ],
        "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}},
        "securityContext": container_security(),
    }


#: Adds the operator's Feast permissions (a file of the server ConfigMap) to the repo; $1 = workdir.
ADD_PERMISSIONS_SCRIPT = programs.source("add_permissions.sh")


def _permissions_container(fs: FeatureStore, workdir: str) -> dict[str, Any]:
    """Init container putting :func:`authz.permissions_source` next to the user's feature repo."""
    return {
        "name": "add-permissions",
        "image": fs.spec.images.feast,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", ADD_PERMISSIONS_SCRIPT, "--"],
        "args": [workdir],
        "volumeMounts": [
            {"name": "feast-config", "mountPath": FEAST_CONFIG_DIR, "readOnly": True},
            {"name": "repo", "mountPath": REPO_DIR},
        ],
        "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}},
        "securityContext": container_security(),
    }


def apply_job(
    fs: FeatureStore, endpoints: Endpoints, config_hash: str, repo: RepoSource | None, config: OperatorConfig
) -> list[dict[str, Any]]:
    """One Job per repo revision running ``feast apply``; a new revision gets a new Job.

    A failed apply writes nothing, so the registry keeps serving the last applied revision.
    The Job is named by the revision alone and a Job's pod template is immutable, so the template
    carries no config hash: a config-only change must not re-apply it (the API server would answer
    422 on every pass).
    """
    source = fs.spec.feature_repo
    if source is None or repo is None:
        return []
    names = Names(fs)
    init: list[dict[str, Any]] = []
    extra_volumes: list[dict[str, Any]] = []
    if source.git:
        workdir = REPO_DIR if source.git.path == "." else f"{REPO_DIR}/{source.git.path}"
        # reconcile always passes the resolved commit; the render CLI (no cluster) shows the ref
        git_container, extra_volumes = _git_init_container(fs, repo.commit or source.git.ref)
        init.append(git_container)
        extra_volumes.append(empty_dir("repo"))
    else:
        assert source.config_map is not None
        workdir = REPO_DIR
        init.append(_configmap_copy_container(fs))
        extra_volumes += [
            {"name": "repo-source", "configMap": {"name": source.config_map.name}},
            empty_dir("repo"),
        ]
    if authz.enabled(fs):
        init.append(_permissions_container(fs, workdir))
    apply = feast_container(fs, endpoints, "feast-apply", ["-f", FEAST_YAML, "--chdir", workdir, "apply"], None)
    apply["volumeMounts"] = [
        *apply["volumeMounts"],
        {"name": "repo", "mountPath": REPO_DIR, "readOnly": source.git is None},
    ]
    pod = pod_spec(fs, endpoints, [apply], restartPolicy="Never")
    pod["volumes"] += extra_volumes
    if init:
        pod["initContainers"] = init
    job_labels = {**labels(fs, "feature-repo"), REVISION_LABEL: repo.revision[:63]}
    spec = {
        "backoffLimit": 2,
        "activeDeadlineSeconds": 1800,
        "template": podknobs.apply(
            {
                "metadata": {
                    "labels": job_labels,
                    "annotations": {**mesh_annotations(config), CONFIG_HASH_ANNOTATION: config_hash},
                },
                "spec": pod,
            },
            podknobs.settings(fs, config, "apply"),
            fs,
            "feature-repo",
            main=("feast-apply",),
        ),
    }
    # A Job's template is immutable: the name covers everything the template depends on (repo
    # revision, feature_store.yaml, image, pod settings...), so any change is a new Job, never a
    # refused update.
    name = names.apply_job(short_hash(json.dumps(spec, sort_keys=True), length=10))
    return [
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {**meta(fs, name, "feature-repo"), "labels": job_labels},
            "spec": spec,
        }
    ]
