"""A serving Deployment stays Ready while a new pod template rolls out (an operator upgrade, a config
change): its generation is ahead of what the controller observed, but the previous pods still serve.
tests/controlplane/test_upgrade_live.py found Ready flapping False during every roll."""

from __future__ import annotations

from featurestore_operator.reconcile import conditions as cond

T = cond.ConditionType


def _dep(generation: int, observed: int, available: int) -> dict:
    return {
        "metadata": {"name": "s-feature-server", "generation": generation},
        "status": {"observedGeneration": observed, "replicas": 1, "availableReplicas": available},
    }


def test_rolling_out_with_serving_pods_is_ready():
    part = cond.deployment_part(T.FEATURE_SERVER, _dep(generation=2, observed=1, available=1), 1)
    assert (part.status, part.reason) == ("True", "RollingOut"), part
    assert part.event is None, "progress, not an Event"


def test_rolled_out_is_available_and_nothing_serving_is_not_ready():
    assert cond.deployment_part(T.FEATURE_SERVER, _dep(2, 2, 1), 1).reason == "Available"
    part = cond.deployment_part(T.FEATURE_SERVER, _dep(2, 1, 0), 1)
    assert (part.status, part.reason) == ("False", "Unavailable"), part
