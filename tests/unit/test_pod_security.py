"""Pod Security Standards ``restricted`` (tests/support/pod_security.py): every rule refuses the pods
the published page says it refuses, and every pod the operator renders - servers, Jobs, CronJobs,
in-cluster Redis, the RayCluster head and workers, for every example and every component - is
admitted. (The chart's operator Deployment: tests/unit/test_current_kubernetes.py.)"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.pod_security import RULES, pod_templates, violations
from tests.support.rendered_stores import rendered
from tests.support.schema_cluster import discovered


def good_pod() -> dict[str, Any]:
    """The smallest pod ``restricted`` admits."""
    return {
        "metadata": {"labels": {"app": "x"}},
        "spec": {
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "c",
                    "image": "img",
                    "ports": [{"containerPort": 8080}],
                    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                }
            ],
            "volumes": [{"name": "tmp", "emptyDir": {}}],
        },
    }


def _container(pod: dict[str, Any]) -> dict[str, Any]:
    return pod["spec"]["containers"][0]["securityContext"]


def _init(pod: dict[str, Any]) -> None:
    """An init container that is the main one without its hardening (init containers count too)."""
    pod["spec"]["initContainers"] = [{"name": "init", "image": "img"}]


Mutation = Callable[[dict[str, Any]], None]

#: (published control, level, what breaks it): each must be refused by exactly that rule (and the rules
#: the page says overlap, listed too)
BAD: list[tuple[str, set[str], Mutation]] = [
    ("HostProcess", {"baseline: HostProcess"}, lambda p: _container(p).update(windowsOptions={"hostProcess": True})),
    ("hostNetwork", {"baseline: Host Namespaces"}, lambda p: p["spec"].update(hostNetwork=True)),
    ("hostPID", {"baseline: Host Namespaces"}, lambda p: p["spec"].update(hostPID=True)),
    ("hostIPC", {"baseline: Host Namespaces"}, lambda p: p["spec"].update(hostIPC=True)),
    ("privileged", {"baseline: Privileged Containers"}, lambda p: _container(p).update(privileged=True)),
    (
        "add SYS_ADMIN",
        {"baseline: Capabilities", "restricted: Capabilities"},
        lambda p: _container(p)["capabilities"].update(add=["SYS_ADMIN"]),
    ),
    (
        "hostPath",
        {"baseline: HostPath Volumes", "restricted: Volume Types"},
        lambda p: p["spec"]["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
    ),
    ("hostPort", {"baseline: Host Ports"}, lambda p: p["spec"]["containers"][0]["ports"][0].update(hostPort=80)),
    (
        "AppArmor unconfined",
        {"baseline: AppArmor"},
        lambda p: _container(p).update(appArmorProfile={"type": "Unconfined"}),
    ),
    (
        "AppArmor annotation",
        {"baseline: AppArmor"},
        lambda p: p["metadata"].update(annotations={"container.apparmor.security.beta.kubernetes.io/c": "unconfined"}),
    ),
    ("SELinux type", {"baseline: SELinux"}, lambda p: _container(p).update(seLinuxOptions={"type": "spc_t"})),
    (
        "SELinux user",
        {"baseline: SELinux"},
        lambda p: p["spec"]["securityContext"].update(seLinuxOptions={"user": "system_u"}),
    ),
    ("procMount", {"baseline: /proc Mount Type"}, lambda p: _container(p).update(procMount="Unmasked")),
    (
        "seccomp Unconfined",
        {"baseline: Seccomp", "restricted: Seccomp"},
        lambda p: _container(p).update(seccompProfile={"type": "Unconfined"}),
    ),
    (
        "unsafe sysctl",
        {"baseline: Sysctls"},
        lambda p: p["spec"]["securityContext"].update(sysctls=[{"name": "kernel.msgmax", "value": "1"}]),
    ),
    (
        "nfs volume",
        {"restricted: Volume Types"},
        lambda p: p["spec"]["volumes"].append({"name": "n", "nfs": {"server": "s", "path": "/"}}),
    ),
    ("escalation unset", {"restricted: Privilege Escalation"}, lambda p: _container(p).pop("allowPrivilegeEscalation")),
    (
        "escalation true",
        {"restricted: Privilege Escalation"},
        lambda p: _container(p).update(allowPrivilegeEscalation=True),
    ),
    (
        "runAsNonRoot unset",
        {"restricted: Running as Non-root"},
        lambda p: p["spec"]["securityContext"].pop("runAsNonRoot"),
    ),
    (
        "container runAsNonRoot false",
        {"restricted: Running as Non-root"},
        lambda p: _container(p).update(runAsNonRoot=False),
    ),
    ("runAsUser 0", {"restricted: Running as Non-root user"}, lambda p: _container(p).update(runAsUser=0)),
    ("seccomp unset", {"restricted: Seccomp"}, lambda p: p["spec"]["securityContext"].pop("seccompProfile")),
    (
        "drop ALL missing",
        {"restricted: Capabilities"},
        lambda p: _container(p)["capabilities"].update(drop=["NET_RAW"]),
    ),
    (
        "add CHOWN",
        {"restricted: Capabilities"},
        lambda p: _container(p)["capabilities"].update(add=["CHOWN"]),  # baseline allows it, restricted not
    ),
    (
        "bare init container",
        {"restricted: Privilege Escalation", "restricted: Capabilities"},
        _init,  # pod-level runAsNonRoot and seccomp cover it; its own escalation and capabilities do not
    ),
]


def test_the_good_pod_is_admitted():
    assert violations(good_pod()) == []
    # what restricted allows: pod-level settings alone, NET_BIND_SERVICE, Localhost profiles, safe sysctls
    pod = good_pod()
    _container(pod)["capabilities"]["add"] = ["NET_BIND_SERVICE"]
    _container(pod)["seccompProfile"] = {"type": "Localhost", "localhostProfile": "p.json"}
    pod["spec"]["securityContext"]["sysctls"] = [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]
    pod["spec"]["volumes"].append({"name": "p", "projected": {"sources": []}})
    assert violations(pod) == []


@pytest.mark.parametrize("case", BAD, ids=[b[0] for b in BAD])
def test_each_rule_refuses_its_known_bad_pod(case):
    _, expected, mutate = case
    pod = copy.deepcopy(good_pod())
    mutate(pod)
    assert set(violations(pod)) == expected


def test_every_published_control_has_a_bad_pod():
    covered = {v for _, expected, _ in BAD for v in expected}
    assert covered == {f"{level}: {name}" for name, level, _ in RULES}


def test_every_rendered_pod_meets_restricted():
    versions = discovered("1.37.0")
    seen, refused = {}, []
    for store, objects in rendered(versions).items():
        for obj in objects:
            for where, pod in pod_templates(obj):
                seen.setdefault(obj["kind"], 0)
                seen[obj["kind"]] += 1
                refused += [f"{store}: {obj['kind']}/{obj['metadata']['name']} {where}: {v}" for v in violations(pod)]
    assert not refused, "\n".join(refused)
    # every workload kind the operator renders was looked at, the RayCluster's head and workers included
    assert {"Deployment", "StatefulSet", "Job", "CronJob", "RayCluster"} <= set(seen), seen
    assert seen["RayCluster"] >= 2 and sum(seen.values()) >= 35, seen
