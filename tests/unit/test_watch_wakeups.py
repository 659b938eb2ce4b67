"""Which watch events wake a FeatureStore's worker (runtime/watches.py ``Watches.on_event``)."""

from __future__ import annotations

from typing import Any

from featurestore_operator.reconcile.applier import desired_hash
from featurestore_operator.runtime.cache import ObservedCache, drift_key
from featurestore_operator.runtime.kinds import key
from featurestore_operator.runtime.watches import Watches

NS, STORE = "team-a", "demo"
LABELS = {"app.kubernetes.io/managed-by": "featurestore-operator", "featurestore.kubeflow.org/name": STORE}


def secret(name: str, rv: str, data: str = "YQ==") -> dict[str, Any]:
    meta = {"name": name, "namespace": NS, "resourceVersion": rv, "labels": LABELS}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "data": {"tls.crt": data}}


def watches() -> tuple[Watches, list[tuple[str, str]]]:
    woken: list[tuple[str, str]] = []
    w = Watches(None, None, ObservedCache(), lambda ns, name: woken.append((ns, name)))  # type: ignore[arg-type]
    return w, woken


def certificate(rv: str, revision: int) -> dict[str, Any]:
    meta = {"name": "demo-feast-servers", "namespace": NS, "resourceVersion": rv, "labels": LABELS}
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": meta,
        "status": {"revision": revision, "conditions": [{"type": "Ready", "status": "True"}]},
    }


def test_a_renewed_certificate_wakes_its_store():
    """Secrets are not watched (no list/watch right on them): cert-manager's renewal is seen on the
    Certificate, whose status it updates after writing the new key pair into the Secret."""
    w, woken = watches()
    w.on_event("ADDED", certificate("10", 1))
    assert woken == [(NS, STORE)], "issued: the servers waiting for it can start"
    w.on_event("MODIFIED", certificate("11", 2))  # renewed
    assert woken == [(NS, STORE)] * 2


def test_a_secret_the_operator_wrote_wakes_only_when_it_drifted():
    w, woken = watches()
    ours = secret("demo-online-store", "5")
    w.cache.record(ours, keep_data=True)
    w.cache.applied[key(ours)] = (desired_hash(ours), drift_key(ours))
    w.on_event("MODIFIED", secret("demo-online-store", "5"))
    assert woken == []


def test_a_transient_403_is_retried_soon_not_after_the_long_forbidden_wait():
    """Under a least-privilege token a restarted API server answers 403 until its RBAC caches are
    filled (seen: tests/controlplane/test_reliability.py under the chart's token). The watch backs off
    from the usual retry; it does not go quiet for FORBIDDEN_RETRY at the first 403."""
    import asyncio

    from featurestore_operator.runtime.kube import ApiError

    class Kube:
        def __init__(self) -> None:
            self.lists = 0

        async def list_with_version(self, *args: Any, **kwargs: Any) -> tuple[list[dict[str, Any]], str]:
            self.lists += 1
            if self.lists <= 3:
                raise ApiError(403, "Forbidden", "configmaps is forbidden")
            return [], "1"

        async def watch(self, *args: Any, **kwargs: Any):
            await asyncio.sleep(3600)
            yield "", {}

    class Discovery:
        ttl = 60.0

        async def versions(self) -> None:
            return None

        def served_version(self, kind: str) -> str:
            return "v1"

    kube = Kube()
    w = Watches(kube, Discovery(), ObservedCache(), lambda ns, name: None, retry_after=0.01)  # type: ignore[arg-type]

    async def run() -> None:
        task = asyncio.create_task(w.follow(w.owned("ConfigMap", "ns")))
        for _ in range(200):
            if ("ConfigMap", "ns") in w.synced:
                break
            await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(run())
    assert kube.lists == 4 and ("ConfigMap", "ns") in w.synced
