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


def account(body: dict[str, Any], config: OperatorConfig) -> tuple[str, str] | None:
    """(namespace, ServiceAccount) the binding holds for this FeatureStore body, or None. Pure."""
    if body.get("metadata", {}).get("deletionTimestamp"):
        return None
    try:
        fs = parse_featurestore(body)
        fs = fs.model_copy(update={"spec": resolve(fs.spec, config)})
    except SpecError:
        return None
    if fs.spec.authz.type is AuthzType.KUBERNETES and not check(fs, config.effective_policy):
        return fs.metadata.namespace, Names(fs).service_account
    return None


def as_subjects(accounts: Iterable[tuple[str, str] | None]) -> list[dict[str, str]]:
    """The binding's subjects for these accounts (None: none), without duplicates, sorted."""
    return [
        {"kind": "ServiceAccount", "name": name, "namespace": ns} for ns, name in sorted(set(filter(None, accounts)))
    ]


def subjects(bodies: Iterable[dict[str, Any]], config: OperatorConfig) -> list[dict[str, str]]:
    """The binding's subjects for these FeatureStore bodies, sorted by (namespace, name). Pure."""
    return as_subjects(account(body, config) for body in bodies)


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
