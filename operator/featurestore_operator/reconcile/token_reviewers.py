"""Who may create TokenReviews: the subjects of the chart's token reviewers ClusterRoleBinding.

A Feast server of a store with ``spec.authz.type: kubernetes`` checks each caller's token with a
TokenReview (cluster-scoped: no namespaced Role can grant it) as the store's ServiceAccount
``<name>-feast``. The binding holds exactly those ServiceAccounts: of live stores (not being
deleted) that parse and pass the admin policy. Nothing a user writes can name another subject.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..api import FeatureStore, OperatorConfig, SpecError, parse_featurestore, resolve
from ..api.policy import check
from ..api.spec import AuthzType
from ..render.names import Names


def subjects(bodies: Iterable[dict[str, Any]], config: OperatorConfig) -> list[dict[str, str]]:
    """The binding's subjects for these FeatureStore bodies, sorted by (namespace, name). Pure."""
    accounts: set[tuple[str, str]] = set()
    for body in bodies:
        if body.get("metadata", {}).get("deletionTimestamp"):
            continue
        try:
            fs = parse_featurestore(body)
            fs = fs.model_copy(update={"spec": resolve(fs.spec, config)})
        except SpecError:
            continue
        if fs.spec.authz.type is AuthzType.KUBERNETES and not check(fs, config.effective_policy):
            accounts.add((fs.metadata.namespace, Names(fs).service_account))
    return [{"kind": "ServiceAccount", "name": name, "namespace": ns} for ns, name in sorted(accounts)]


def manual_grant_note(fs: FeatureStore, managed: bool) -> str | None:
    """What the FeatureServer condition adds for a store with authz kubernetes when the operator does
    not manage the token reviewers binding (``managed``: FSO_TOKEN_REVIEWERS_BINDING set), or None."""
    if managed or fs.spec.authz.type is not AuthzType.KUBERNETES:
        return None
    return (
        f"spec.authz.type kubernetes: ServiceAccount {fs.metadata.namespace}/{Names(fs).service_account} must be "
        "allowed to create TokenReviews, which this installation leaves to the cluster admin (Helm value "
        "authz.kubernetes.enabled=false, FSO_TOKEN_REVIEWERS_BINDING unset); without it every caller is refused"
    )
