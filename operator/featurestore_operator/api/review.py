"""Everything a FeatureStore must pass before the operator acts on it: the model, the operator
config and the admin policy, and (on update) the immutable fields. Pure.

One function for the three places that check: the admission webhook (``kubectl apply`` time), the
``validate`` CLI (CI pre-checks) and the operator's reconcile (the webhook may be down or bypassed).
"""

from __future__ import annotations

from typing import Any

from .bounds import size_problems
from .config import OperatorConfig
from .policy import Problem, check, immutable_changes
from .resolve import resolve
from .resource import FeatureStore, SpecError, parse_featurestore


def resolved(obj: dict[str, Any], config: OperatorConfig) -> FeatureStore:
    """``obj`` parsed, its spec resolved against ``config``; SpecError when it cannot be, or when its
    spec is over the admin policy's maxSpecBytes (checked first: a big spec is never parsed)."""
    problems = size_problems(obj, config.effective_policy.bounds.max_spec_bytes)
    if problems:
        raise SpecError(problems)
    fs = parse_featurestore(obj)
    return fs.model_copy(update={"spec": resolve(fs.spec, config)})


def review(obj: dict[str, Any], config: OperatorConfig, old: dict[str, Any] | None = None) -> list[Problem]:
    """Problems of ``obj`` (a FeatureStore as applied), [] when the operator will accept it.
    ``old``: the stored object on an update (immutable fields are compared against it)."""
    try:
        fs = resolved(obj, config)
    except SpecError as err:
        return list(err.problems)
    problems = check(fs, config.effective_policy)
    if old is not None:
        try:
            before = resolved(old, config)
        except SpecError:
            return problems  # the stored object is invalid (older rules): nothing to compare with
        problems += immutable_changes(before, fs)
    return problems


def message(problems: list[Problem]) -> str:
    """One line per problem, as kubectl shows an admission denial."""
    return "; ".join(f"{path}: {msg}" for path, msg in problems)
