"""The admin policy at the last step before any cloud call (api/policy.py has the rules). Pure.

Every cloud backend asks :func:`refusal` first, whatever validated the spec before: the admission
webhook can be down or bypassed. Within a reconcile pass the verdict is computed once (reconcile
hands it over in ``BackendContext.verdict``); a backend called outside a pass computes it itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..api import FeatureStore, OperatorConfig, Provider
from ..api.policy import AdminPolicy, Problem, byo_problems, check, effective, memorystore_security_problems


@dataclass(frozen=True)
class Verdict:
    """The admin policy's answer for one resolved store, computed once per reconcile pass."""

    problems: tuple[Problem, ...] = ()

    @property
    def refusal(self) -> str | None:
        return "; ".join(f"{path}: {msg}" for path, msg in self.problems) or None


class Handed(Protocol):
    """What a backend is handed by the pass (``base.BackendContext``): the verdict, if computed."""

    @property
    def verdict(self) -> Verdict | None: ...


def verdict(fs: FeatureStore, config: OperatorConfig) -> Verdict:
    """Every way ``fs`` breaks the admin policy (api/policy.py:check)."""
    return Verdict(tuple(check(fs, config.effective_policy)))


def refusal(fs: FeatureStore, ctx: Handed, config: OperatorConfig | None) -> str | None:
    """Why the admin policy refuses ``fs``: the pass's verdict when reconcile handed one over, else
    computed here (``config``: the backend's own)."""
    if fs.spec.provider is Provider.LOCAL and fs.spec.gcp.service_account:
        return "provider local binds no Google service account"
    if ctx.verdict is not None:
        return ctx.verdict.refusal
    return policy_refusal(fs, config)


def policy_refusal(fs: FeatureStore, config: OperatorConfig | None) -> str | None:
    """Why the admin policy refuses ``fs`` (None: allowed). Checked again here, at the
    last step, whatever validated the spec before (the webhook may be down or bypassed)."""
    if fs.spec.provider is Provider.LOCAL and fs.spec.gcp.service_account:
        return "provider local binds no Google service account"
    if config is None:
        return None
    problems = check(fs, config.effective_policy)
    return "; ".join(f"{path}: {msg}" for path, msg in problems) or None


def byo_refusal(fs: FeatureStore, config: OperatorConfig | None) -> str | None:
    """Why ``fs`` may not use its existingInstance/existingBucket (None: the admin assigned them). Asked by
    the backend right before it reads or hands out anything of such a resource, even when every check
    before was skipped: with no operator config there is no assignment, so nothing is allowed."""
    if config is None:
        return "no admin policy: bring-your-own resources need an assignment in policy.byoAssignments"
    problems = byo_problems(fs, config.effective_policy)
    return "; ".join(f"{path}: {msg}" for path, msg in problems) or None


def memorystore_security_refusal(config: OperatorConfig | None, *, auth: bool, tls: bool) -> str | None:
    """Why an existing instance with ``auth``/``tls`` is refused by memorystoreSecurity (None: allowed;
    without an operator config the defaults, both required, apply)."""
    policy = config.effective_policy if config else _DEFAULT_POLICY
    problems = memorystore_security_problems(policy, auth=auth, tls=tls, existing=True)
    return "; ".join(f"{path}: {msg}" for path, msg in problems) or None


#: The policy's defaults (no operator config: tests and tools); never read from the environment here.
_DEFAULT_POLICY = effective(
    AdminPolicy(), project=None, region=None, network=None, operator_service_account=None, images=[]
)
