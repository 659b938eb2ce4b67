"""The profile onboarding template: which FeatureStore every Kubeflow profile namespace gets.

The operator's ``onboardingTemplate`` (env FSO_ONBOARDING_TEMPLATE as JSON or YAML, or a file
named by FSO_ONBOARDING_TEMPLATE_FILE) is either the full form::

    name: feast                       # FeatureStore name in each profile namespace
    labels: {team: data}              # extra metadata of the created FeatureStore
    annotations: {}
    spec:                             # a partial FeatureStore spec, as in a manifest
      provider: gcp
      project: "{namespace}"          # the default; sanitized to a Feast project name
      featureServer: {replicas: 2}
    sharedOnlineStore:                # optional: one Redis for every profile
      secretRef: {namespace: feast-system, name: shared-redis}
      tls: true

or just the spec (``{project: default, provider: local}``), which the Helm chart's
``kubeflow.onboarding.template`` passes. Every string of the spec may contain ``{namespace}``
(the profile namespace); in ``spec.project`` the result is sanitized to Feast's
``[A-Za-z0-9_]{1,63}`` (``kubeflow-user-alice`` -> ``kubeflow_user_alice``).

Shared online store: each onboarded FeatureStore gets ``onlineStore.external`` pointing at a copy
of the source Secret (keys host, port, password, ca.crt) in its own namespace, and its own Feast
project (``{namespace}``). Feast prefixes every Redis key with the project, so profiles share the
instance without sharing data - but they do share the Redis credentials: it is one trust domain.
Offline store and registry stay per profile.

The template is validated at start-up against a sample namespace, so a bad template stops the
operator with a message instead of failing per profile later.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from pydantic import Field, model_validator

from .base import ApiModel
from .resource import MAX_NAME_LENGTH, NAME_PATTERN, SpecError, parse_spec
from .spec import DnsLabel, DnsSubdomain

#: Annotation on an onboarded FeatureStore: the hash of the template it was created from.
ONBOARDED_FROM_ANNOTATION = "featurestore.kubeflow.org/onboarded-from"
#: Placeholder replaced by the profile namespace in every string of the template's spec.
NAMESPACE_PLACEHOLDER = "{namespace}"
#: Namespace used to validate the template at start-up (Kubeflow's default profile namespace).
SAMPLE_NAMESPACE = "kubeflow-user-example-com"
_TEMPLATE_KEYS = {"name", "labels", "annotations", "spec", "sharedOnlineStore", "shared_online_store"}
_PROJECT_MAX = 63


def feast_project_name(raw: str) -> str:
    """A valid Feast project name (``[A-Za-z0-9_]{1,63}``, not starting with ``_``) from any string.

    Deterministic; names longer than 63 characters keep a hash of the full name, so two long
    namespaces with a common prefix still get different projects."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", raw) or "feast"
    if name.startswith("_"):
        name = "p" + name
    if len(name) > _PROJECT_MAX:
        digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
        name = f"{name[: _PROJECT_MAX - 9]}_{digest}"
    return name


def _substitute(value: Any, namespace: str) -> Any:
    if isinstance(value, str):
        return value.replace(NAMESPACE_PLACEHOLDER, namespace)
    if isinstance(value, dict):
        return {k: _substitute(v, namespace) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, namespace) for v in value]
    return value


class SharedSecretRef(ApiModel):
    """The Secret describing the shared Redis (keys host, port, optionally password, ca.crt)."""

    namespace: DnsLabel
    """Namespace of the source Secret (e.g. the operator's namespace)."""
    name: DnsSubdomain
    """Name of the source Secret."""


class SharedOnlineStore(ApiModel):
    """One Redis (e.g. one Memorystore instance) for every onboarded profile."""

    secret_ref: SharedSecretRef
    """Source Secret; the operator keeps a copy in every onboarded namespace (Feast pods read it there)."""
    tls: bool = False
    """Connect with TLS (verified against the Secret's ca.crt when present)."""


class OnboardingTemplate(ApiModel):
    """The FeatureStore created in every onboarded profile namespace."""

    name: str = Field(default="feast", max_length=MAX_NAME_LENGTH, pattern=NAME_PATTERN)
    """metadata.name of the FeatureStore in each profile namespace."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Extra labels of the created FeatureStore."""
    annotations: dict[str, str] = Field(default_factory=dict)
    """Extra annotations of the created FeatureStore."""
    spec: dict[str, Any] = Field(default_factory=dict)
    """A partial FeatureStore spec (manifest form). ``project`` defaults to ``{namespace}``."""
    shared_online_store: SharedOnlineStore | None = None
    """Point every profile at one Redis instead of an online store each."""

    @model_validator(mode="before")
    @classmethod
    def _bare_spec(cls, data: Any) -> Any:
        """Accept just a spec (the Helm chart's ``kubeflow.onboarding.template`` form)."""
        if isinstance(data, dict) and "spec" not in data and not set(data) <= _TEMPLATE_KEYS:
            return {"spec": data}
        return data

    @model_validator(mode="after")
    def _valid_for_a_profile(self) -> OnboardingTemplate:
        if self.shared_online_store and "onlineStore" in self.spec:
            raise ValueError("set either sharedOnlineStore or spec.onlineStore, not both")
        if self.shared_online_store and NAMESPACE_PLACEHOLDER not in str(
            self.spec.get("project", NAMESPACE_PLACEHOLDER)
        ):
            raise ValueError(
                "with sharedOnlineStore, spec.project must contain {namespace}: profiles sharing one "
                "Redis are kept apart only by their Feast project"
            )
        try:
            parse_spec(self.spec_for(SAMPLE_NAMESPACE))
        except SpecError as err:
            raise ValueError(
                f"the template gives an invalid FeatureStore (for namespace {SAMPLE_NAMESPACE}): {err}"
            ) from None
        return self

    @property
    def hash(self) -> str:
        """Identifies this template's content (recorded on what it creates)."""
        canonical = json.dumps(self.wire(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    @property
    def shared_secret_name(self) -> str:
        """Name of the shared online store Secret's copy in each profile namespace."""
        return f"{self.name}-shared-online-store"

    def spec_for(self, namespace: str) -> dict[str, Any]:
        """The FeatureStore spec (manifest form) for one profile namespace."""
        spec = {k: v for k, v in self.spec.items() if k != "project"}
        spec = _substitute(spec, namespace)
        project = str(self.spec.get("project", NAMESPACE_PLACEHOLDER))
        spec = {"project": feast_project_name(project.replace(NAMESPACE_PLACEHOLDER, namespace)), **spec}
        if self.shared_online_store:
            spec["onlineStore"] = {
                "external": {"secretRef": {"name": self.shared_secret_name}, "tls": self.shared_online_store.tls}
            }
        return spec

    def manifest(self, namespace: str) -> dict[str, Any]:
        """The FeatureStore to create in ``namespace``."""
        return {
            "apiVersion": "featurestore.kubeflow.org/v1alpha1",
            "kind": "FeatureStore",
            "metadata": {
                "name": self.name,
                "namespace": namespace,
                **({"labels": dict(self.labels)} if self.labels else {}),
                "annotations": {**self.annotations, ONBOARDED_FROM_ANNOTATION: self.hash},
            },
            "spec": self.spec_for(namespace),
        }
