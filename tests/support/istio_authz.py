"""A small evaluator of Istio AuthorizationPolicy and Sidecar egress semantics, so a unit test can
show which policy admits each caller -> server pair the docs promise (Istio does not run here).

Rules mirrored (istio.io/latest/docs/reference/config/security/authorization-policy/ and
.../concepts/security/#authorization-policy, /docs/reference/config/networking/sidecar/):

- Policies in the root namespace (``istio-system``) apply to every workload of the mesh; others to
  the workloads of their namespace their ``selector`` matches (no selector: all of them).
- Evaluation: any matching DENY denies; else, when no ALLOW policy applies to the workload, the
  request is allowed; else it is allowed only if some ALLOW rule matches. An ALLOW policy with no
  rules (Kubeflow's ``global-deny-all``: ``spec: {}``) applies everywhere and matches nothing.
- A rule matches when every one of its ``from`` / ``to`` / ``when`` parts does (each list: any of).
  ``principals`` / ``namespaces`` / ``source.namespace`` need the caller's mTLS identity.
  HTTP-only fields (``paths``, ``methods``, ``request.headers``) never match TCP traffic in an
  ALLOW rule (Istio drops such a rule for TCP).
- A caller has an mTLS identity only if it and the server run sidecars AND the caller's sidecar
  knows the server's Service: its Sidecar's egress hosts (the workload's namespace's Sidecar, else
  the root namespace's default) include ``<server namespace>/*`` (``./*``: its own, ``*/*``: any).
  Otherwise the traffic leaves through the passthrough cluster as plaintext (outboundTrafficPolicy
  ALLOW_ANY, the default Kubeflow keeps) and the server sees no identity.
- A server without a sidecar enforces no AuthorizationPolicy at all (only NetworkPolicy).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT_NAMESPACE = "istio-system"
TRUST_DOMAIN = "cluster.local"
KUBEFLOW_DIR = Path(__file__).parent / "kubeflow"
HTTP_ONLY_KEYS = ("paths", "notPaths", "methods", "notMethods", "hosts", "notHosts")


@dataclass(frozen=True)
class Workload:
    namespace: str
    service_account: str = "default"
    labels: dict[str, str] = field(default_factory=dict)
    in_mesh: bool = True


@dataclass(frozen=True)
class Request:
    caller: Workload
    server: Workload
    port: int
    http: bool = True
    path: str = "/"
    method: str = "POST"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    #: the policies that admit it (namespace/name, sorted), the DENY that refused it, or why none did
    by: str


def kubeflow_defaults(profile_namespace: str, owner: str = "user@example.com") -> list[dict[str, Any]]:
    """global-deny-all, the Sidecar egress pruning (kubeflow/manifests) and the profile's
    ns-owner-access-istio (profile controller), as Kubeflow installs them."""
    docs = list(yaml.safe_load_all((KUBEFLOW_DIR / "istio-defaults.yaml").read_text()))
    owner_ap = (KUBEFLOW_DIR / "ns-owner-access-istio.yaml").read_text()
    docs.append(yaml.safe_load(owner_ap.replace("NAMESPACE", profile_namespace).replace("OWNER", owner)))
    return [d for d in docs if d]


def identity(req: Request, objects: Iterable[dict[str, Any]]) -> str | None:
    """The caller's mTLS principal as the server sees it, or None (plaintext / no sidecar)."""
    if not (req.caller.in_mesh and req.server.in_mesh):
        return None
    hosts = _egress_hosts(req.caller, list(objects))
    ns = req.server.namespace
    reach = any(h in ("*/*", f"{ns}/*") or (h == "./*" and ns == req.caller.namespace) for h in hosts)
    if not reach:
        return None
    return f"{TRUST_DOMAIN}/ns/{req.caller.namespace}/sa/{req.caller.service_account}"


def _egress_hosts(caller: Workload, objects: list[dict[str, Any]]) -> list[str]:
    sidecars = [o for o in objects if o["kind"] == "Sidecar"]
    for ns in (caller.namespace, ROOT_NAMESPACE):
        for sc in sidecars:
            if sc["metadata"]["namespace"] != ns:
                continue
            selector = (sc["spec"].get("workloadSelector") or {}).get("labels")
            if selector and not _labels_match(selector, caller.labels):
                continue
            if ns == ROOT_NAMESPACE and selector:
                continue
            return [h for e in sc["spec"].get("egress") or [] for h in e.get("hosts") or []]
    return ["*/*"]  # no Sidecar resource anywhere: every Service is known


