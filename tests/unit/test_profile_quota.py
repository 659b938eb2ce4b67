"""A default local store (examples/local.yaml), with an Istio sidecar in every pod, fits Kubeflow's
sample profile quota (tests/support/kubeflow/sample-profile.yaml, vendored from kubeflow/manifests:
cpu 2, memory 2Gi, persistentvolumeclaims 1, requests.storage 5Gi) steady and while materializing.

In a ResourceQuota ``cpu``/``memory`` mean ``requests.cpu``/``requests.memory``. A pod's effective
request (Kubernetes' rule, native sidecars included) is the larger of the sum of its app containers
plus its sidecars and, for each init container, that init container plus the sidecars started before
it. Istio's injected proxy requests 100m / 128Mi (``global.proxy.resources`` in kubeflow/manifests
common/istio/istio-install/base/install.yaml @ 009c88084074904c7743384ff50d3bd70012ef55, Istio's
own default); with native sidecars it is the first init container."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from featurestore_operator.api import OperatorConfig, parse_featurestore, resolve
from featurestore_operator.api.bounds import quantity
from featurestore_operator.backends.planned import planned_endpoints
from featurestore_operator.render import RepoSource, render

ROOT = Path(__file__).resolve().parents[2]
SIDECAR = {"cpu": quantity("100m"), "memory": quantity("128Mi")}


def _quota() -> dict[str, Decimal]:
    hard = yaml.safe_load((ROOT / "tests/support/kubeflow/sample-profile.yaml").read_text())["spec"]
    hard = hard["resourceQuotaSpec"]["hard"]
    return {k: quantity(str(v)) for k, v in hard.items()}


def _requests(container: dict[str, Any]) -> dict[str, Decimal]:
    req = (container.get("resources") or {}).get("requests") or {}
    return {r: quantity(str(req.get(r, "0"))) for r in ("cpu", "memory")}


def pod_requests(template: dict[str, Any]) -> dict[str, Decimal]:
    spec, annotations = template["spec"], template["metadata"].get("annotations") or {}
    sidecar = annotations.get("sidecar.istio.io/inject") != "false"
    side = SIDECAR if sidecar else {"cpu": Decimal(0), "memory": Decimal(0)}
    out = {}
    for r in ("cpu", "memory"):
        main = sum(_requests(c)[r] for c in spec["containers"]) + side[r]
        init = max((_requests(c)[r] + side[r] for c in spec.get("initContainers") or []), default=Decimal(0))
        out[r] = max(main, init)
    return out


def _objects() -> list[dict[str, Any]]:
    doc = yaml.safe_load((ROOT / "examples/local.yaml").read_text())
    config = OperatorConfig()  # istio on, native sidecars: every pod below runs a sidecar
    fs = parse_featurestore(doc)
    fs = fs.model_copy(update={"spec": resolve(fs.spec, config)})
    return render(fs, planned_endpoints(fs), config, repo=RepoSource("r")).objects


def _by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def usage(materializing: bool) -> dict[str, Decimal]:
    objects = _objects()
    total = {"cpu": Decimal(0), "memory": Decimal(0)}
    for o in _by_kind(objects, "Deployment") + _by_kind(objects, "StatefulSet"):
        pod = pod_requests(o["spec"]["template"])
        for r in total:
            total[r] += pod[r] * o["spec"].get("replicas", 1)
    if materializing:
        [cron] = _by_kind(objects, "CronJob")
        pod = pod_requests(cron["spec"]["jobTemplate"]["spec"]["template"])
        for r in total:
            total[r] += pod[r]
    return total


def test_sidecars_are_counted():
    [server] = [o for o in _by_kind(_objects(), "Deployment") if o["metadata"]["name"] == "demo-feature-server"]
    assert pod_requests(server["spec"]["template"])["memory"] == quantity("512Mi") + quantity("128Mi")


def test_local_store_fits_the_sample_profile_quota_steady_and_materializing():
    quota = _quota()
    for materializing in (False, True):
        used = usage(materializing)
        assert used["cpu"] <= quota["cpu"], (materializing, used)
        assert used["memory"] <= quota["memory"], (materializing, used)
    claims = _by_kind(_objects(), "PersistentVolumeClaim")
    assert len(claims) <= quota["persistentvolumeclaims"]
    storage = sum(quantity(c["spec"]["resources"]["requests"]["storage"]) for c in claims)
    assert storage <= quota["requests.storage"]
    print({m: usage(m) for m in (False, True)})
