"""Per-component pod settings (``pod:`` of the feature server, registry/offline servers, UI,
materialization, feature-repo apply and in-cluster Redis) and the operator-level defaults of each.

Every field is hostile input (a namespace editor writes it), so each is checked here, where a
refusal becomes a Spec condition naming the field:

* env / envFrom may reference only Secrets and ConfigMaps by name (Kubernetes resolves them in the
  pod's, i.e. the FeatureStore's, namespace) or the pod's own downward-API fields; names the
  operator sets itself (the config path, the Redis password variable, ...) are refused;
* pod labels may not take the operator's labels (``app.kubernetes.io/*``, ``featurestore.kubeflow.org/*``,
  the ``access-feast-*`` PodDefault selectors): selectors, Services, NetworkPolicies and prune all rely
  on them; nor any key of the ``kubernetes.io``, ``k8s.io`` or ``istio.io`` domains (``istio.io/rev``,
  ``sidecar.istio.io/inject`` pick the mesh);
* pod annotations may not use those domains either, as a class: the Istio sidecar switches,
  revisions, injection templates and traffic capture (the AuthorizationPolicy that guards the
  feature server lives in the sidecar), seccomp and AppArmor of the pod or of any container
  (``container.seccomp.security.alpha.kubernetes.io/<c>: unconfined`` overrides ``RuntimeDefault``
  on older clusters), ``kubernetes.io/psp``; nor container-runtime keys (``io.kubernetes.cri-o.*``,
  ``io.containerd.*``, Kata, gVisor); nor the operator's ``featurestore.kubeflow.org/*``. Allowed:
  the proxy's resources and log level, ``cluster-autoscaler.kubernetes.io/safe-to-evict``,
  ``kubectl.kubernetes.io/default-container`` (the field docs in the CRD summarise this);
* priorityClassName may not be a ``system-*`` class.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator
from pydantic.json_schema import JsonDict

from .base import ApiModel

_QUALIFIED = (
    r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
)
QualifiedName = Annotated[str, StringConstraints(pattern=f"^{_QUALIFIED}$", max_length=317)]
LabelValue = Annotated[str, StringConstraints(pattern=r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$", max_length=63)]
DnsSubdomain = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", max_length=253)
]
EnvName = Annotated[str, StringConstraints(pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$", max_length=253)]
ConfigKey = Annotated[str, StringConstraints(pattern=r"^[-._a-zA-Z0-9]+$", max_length=253)]

#: Environment variables the operator sets in its containers (render/pods.py, render/jobs.py,
#: render/incluster.py): a second entry of the same name would make server-side apply fail
#: (env is a list keyed by name) or silently replace the operator's value.
RESERVED_ENV = frozenset(
    {
        "FEAST_FS_YAML_FILE_PATH",
        "FEAST_USAGE",
        "HOME",
        "PYTHONDONTWRITEBYTECODE",
        "REDIS_PASSWORD",
        "GIT_TOKEN",
    }
)
#: Label key prefixes (and keys) the operator owns on every pod.
RESERVED_LABEL_PREFIXES = ("app.kubernetes.io/", "featurestore.kubeflow.org/", "access-feast-")
RESERVED_LABELS = frozenset({"sidecar.istio.io/inject"})
#: Key domains (and their sub-domains) whose labels and annotations change the pod's sandbox, its
#: mesh membership or what Kubernetes components do with it: Kubernetes' own (seccomp, AppArmor,
#: PodSecurity, ``kubernetes.io/psp``, any container of ``container.*.kubernetes.io/<name>``), Istio's
#: (injection, revision, proxy config, traffic capture, injection templates) and the operator's.
#: A class, not a list of known keys: a key Kubernetes or Istio adds later is refused too.
RESERVED_DOMAINS = ("kubernetes.io", "k8s.io", "istio.io", "featurestore.kubeflow.org")
#: Key prefixes container runtimes read as sandbox settings (CRI-O, containerd, Kata, gVisor, crun):
#: user namespaces, devices, runtime handler, hypervisor options.
RUNTIME_KEY_PREFIXES = (
    "io.kubernetes.",
    "io.containerd.",
    "io.katacontainers.",
    "dev.gvisor.",
    "run.oci.",
    "io.podman.",
)
#: Annotation key prefixes that would take the pod out of the mesh policy or loosen its sandbox
#: (kept for readers; :func:`reserved_annotation` refuses the whole classes above).
RESERVED_ANNOTATION_PREFIXES = (
    "featurestore.kubeflow.org/",
    "sidecar.istio.io/",
    "traffic.sidecar.istio.io/",
    "proxy.istio.io/",
    "container.apparmor.security.beta.kubernetes.io/",
    "seccomp.security.alpha.kubernetes.io/",
    "container.seccomp.security.alpha.kubernetes.io/",
)
#: sidecar.istio.io/* annotations that only size the proxy or set its log level.
ALLOWED_ISTIO_ANNOTATIONS = frozenset(
    {
        "sidecar.istio.io/proxyCPU",
        "sidecar.istio.io/proxyCPULimit",
        "sidecar.istio.io/proxyMemory",
        "sidecar.istio.io/proxyMemoryLimit",
        "sidecar.istio.io/logLevel",
        "sidecar.istio.io/componentLogLevel",
    }
)
#: Annotations of reserved domains that change only eviction or kubectl's defaults.
ALLOWED_ANNOTATIONS = ALLOWED_ISTIO_ANNOTATIONS | {
    "cluster-autoscaler.kubernetes.io/safe-to-evict",
    "kubectl.kubernetes.io/default-container",
    "kubectl.kubernetes.io/default-logs-container",
}
#: Downward-API fields an env var may read (fieldRef.fieldPath).
_FIELD_PATH = re.compile(
    r"^(metadata\.(name|namespace|uid)|metadata\.(labels|annotations)\['[^']{1,317}'\]|spec\.(nodeName|serviceAccountName)"
    r"|status\.(hostIP|podIP|podIPs))$"
)


def _reserved_domain(key: str) -> bool:
    domain = key.partition("/")[0].lower() if "/" in key else ""
    return any(domain == d or domain.endswith(f".{d}") for d in RESERVED_DOMAINS) or key.lower().startswith(
        RUNTIME_KEY_PREFIXES
    )


def reserved_label(key: str) -> bool:
    return key in RESERVED_LABELS or key.startswith(RESERVED_LABEL_PREFIXES) or _reserved_domain(key)


def reserved_annotation(key: str) -> bool:
    if key in ALLOWED_ANNOTATIONS:
        return False
    return key.startswith(RESERVED_ANNOTATION_PREFIXES) or _reserved_domain(key)


class KeyRef(ApiModel):
    """A key of a Secret or ConfigMap in the FeatureStore's namespace."""

    name: DnsSubdomain
    """Name of the Secret/ConfigMap (looked up in the FeatureStore's namespace)."""
    key: ConfigKey
    """The key."""
    optional: bool | None = None
    """Start the pod even if it is missing."""


