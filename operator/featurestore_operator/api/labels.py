"""The labels that mark what the operator manages (part of the contract: users and the chart select
on them). Defined here, below the layers that set them (render) and the one that selects on them
(runtime: its watches and observed cache)."""

from __future__ import annotations

MANAGED_BY = "featurestore-operator"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
#: Label carrying the owning FeatureStore's name; with the namespace it selects its children.
OWNER_LABEL = "featurestore.kubeflow.org/name"