def evaluate(req: Request, objects: Iterable[dict[str, Any]]) -> Decision:
    objects = list(objects)
    if not req.server.in_mesh:
        return Decision(True, "no sidecar on the server: no AuthorizationPolicy applies (NetworkPolicy only)")
    principal = identity(req, objects)
    applicable = [p for p in objects if p["kind"] == "AuthorizationPolicy" and _applies(p, req.server)]
    for p in applicable:
        if (p["spec"].get("action") or "ALLOW") == "DENY" and _any_rule(p, req, principal):
            return Decision(False, f"denied by {_name(p)}")
    allows = [p for p in applicable if (p["spec"].get("action") or "ALLOW") == "ALLOW"]
    if not allows:
        return Decision(True, "no ALLOW policy applies")
    admitting = [_name(p) for p in allows if _any_rule(p, req, principal)]
    if admitting:
        return Decision(True, ", ".join(sorted(admitting)))
    who = principal or "no mTLS identity"
    return Decision(False, f"no ALLOW rule matches ({who}); applicable: {', '.join(_name(p) for p in allows)}")


def _name(p: dict[str, Any]) -> str:
    return f"{p['metadata']['namespace']}/{p['metadata']['name']}"


def _labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _applies(policy: dict[str, Any], server: Workload) -> bool:
    ns = policy["metadata"]["namespace"]
    if ns != ROOT_NAMESPACE and ns != server.namespace:
        return False
    selector = (policy["spec"].get("selector") or {}).get("matchLabels")
    return not selector or _labels_match(selector, server.labels)


def _any_rule(policy: dict[str, Any], req: Request, principal: str | None) -> bool:
    return any(_rule(rule or {}, req, principal) for rule in policy["spec"].get("rules") or [])


def _rule(rule: dict[str, Any], req: Request, principal: str | None) -> bool:
    froms = rule.get("from") or []
    tos = rule.get("to") or []
    whens = rule.get("when") or []
    if froms and not any(_source(f.get("source") or {}, principal) for f in froms):
        return False
    if tos and not any(_operation(t.get("operation") or {}, req) for t in tos):
        return False
    return all(_condition(c, req, principal) for c in whens)


def _source_namespace(principal: str | None) -> str | None:
    return principal.split("/ns/")[1].split("/")[0] if principal else None


def _source(src: dict[str, Any], principal: str | None) -> bool:
    if "principals" in src and not (principal and _glob_any(src["principals"], principal)):
        return False
    namespaces = src.get("namespaces")
    if namespaces is not None and not (principal and _glob_any(namespaces, _source_namespace(principal) or "")):
        return False
    return not (src.keys() - {"principals", "namespaces"})  # other source fields: not modelled, no match


def _operation(op: dict[str, Any], req: Request) -> bool:
    if not req.http and any(k in op for k in HTTP_ONLY_KEYS):
        return False
    if "ports" in op and str(req.port) not in op["ports"]:
        return False
    if "paths" in op and not _glob_any(op["paths"], req.path):
        return False
    if "methods" in op and req.method not in op["methods"]:
        return False
    return not (op.keys() - {"ports", "paths", "methods"})


def _condition(cond: dict[str, Any], req: Request, principal: str | None) -> bool:
    key, values = cond["key"], cond.get("values") or []
    if key == "source.namespace":
        return bool(principal) and _source_namespace(principal) in values
    if key.startswith("request.headers["):
        return req.http and req.headers.get(key[len("request.headers[") : -1]) in values
    return False  # not modelled: no match


def _glob_any(patterns: list[str], value: str) -> bool:
    """Istio's string match: exact, prefix ``x*``, suffix ``*x`` or ``*``."""
    for p in patterns:
        if p == "*" or p == value:
            return True
        if p.endswith("*") and value.startswith(p[:-1]):
            return True
        if p.startswith("*") and value.endswith(p[1:]):
            return True
    return False