class FieldRef(ApiModel):
    """A field of the pod itself (downward API)."""

    field_path: str = Field(max_length=400)
    """metadata.name, metadata.namespace, metadata.uid, metadata.labels['KEY'], metadata.annotations['KEY'],
    spec.nodeName, spec.serviceAccountName, status.hostIP, status.podIP or status.podIPs."""

    @field_validator("field_path")
    @classmethod
    def _allowed(cls, v: str) -> str:
        if not _FIELD_PATH.match(v):
            raise ValueError(f"{v!r} is not a supported downward-API field")
        return v


class EnvVarSource(ApiModel):
    """Where an env var's value comes from: exactly one source."""

    model_config = {"json_schema_extra": {"minProperties": 1, "maxProperties": 1}}

    secret_key_ref: KeyRef | None = None
    """A key of a Secret in the FeatureStore's namespace."""
    config_map_key_ref: KeyRef | None = None
    """A key of a ConfigMap in the FeatureStore's namespace."""
    field_ref: FieldRef | None = None
    """A field of the pod."""

    @model_validator(mode="after")
    def _one(self) -> EnvVarSource:
        if sum(x is not None for x in (self.secret_key_ref, self.config_map_key_ref, self.field_ref)) != 1:
            raise ValueError("set exactly one of secretKeyRef, configMapKeyRef or fieldRef")
        return self


