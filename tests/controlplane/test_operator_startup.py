"""README claims about the operator process itself: a bad FSO_* value stops it at start (exit code,
the variable's name and what is allowed), and it stays lean: Feast is never imported, not even
after it has reconciled a store (checked with `python -X importtime`, which prints every module the
process imports, when it imports it)."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from kubernetes import client

from tests.support.kube import SERVER_PODS, G, P, V, fs_manifest, get_fs
from tests.support.operator_process import OperatorProcess
from tests.support.waiting import wait_for

#: Top-level packages the operator process must never import: Feast (hundreds of MB; it lives in
#: the runtime image) and the generated `kubernetes` client (48 MiB; the operator uses lightkube),
#: although both are installed where the tests run.
NEVER_IMPORTED = ("feast", "kubernetes")


@pytest.mark.parametrize(
    "variable, value, allowed",
    [
        ("FSO_RESYNC_SECONDS", "5", "greater than or equal to 10"),
        ("FSO_DEFAULT_PROVIDER", "aws", "'gcp' or 'local'"),
        ("FSO_GCP_NETWORK", "default", "should match pattern"),
        ("FSO_MAX_CONCURRENT_RECONCILES", "lots", "valid integer"),
        ("FSO_CLOUD_RETRY_SECONDS", "0", "greater than or equal to 1"),
    ],
)
def test_bad_setting_stops_the_operator_at_start(control_plane, variable, value, allowed):
    op = OperatorProcess(control_plane.kubeconfig, env={variable: value})
    proc = op.spawn()
    try:
        wait_for(lambda: not proc.alive(), timeout=60, what="the operator to exit")
    finally:
        op.stop()
    log = op.log_text()
    assert proc.returncode == 2, (proc.returncode, log[-2000:])
    [line] = [line for line in log.splitlines() if line.startswith("error: operator config")]
    assert variable in line and allowed in line and repr(value) in line, line
    assert "featurestore-operator started" not in log


def imported_top_level(importtime_log: str) -> set[str]:
    """Top-level packages really imported, from `python -X importtime` lines ("import time: self |
    cumulative | name"). An import that fails at once (a package blocked in sys.modules, as the
    operator blocks `kubernetes` for kopf's login probe and its optional-import helpers) also prints
    lines, for the few names tried (kubernetes, kubernetes.client); a real import of a package runs
    its modules, dozens to hundreds of them (feast, kubernetes, kopf, pydantic). Counting modules,
    not milliseconds: on a loaded machine even a failing import can take more than a millisecond."""
    names = {m.group(1) for m in re.finditer(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)", importtime_log, re.M)}
    per_package = Counter(name.split(".")[0] for name in names)
    return {package for package, modules in per_package.items() if modules >= REAL_IMPORT_MODULES}


#: Distinct modules of a package that make its import real (a blocked import tries at most a few).
REAL_IMPORT_MODULES = 10


def test_operator_process_never_imports_feast_or_the_kubernetes_client(
    control_plane, featurestore_crd, kube_api, kubelet, namespace
):
    op = OperatorProcess(
        control_plane.kubeconfig,
        env={"FSO_RESYNC_SECONDS": "10", "PYTHONPROFILEIMPORTTIME": "1"},
        args=["--namespace", namespace],
    ).start()
    try:
        client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
            G, V, namespace, P, fs_manifest("lean", ui={"enabled": True}, featureRepo={"configMap": {"name": "nope"}})
        )
        wait_for(
            lambda: kubelet.run(namespace, SERVER_PODS) >= 0 and get_fs(kube_api, namespace, "lean")["status"]["phase"],
            timeout=120,
            interval=1,
            what="the store reconciled",
        )
        op.wait_reconciles(2)
    finally:
        op.stop()
    modules = imported_top_level(op.log_text())
    assert {"kopf", "featurestore_operator", "pydantic"} <= modules, sorted(modules)  # the check sees imports
    assert not modules & set(NEVER_IMPORTED), sorted(modules & set(NEVER_IMPORTED))


def test_cryptography_is_imported_only_once_a_store_asks_for_tls(
    control_plane, featurestore_crd, kube_api, kubelet, namespace
):
    """`cryptography` (~8 MiB resident, bench/memory.py) is imported lazily (backends/certs.py):
    not for stores without TLS, and still there, working, when a store with TLS arrives."""
    op = OperatorProcess(
        control_plane.kubeconfig,
        env={"FSO_RESYNC_SECONDS": "10", "PYTHONPROFILEIMPORTTIME": "1"},
        args=["--namespace", namespace],
    ).start()
    core = client.CoreV1Api(kube_api)
    try:
        custom = client.CustomObjectsApi(kube_api)
        custom.create_namespaced_custom_object(G, V, namespace, P, fs_manifest("plain", provider="local"))
        wait_for(
            lambda: (get_fs(kube_api, namespace, "plain").get("status") or {}).get("phase"),
            timeout=120,
            interval=1,
            what="the store without TLS reconciled",
        )
        op.wait_reconciles(2)
        before = imported_top_level(op.log_text())
        custom.create_namespaced_custom_object(
            G, V, namespace, P, fs_manifest("secure", provider="local", tls={"enabled": True})
        )

        def tls_secret() -> bool:
            names = {s.metadata.name: s for s in core.list_namespaced_secret(namespace).items}
            return "secure-feast-tls" in names and "ca.crt" in (names["secure-feast-tls"].data or {})

        wait_for(tls_secret, timeout=120, interval=1, what="the TLS store's certificate Secret")
    finally:
        op.stop()
    assert "featurestore_operator" in before and "cryptography" not in before, sorted(before)
    assert "cryptography" in imported_top_level(op.log_text())
