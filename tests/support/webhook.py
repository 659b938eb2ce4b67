"""The chart's ValidatingWebhookConfiguration (charts/featurestore-operator/templates/webhook.yaml) on
a test control plane.

The session's API server has no service routing (no kube-proxy; endpoint routing is off), so tests
that run the operator as a local process point the chart's configuration at it by URL
(``https://127.0.0.1:PORT/validate``), changing nothing else. Service routing itself is proven on a
control plane started with ``--enable-aggregator-routing`` (tests/controlplane/test_webhook_chart.py)."""

from __future__ import annotations

import base64
import copy
import subprocess
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

CHART = Path(__file__).resolve().parents[2] / "charts" / "featurestore-operator"


def chart_configuration(
    helm_bin: str, *values: str, release: str = "fso", namespace: str = "fso-system"
) -> dict[str, Any]:
    """The ValidatingWebhookConfiguration ``helm template`` renders with ``values``."""
    out = subprocess.run(
        [helm_bin, "template", release, str(CHART), "-n", namespace, "--show-only", "templates/webhook.yaml", *values],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    [vwc] = [d for d in yaml.safe_load_all(out.stdout) if d and d["kind"] == "ValidatingWebhookConfiguration"]
    return vwc


def at_url(vwc: dict[str, Any], url: str) -> dict[str, Any]:
    """``vwc`` with every webhook called at ``url`` + its service path instead of the Service."""
    out = copy.deepcopy(vwc)
    for hook in out["webhooks"]:
        hook["clientConfig"] = {"url": url + hook["clientConfig"]["service"].get("path", "")}
    return out


def repoint(api: client.ApiClient, name: str, url: str) -> None:
    """Point the installed configuration ``name`` at ``url`` (a JSON patch: the caBundle the
    operator writes is left alone)."""
    adm = client.AdmissionregistrationV1Api(api)
    live = adm.read_validating_webhook_configuration(name)
    ops: list[dict[str, Any]] = []
    for i, hook in enumerate(live.webhooks or []):
        path = (hook.client_config.service.path or "") if hook.client_config.service else ""
        if hook.client_config.service:
            ops.append({"op": "remove", "path": f"/webhooks/{i}/clientConfig/service"})
        ops.append({"op": "add", "path": f"/webhooks/{i}/clientConfig/url", "value": url + path})
    adm.patch_validating_webhook_configuration(name, ops)


def ca_bundle(api: client.ApiClient, name: str) -> bytes | None:
    """The caBundle of the configuration's first webhook (None while unset or absent)."""
    try:
        live = client.AdmissionregistrationV1Api(api).read_validating_webhook_configuration(name)
    except ApiException as err:
        if err.status == 404:
            return None
        raise
    if not live.webhooks:
        return None
    bundle = live.webhooks[0].client_config.ca_bundle
    return base64.b64decode(bundle) if bundle else None


def delete(api: client.ApiClient, name: str) -> None:
    try:
        client.AdmissionregistrationV1Api(api).delete_validating_webhook_configuration(name)
    except ApiException as err:
        if err.status != 404:
            raise
