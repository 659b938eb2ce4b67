"""The API versions a Kubernetes 1.20 server serves (the live tiers' API server and the e2e node), as
the operator's discovery picks them: render input for tests that render for that cluster."""

from __future__ import annotations

from featurestore_operator.render.inputs import ApiVersions

V120 = ApiVersions(cronjob="batch/v1beta1", pdb="policy/v1beta1", hpa="autoscaling/v2beta2", cronjob_time_zone=False)
