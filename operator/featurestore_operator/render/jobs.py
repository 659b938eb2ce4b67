"""Batch workloads: the materialization CronJob and the feast-apply Job of one repo revision.

User-supplied strings (feature view names, git URL/ref/path) are passed as separate argv entries
after ``--`` to fixed shell scripts; they are never interpolated into a shell string.
"""

from __future__ import annotations

import json
from typing import Any

from ..api import FeatureStore, OperatorConfig
from . import authz, compute, fanout, freshness, podknobs, rayjob
from .feast_config import FEAST_CONFIG_DIR
from .inputs import ApiVersions, Endpoints, RepoSource
from .names import CONFIG_HASH_ANNOTATION, REVISION_LABEL, Names, labels, meta, short_hash
from .pods import FEAST_YAML, container_security, empty_dir, feast_container, pod_spec

NO_SIDECAR = {"sidecar.istio.io/inject": "false"}

#: Computes the end timestamp at run time (the only reason for a shell); user input arrives as "$@".
#: With parallel shares, Python materializes this share's views instead (fanout.SHARE_PROGRAM).
#: Then reports each feature view's materialized-until time as the container's termination message
#: (the operator reads it from the finished pod: freshness.parse_summary); the run's exit code stands.
MATERIALIZE_SCRIPT = f"""if [ "${{FEAST_SLICE_COUNT:-1}}" -gt 1 ]; then
  python - "$@" <<'PY'
{fanout.SHARE_PROGRAM}PY
  rc=$?
else
  feast -f "$FEAST_FS_YAML_FILE_PATH" materialize-incremental "$(date -u +%Y-%m-%dT%H:%M:%S)" "$@"
  rc=$?
fi
python - > /dev/termination-log 2>/dev/null <<'PY' || true
{freshness.SUMMARY_SCRIPT}PY
exit $rc
"""

#: Fetches one ref of a git repo into /repo. $1 url, $2 ref; credentials from env/volume if present.
GIT_FETCH_SCRIPT = r"""set -eu
url="$1"; ref="$2"
if [ -n "${GIT_TOKEN:-}" ]; then
  git config --global credential.helper '!f() { echo username=x-access-token; echo "password=${GIT_TOKEN}"; }; f'
fi
if [ -f /etc/git-secret/ssh-privatekey ]; then
  export GIT_SSH_COMMAND="ssh -i /etc/git-secret/ssh-privatekey -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=/tmp/known_hosts"
fi
git init -q /repo
git -C /repo fetch -q --depth 1 -- "$url" "$ref"
git -C /repo -c advice.detachedHead=false checkout -q FETCH_HEAD
git -C /repo rev-parse HEAD
"""

REPO_DIR = "/repo"
REPO_SOURCE_DIR = "/repo-source"

#: Copies the user-visible files of the ConfigMap volume at /repo-source into /repo (an emptyDir).
#: The kubelet writes ConfigMap volumes as ``..<timestamp>/`` + ``..data`` + one symlink per key;
#: `feast apply` globs **/*.py, resolves the symlinks into the hidden ``..<timestamp>`` dir and
#: then fails importing the module ``..2026_..features`` (a "relative import"), so Feast must see
#: plain files. ConfigMap keys never contain "/" nor start with "..", so the two globs copy exactly
#: the keys (including dotfiles such as .feastignore).
COPY_REPO_SCRIPT = f"""set -eu
for f in {REPO_SOURCE_DIR}/* {REPO_SOURCE_DIR}/.[!.]*; do
  [ -e "$f" ] || continue
  cp -L "$f" {REPO_DIR}/
done
"""


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
    script = rayjob.SCRIPT if compute.submits_ray_job(fs) else MATERIALIZE_SCRIPT
    if knobs.log_level:  # an enum value (api/pods.py LogLevel): safe inside the fixed script
        script = script.replace("feast -f ", f"feast --log-level {knobs.log_level} -f ", 1)
    args = ["-c", script, "--"]
    for view in m.feature_views:
        args += ["--views", view]
    container = feast_container(fs, endpoints, fanout.CONTAINER, args, m.resources)
    container["command"] = ["sh"]
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
                            "annotations": {**NO_SIDECAR, CONFIG_HASH_ANNOTATION: config_hash},
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


def _git_init_container(fs: FeatureStore) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    git = fs.spec.feature_repo.git  # type: ignore[union-attr]
    assert git is not None
    env: list[dict[str, Any]] = [{"name": "HOME", "value": "/tmp"}]
    mounts: list[dict[str, Any]] = [{"name": "repo", "mountPath": REPO_DIR}, {"name": "tmp", "mountPath": "/tmp"}]
    volumes: list[dict[str, Any]] = []
    if git.secret_ref:
        env.append(
            {
                "name": "GIT_TOKEN",
                "valueFrom": {"secretKeyRef": {"name": git.secret_ref.name, "key": "token", "optional": True}},
            }
        )
        volumes.append(
            {
                "name": "git-secret",
                "secret": {
                    "secretName": git.secret_ref.name,
                    "defaultMode": 0o400,
                    "items": [{"key": "ssh-privatekey", "path": "ssh-privatekey"}],
                    "optional": True,
                },
            }
        )
        mounts.append({"name": "git-secret", "mountPath": "/etc/git-secret", "readOnly": True})
    container = {
        "name": "fetch-repo",
        "image": fs.spec.images.git,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", GIT_FETCH_SCRIPT, "--"],
        "args": [k8s_literal(git.url), k8s_literal(git.ref)],
        "env": env,
        "volumeMounts": mounts,
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
ADD_PERMISSIONS_SCRIPT = f'cp {FEAST_CONFIG_DIR}/{authz.PERMISSIONS_FILE} "$1/"'


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
        git_container, extra_volumes = _git_init_container(fs)
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
                "metadata": {"labels": job_labels, "annotations": {**NO_SIDECAR, CONFIG_HASH_ANNOTATION: config_hash}},
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
