"""The admin policy at the last step before any cloud call (api/policy.py has the rules). Pure.

Every cloud backend asks :func:`policy_refusal` first, whatever validated the spec before: the
admission webhook can be down or bypassed, and reconcile's own check is one call away from here.
"""

from __future__ import annotations

from ..api import FeatureStore, OperatorConfig, Provider
from ..api.policy import check


def policy_refusal(fs: FeatureStore, config: OperatorConfig | None) -> str | None:
    """Why the admin policy refuses ``fs`` (None: allowed). Checked again here, at the
    last step, whatever validated the spec before (the webhook may be down or bypassed)."""
    if fs.spec.provider is Provider.LOCAL and fs.spec.gcp.service_account:
        return "provider local binds no Google service account"
    if config is None:
        return None
    problems = check(fs, config.effective_policy)
    return "; ".join(f"{path}: {msg}" for path, msg in problems) or None
