"""The chart in the control-plane tier: ``helm`` against a real API server, a release installed for one
test (:func:`installed`), and the operator run as that release's ServiceAccount with the release's own
environment (:func:`chart_operator`), so a test proves that the chart's RBAC and settings suffice.

A release is named ``PREFIX-<random>`` (its cluster-scoped objects carry the name, so runs never
collide) and uninstalled afterwards (the namespace fixture does not remove ClusterRoles).
"""

from __future__ import annotations

import re
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.operator_process import OperatorProcess
from tests.support.process import free_port
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "featurestore-operator"

#: The session installed the FeatureStore CRD (conftest); a release must not try to own it (the
#: CRD upgrade path through templates/crds.yaml is tested in test_chart_upgrade.py).
SESSION_CRD = ["--set", "crds.install=false"]
#: The chart's ValidatingWebhookConfiguration (failurePolicy Fail) calls a Service no pod backs here:
#: releases whose test runs no webhook leave it out, or every FeatureStore write would be refused.
NO_WEBHOOK = ["--set", "webhook.enabled=false"]
#: the chart's token reviewers ClusterRole / ClusterRoleBinding (authz.kubernetes.enabled), after the release name
TOKEN_REVIEWER, TOKEN_REVIEWERS = "-feast-token-reviewer", "-feast-token-reviewers"

Docs = list[dict[str, Any]]


def helm(helm_bin: str, *args: str, kubeconfig: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [helm_bin, *args] + (["--kubeconfig", kubeconfig] if kubeconfig else [])
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    if check and out.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {out.returncode}:\n{out.stdout}\n{out.stderr}", pytrace=False)
    return out


def render(helm_bin: str, *values: str, crds: bool = False, namespace: str = "fso-system") -> Docs:
    out = helm(helm_bin, "template", "fso", str(CHART), "-n", namespace, *(["--include-crds"] if crds else []), *values)
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def find(docs: Docs, kind: str, name: str | None = None) -> Docs:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def deployment_env(dep: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in dep["spec"]["template"]["spec"]["containers"][0]["env"] if "value" in e}


def forbidden_lines(log: str) -> list[str]:
    pattern = re.compile(r"forbidden|\(403\)|\b403 forbidden|HTTP 403|not enough permissions", re.IGNORECASE)
    return [line for line in log.splitlines() if pattern.search(line)]


def explain(proc: OperatorProcess, fn, **kw):
    """wait_for, but a timeout names the operator's RBAC denials (the usual cause under the SA)."""
    try:
        return wait_for(fn, **kw)
    except AssertionError as err:
        bad = forbidden_lines(proc.log_text())
        raise AssertionError(
            f"{err}\nRBAC denials in the operator log ({len(bad)}):\n" + "\n".join(bad[:10]) if bad else str(err)
        ) from None


def sa_operator_env(docs: Docs, webhook: bool = False) -> dict[str, str]:
    """The chart's operator environment, minus the ports (the test process picks free ones). The
    webhook (a Service with no pods here) is off, or served on 127.0.0.1 with ``webhook``: then the
    caller points the chart's configuration there (tests/support/webhook.py ``repoint``)."""
    [dep] = find(docs, "Deployment")
    env = deployment_env(dep)
    env = {
        k: v for k, v in env.items() if k not in ("FSO_HEALTH_PORT", "FSO_METRICS_PORT", "HOME", "FSO_WEBHOOK_SERVICE")
    }
    if webhook:
        return {**env, "FSO_WEBHOOK_HOST": "127.0.0.1", "FSO_WEBHOOK_PORT": str(free_port())}
    return {**env, "FSO_WEBHOOK_ENABLED": "false"}


@dataclass(frozen=True)
class Release:
    """One installed release: what ``helm get manifest`` says it holds."""

    control_plane: Any
    name: str
    namespace: str
    docs: Docs
    values: tuple[str, ...]

    @property
    def service_account(self) -> str:
        [sa] = find(self.docs, "ServiceAccount")
        return sa["metadata"]["name"]

    @property
    def user(self) -> str:
        """The operator's user name in RBAC checks (``can``)."""
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"

    def kubeconfig(self, path: Path) -> str:
        """A kubeconfig holding the release ServiceAccount's token (written to ``path``)."""
        return self.control_plane.service_account_kubeconfig(self.namespace, self.service_account, str(path))

    def env(self, webhook: bool = False) -> dict[str, str]:
        return sa_operator_env(self.docs, webhook=webhook)


@contextmanager
def installed(
    control_plane: Any, helm_bin: str, namespace: str, *values: str, prefix: str = "fso"
) -> Iterator[Release]:
    """``helm install`` of the working tree's chart into ``namespace`` with ``values``; uninstalled
    (``--wait``) when the block ends, whatever happened in it."""
    name = f"{prefix}-{secrets.token_hex(3)}"
    kubeconfig = control_plane.kubeconfig
    helm(helm_bin, "install", name, str(CHART), "-n", namespace, *values, kubeconfig=kubeconfig)
    try:
        manifest = helm(helm_bin, "get", "manifest", name, "-n", namespace, kubeconfig=kubeconfig).stdout
        docs = [d for d in yaml.safe_load_all(manifest) if d]
        yield Release(control_plane, name, namespace, docs, tuple(values))
    finally:
        helm(helm_bin, "uninstall", name, "-n", namespace, "--wait", kubeconfig=kubeconfig, check=False)


@contextmanager
def chart_operator(
    release: Release, tmp_path: Path, env: dict[str, str] | None = None, **kw: Any
) -> Iterator[OperatorProcess]:
    """The operator process under the release's ServiceAccount token with ``env`` (default: the
    release's own, webhook off). Stopped when the block ends; a block that ended normally also
    asserts that the operator's log holds no RBAC denial (the chart's rules sufficed)."""
    kubeconfig = release.kubeconfig(tmp_path / f"{release.name}.kubeconfig")
    proc = OperatorProcess(kubeconfig, env=release.env() if env is None else env, **kw).start()
    try:
        yield proc
    finally:
        proc.stop()
    bad = forbidden_lines(proc.log_text())
    assert not bad, f"RBAC denials of the operator under release {release.name}:\n" + "\n".join(bad[:20])
