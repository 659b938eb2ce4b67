"""Which condition transitions post an Event (reconcile.events.transitions)."""

from __future__ import annotations

from featurestore_operator.api import FeatureStoreStatus
from featurestore_operator.backends.base import Failed, Pending, Ready
from featurestore_operator.reconcile import conditions as cond
from featurestore_operator.reconcile.events import transitions

T = cond.T
NOW = "2026-11-25T10:00:00Z"


def status(parts: list[cond.Part], previous: FeatureStoreStatus | None = None) -> FeatureStoreStatus:
    previous = previous or FeatureStoreStatus()
    return previous.model_copy(update={"conditions": cond.merge_conditions(previous.conditions, parts, 1, NOW)})


def events(before: FeatureStoreStatus, parts: list[cond.Part]) -> tuple[FeatureStoreStatus, list[tuple[str, str]]]:
    after = status(parts, before)
    return after, [(e.type, e.reason) for e in transitions(before, after, parts)]


def ready_parts(**override: cond.Part) -> list[cond.Part]:
    parts = {t: cond.Part(t, "True", "Ready", "ok") for t in cond.READY_PARTS}
    parts[T.KUBEFLOW] = cond.Part(T.KUBEFLOW, "True", "Configured", "ok")
    for name, part in override.items():
        parts[T(name)] = part
    return list(parts.values())


def test_a_creation_that_goes_well_posts_only_ready():
    s = FeatureStoreStatus()
    posted_all = []
    # first pass: workloads not created, pods starting - progress, no Event
    s, posted = events(s, ready_parts(FeatureServer=cond.deployment_part(T.FEATURE_SERVER, None, 1)))
    posted_all += posted
    s, posted = events(s, ready_parts(FeatureServer=cond.Part(T.FEATURE_SERVER, "False", "Unavailable", "0 of 1")))
    posted_all += posted
    s, posted = events(s, ready_parts())
    posted_all += posted
    assert posted_all == [("Normal", "Ready")]
    # a resync of the Ready store: nothing
    assert events(s, ready_parts())[1] == []


def test_cloud_actions_are_normal_and_problems_warnings():
    s = status(ready_parts())
    creating = cond.from_outcome(T.ONLINE_STORE, Pending("Updating", "resizing"))
    s, posted = events(s, ready_parts(OnlineStore=creating))
    assert posted == [("Normal", "OnlineStoreUpdating"), ("Normal", "NotReady")]
    s, posted = events(s, ready_parts(OnlineStore=creating))
    assert posted == []  # same state again
    failed = cond.from_outcome(T.ONLINE_STORE, Failed("QuotaExceeded", "no quota", retryable=True))
    s, posted = events(s, ready_parts(OnlineStore=failed))
    assert posted == [("Warning", "OnlineStoreQuotaExceeded")]
    s, posted = events(s, ready_parts(OnlineStore=cond.from_outcome(T.ONLINE_STORE, Ready(None))))
    assert posted == [("Normal", "Ready")]


def test_a_ready_store_losing_a_part_to_a_problem_warns():
    s = status(ready_parts())
    deadline = {
        "metadata": {"generation": 1},
        "status": {
            "observedGeneration": 1,
            "conditions": [{"type": "Progressing", "reason": "ProgressDeadlineExceeded", "message": "took too long"}],
        },
    }
    s, posted = events(s, ready_parts(FeatureServer=cond.deployment_part(T.FEATURE_SERVER, deadline, 1)))
    assert posted == [("Warning", "FeatureServerProgressDeadlineExceeded"), ("Warning", "NotReady")]


def test_parts_outside_ready_post_their_recovery():
    missing = cond.Part(T.KUBEFLOW, "False", "CRDNotInstalled", "no PodDefault", event="Warning")
    s, posted = events(FeatureStoreStatus(), ready_parts(Kubeflow=missing))
    assert posted == [("Warning", "KubeflowCRDNotInstalled"), ("Normal", "Ready")]
    s, posted = events(s, ready_parts())
    assert posted == [("Normal", "KubeflowConfigured")]


def test_a_declined_change_on_a_serving_store_warns():
    s = status(ready_parts())
    declined = cond.from_outcome(T.ONLINE_STORE, Ready(None, "tier is immutable", reason="ImmutableFieldChanged"))
    s, posted = events(s, ready_parts(OnlineStore=declined))
    assert posted == [("Warning", "OnlineStoreImmutableFieldChanged")]
    assert events(s, ready_parts(OnlineStore=declined))[1] == []
