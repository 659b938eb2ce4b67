"""The Pod Security Standards ``restricted`` profile, rule by rule as published in
https://kubernetes.io/docs/concepts/security/pod-security-standards/ (policy version "latest", read
2026-12): the Baseline controls plus the Restricted ones. Each rule has its published control name;
:func:`violations` answers as Pod Security Admission would with ``enforce: restricted`` (the fields and
allowed values are the ones the page lists; ``tests/unit/test_pod_security.py`` pins every rule with a
pod it must refuse). ``pod`` is a PodSpec wrapper: ``{"metadata": ..., "spec": ...}`` (a pod template).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

Pod = dict[str, Any]

#: Baseline "Capabilities": adding anything beyond these is refused
BASELINE_CAPABILITIES = {
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
}
#: Baseline "Sysctls": the safe set
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
#: Restricted "Volume Types": the only volume sources allowed
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def _spec(pod: Pod) -> dict[str, Any]:
    return pod.get("spec") or {}


def _containers(pod: Pod) -> Iterator[dict[str, Any]]:
    spec = _spec(pod)
    for field in ("containers", "initContainers", "ephemeralContainers"):
        yield from spec.get(field) or []


def _csc(c: dict[str, Any]) -> dict[str, Any]:
    return c.get("securityContext") or {}


def _psc(pod: Pod) -> dict[str, Any]:
    return _spec(pod).get("securityContext") or {}


def _contexts(pod: Pod) -> Iterator[dict[str, Any]]:
    """The pod's securityContext, then every container's."""
    yield _psc(pod)
    for c in _containers(pod):
        yield _csc(c)


# --------------------------------------------------------------------------- Baseline


def host_process(pod: Pod) -> bool:
    return not any((sc.get("windowsOptions") or {}).get("hostProcess") for sc in _contexts(pod))


def host_namespaces(pod: Pod) -> bool:
    return not any(_spec(pod).get(f) for f in ("hostNetwork", "hostPID", "hostIPC"))


def privileged_containers(pod: Pod) -> bool:
    return not any(_csc(c).get("privileged") for c in _containers(pod))


def baseline_capabilities(pod: Pod) -> bool:
    return all(
        set((_csc(c).get("capabilities") or {}).get("add") or []) <= BASELINE_CAPABILITIES for c in _containers(pod)
    )


def hostpath_volumes(pod: Pod) -> bool:
    return not any("hostPath" in v for v in _spec(pod).get("volumes") or [])


def host_ports(pod: Pod) -> bool:
    return all(not p.get("hostPort") for c in _containers(pod) for p in c.get("ports") or [])


def apparmor(pod: Pod) -> bool:
    allowed = {"RuntimeDefault", "Localhost"}
    fields_ok = all((sc.get("appArmorProfile") or {}).get("type", "RuntimeDefault") in allowed for sc in _contexts(pod))
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    legacy = [v for k, v in annotations.items() if k.startswith("container.apparmor.security.beta.kubernetes.io/")]
    return fields_ok and all(v == "runtime/default" or v.startswith("localhost/") for v in legacy)


def selinux(pod: Pod) -> bool:
    opts = [sc.get("seLinuxOptions") or {} for sc in _contexts(pod)]
    return all(o.get("type", "") in SELINUX_TYPES and not o.get("user") and not o.get("role") for o in opts)


def proc_mount(pod: Pod) -> bool:
    return all(_csc(c).get("procMount", "Default") == "Default" for c in _containers(pod))


def baseline_seccomp(pod: Pod) -> bool:
    return all((sc.get("seccompProfile") or {}).get("type") != "Unconfined" for sc in _contexts(pod))


def sysctls(pod: Pod) -> bool:
    return all(s.get("name") in SAFE_SYSCTLS for s in _psc(pod).get("sysctls") or [])


# --------------------------------------------------------------------------- Restricted


def volume_types(pod: Pod) -> bool:
    return all(set(v) - {"name"} <= RESTRICTED_VOLUMES for v in _spec(pod).get("volumes") or [])


def privilege_escalation(pod: Pod) -> bool:
    return all(_csc(c).get("allowPrivilegeEscalation") is False for c in _containers(pod))


def running_as_non_root(pod: Pod) -> bool:
    """runAsNonRoot true on the pod (and no container setting it false), or on every container."""
    pod_level = _psc(pod).get("runAsNonRoot") is True
    return all(
        _csc(c).get("runAsNonRoot") is True or (pod_level and _csc(c).get("runAsNonRoot") is not False)
        for c in _containers(pod)
    )


def running_as_non_root_user(pod: Pod) -> bool:
    return all(sc.get("runAsUser") != 0 for sc in _contexts(pod))


def restricted_seccomp(pod: Pod) -> bool:
    """RuntimeDefault or Localhost on the pod (containers may not undo it), or on every container."""
    allowed = {"RuntimeDefault", "Localhost"}
    pod_type = (_psc(pod).get("seccompProfile") or {}).get("type")
    for c in _containers(pod):
        own = (_csc(c).get("seccompProfile") or {}).get("type")
        if own not in allowed and not (own is None and pod_type in allowed):
            return False
    return True


def restricted_capabilities(pod: Pod) -> bool:
    for c in _containers(pod):
        caps = _csc(c).get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []) or set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            return False
    return True


#: (published control name, profile level, check): the page's order
RULES: list[tuple[str, str, Callable[[Pod], bool]]] = [
    ("HostProcess", "baseline", host_process),
    ("Host Namespaces", "baseline", host_namespaces),
    ("Privileged Containers", "baseline", privileged_containers),
    ("Capabilities", "baseline", baseline_capabilities),
    ("HostPath Volumes", "baseline", hostpath_volumes),
    ("Host Ports", "baseline", host_ports),
    ("AppArmor", "baseline", apparmor),
    ("SELinux", "baseline", selinux),
    ("/proc Mount Type", "baseline", proc_mount),
    ("Seccomp", "baseline", baseline_seccomp),
    ("Sysctls", "baseline", sysctls),
    ("Volume Types", "restricted", volume_types),
    ("Privilege Escalation", "restricted", privilege_escalation),
    ("Running as Non-root", "restricted", running_as_non_root),
    ("Running as Non-root user", "restricted", running_as_non_root_user),
    ("Seccomp", "restricted", restricted_seccomp),
    ("Capabilities", "restricted", restricted_capabilities),
]


def violations(pod: Pod) -> list[str]:
    """The ``restricted`` controls ``pod`` breaks, as '<level>: <control>' (empty: admitted)."""
    return [f"{level}: {name}" for name, level, check in RULES if not check(pod)]


def pod_templates(obj: dict[str, Any]) -> Iterator[tuple[str, Pod]]:
    """(where, pod template) of every pod an object makes: workloads, CronJobs, RayCluster head and
    worker groups."""
    kind, spec = obj["kind"], obj.get("spec") or {}
    if kind == "Pod":
        yield "pod", obj
    elif kind in ("Deployment", "StatefulSet", "Job", "ReplicaSet", "DaemonSet"):
        yield "template", spec["template"]
    elif kind == "CronJob":
        yield "jobTemplate", spec["jobTemplate"]["spec"]["template"]
    elif kind == "RayCluster":
        yield "headGroupSpec", spec["headGroupSpec"]["template"]
        for group in spec.get("workerGroupSpecs") or []:
            yield f"workerGroupSpecs[{group.get('groupName')}]", group["template"]