class EnvVar(ApiModel):
    """An environment variable of the component's main container."""

    name: EnvName
    """Variable name. The operator's own variables (FEAST_FS_YAML_FILE_PATH, REDIS_PASSWORD, ...) are refused."""
    value: str | None = Field(default=None, max_length=32768)
    """Literal value. Put secrets in a Secret and use valueFrom."""
    value_from: EnvVarSource | None = None
    """Value from a Secret or ConfigMap key of the FeatureStore's namespace, or from a pod field."""

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, v: str) -> str:
        if v in RESERVED_ENV:
            raise ValueError(f"{v} is set by the operator and cannot be overridden")
        return v

    @model_validator(mode="after")
    def _value_or_source(self) -> EnvVar:
        if self.value is not None and self.value_from is not None:
            raise ValueError("set value or valueFrom, not both")
        return self


class NameRef(ApiModel):
    """A Secret or ConfigMap in the FeatureStore's namespace."""

    name: DnsSubdomain
    """Its name."""
    optional: bool | None = None
    """Start the pod even if it is missing."""


class EnvFromSource(ApiModel):
    """Every key of a Secret or ConfigMap of the FeatureStore's namespace as env vars."""

    prefix: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    """Prefix of each variable name."""
    config_map_ref: NameRef | None = None
    """The ConfigMap."""
    secret_ref: NameRef | None = None
    """The Secret."""

    @model_validator(mode="after")
    def _one(self) -> EnvFromSource:
        if (self.config_map_ref is None) == (self.secret_ref is None):
            raise ValueError("set exactly one of configMapRef or secretRef")
        return self


class Toleration(ApiModel):
    """A toleration (core/v1 Toleration)."""

    key: QualifiedName | None = None
    """Taint key; empty with operator Exists tolerates everything."""
    operator: Literal["Exists", "Equal"] | None = None
    """Exists or Equal (default Equal)."""
    value: LabelValue | None = None
    """Taint value (operator Equal)."""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    """Taint effect; empty: all effects."""
    toleration_seconds: int | None = Field(default=None, ge=0)
    """NoExecute only: how long the pod stays bound after the taint appears."""


class LabelSelectorRequirement(ApiModel):
    key: QualifiedName
    """Label key."""
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    """In, NotIn, Exists or DoesNotExist."""
    values: list[LabelValue] | None = None
    """Values (In, NotIn)."""


class LabelSelector(ApiModel):
    """A label selector (metav1.LabelSelector)."""

    match_labels: dict[QualifiedName, LabelValue] | None = None
    """Labels the pods must carry."""
    match_expressions: list[LabelSelectorRequirement] | None = None
    """Set-based requirements."""


class TopologySpreadConstraint(ApiModel):
    """How to spread the component's pods across topology domains (core/v1 TopologySpreadConstraint)."""

    max_skew: int = Field(ge=1)
    """Largest allowed difference of pod counts between domains."""
    topology_key: QualifiedName
    """Node label of the domains, e.g. topology.kubernetes.io/zone."""
    when_unsatisfiable: Literal["DoNotSchedule", "ScheduleAnyway"] = "ScheduleAnyway"
    """DoNotSchedule or ScheduleAnyway."""
    label_selector: LabelSelector | None = None
    """Pods counted. Default: this component's pods of this FeatureStore."""


_FREE_FORM: JsonDict = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


class Affinity(ApiModel):
    """Node and pod (anti-)affinity, exactly as core/v1 Affinity (checked by the API server when the
    workload is applied)."""

    node_affinity: dict[str, Any] | None = Field(default=None, json_schema_extra=_FREE_FORM)
    """core/v1 NodeAffinity."""
    pod_affinity: dict[str, Any] | None = Field(default=None, json_schema_extra=_FREE_FORM)
    """core/v1 PodAffinity."""
    pod_anti_affinity: dict[str, Any] | None = Field(default=None, json_schema_extra=_FREE_FORM)
    """core/v1 PodAntiAffinity."""


class SecretName(ApiModel):
    """A Secret of the FeatureStore's namespace."""

    name: DnsSubdomain
    """Its name."""


LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class PodSettings(ApiModel):
    """Scheduling, environment and metadata of one component's pods. Unset fields take the operator's
    defaults for the component (Helm value podDefaults)."""

    env: list[EnvVar] | None = Field(default=None, max_length=100)
    """Extra environment variables of the main container."""
    env_from: list[EnvFromSource] | None = Field(default=None, max_length=20)
    """Secrets/ConfigMaps of the FeatureStore's namespace whose keys become env vars."""
    node_selector: dict[QualifiedName, LabelValue] | None = None
    """Node labels the pods must run on, e.g. {cloud.google.com/gke-nodepool: feast}."""
    tolerations: list[Toleration] | None = Field(default=None, max_length=50)
    """Taints the pods tolerate."""
    affinity: Affinity | None = None
    """Node and pod (anti-)affinity."""
    topology_spread_constraints: list[TopologySpreadConstraint] | None = Field(default=None, max_length=10)
    """Spread of the pods across zones/nodes."""
    annotations: dict[QualifiedName, str] | None = None
    """Extra pod annotations. Istio sidecar switches/traffic, AppArmor/seccomp and featurestore.kubeflow.org/*
    keys are refused."""
    labels: dict[QualifiedName, LabelValue] | None = None
    """Extra pod labels. app.kubernetes.io/*, featurestore.kubeflow.org/*, access-feast-* and
    sidecar.istio.io/inject are the operator's and refused."""
    image_pull_secrets: list[SecretName] | None = Field(default=None, max_length=20)
    """docker-registry Secrets of the FeatureStore's namespace for pulling the images ([{name: ...}])."""
    priority_class_name: DnsSubdomain | None = None
    """PriorityClass of the pods (system-* classes are refused)."""
    log_level: LogLevel | None = None
    """Feast's log level (feast --log-level); Feast containers only."""

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        bad = sorted(k for k in v or {} if reserved_label(k))
        if bad:
            raise ValueError(f"label(s) {', '.join(bad)} are set by the operator and cannot be overridden")
        return v

    @field_validator("annotations")
    @classmethod
    def _annotations(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        bad = sorted(k for k in v or {} if reserved_annotation(k))
        if bad:
            raise ValueError(
                f"annotation(s) {', '.join(bad)} are not allowed: the operator owns them, or they would take the pod "
                "out of the mesh policy or loosen its sandbox"
            )
        return v

    @field_validator("priority_class_name")
    @classmethod
    def _priority(cls, v: str | None) -> str | None:
        if v and v.startswith("system-"):
            raise ValueError(f"{v!r}: system-* priority classes are reserved for cluster components")
        return v


Component = Literal["featureServer", "registryServer", "offlineServer", "ui", "materialization", "apply", "redis"]
COMPONENTS: tuple[Component, ...] = (
    "featureServer",
    "registryServer",
    "offlineServer",
    "ui",
    "materialization",
    "apply",
    "redis",
)


class PodDefaults(ApiModel):
    """Operator-level pod settings (Helm value podDefaults): ``all`` applies to every component,
    then the component's own entry, then the FeatureStore's ``pod``."""

    all: PodSettings = Field(default_factory=PodSettings)
    """Every component."""
    feature_server: PodSettings = Field(default_factory=PodSettings)
    """Feature server."""
    registry_server: PodSettings = Field(default_factory=PodSettings)
    """Registry server."""
    offline_server: PodSettings = Field(default_factory=PodSettings)
    """Offline server."""
    ui: PodSettings = Field(default_factory=PodSettings)
    """Feast UI."""
    materialization: PodSettings = Field(default_factory=PodSettings)
    """Materialization CronJob."""
    apply: PodSettings = Field(default_factory=PodSettings)
    """feast apply Job."""
    redis: PodSettings = Field(default_factory=PodSettings)
    """In-cluster Redis."""

    def for_component(self, component: Component) -> list[PodSettings]:
        attr = {
            "featureServer": "feature_server",
            "registryServer": "registry_server",
            "offlineServer": "offline_server",
        }.get(component, component)
        return [self.all, getattr(self, attr)]
