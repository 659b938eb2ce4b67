"""The admin policy: what a namespace editor's FeatureStore may ask for. Pure.

A namespace editor may create FeatureStores and must get a feature store, never more. Every spec
field is hostile input; the policy bounds what the operator does on its behalf:

* GCP placement: projects, regions and VPC networks (default: the operator's own project, region
  and network);
* identity: which Google service accounts (GSAs) a namespace may bind, as patterns with
  ``{namespace}`` and ``{project}`` (default only ``feast-{namespace}@<operator project>.iam.
  gserviceaccount.com``); the operator's own GSA never; no GSA at all on provider local;
* cost: Memorystore tiers and size, replicas of every server;
* images: allowed prefixes (the operator's configured images are always allowed);
* namespaces where no FeatureStore may live (system namespaces);
* Feast authorization: whether every store must authenticate its callers (``authz.required``).

:func:`check` is the one place these rules are applied; the admission webhook, the ``validate``
CLI and the operator's reconcile all call it, on the spec *resolved* against the operator config.
Each problem is ``(field path, message)`` and the message names the rule and the fix.

Configured as ``FSO_POLICY`` (JSON or YAML) or ``FSO_POLICY_FILE``; chart value ``policy``.
"""

from __future__ import annotations

import fnmatch
import re
from typing import TYPE_CHECKING

from pydantic import Field

from .base import ApiModel
from .bounds import CostBounds, check_bounds
from .spec import GSA_EMAIL_PATTERN, AuthzType, MemorystoreTier, Provider

if TYPE_CHECKING:
    from .resource import FeatureStore

NAMESPACE_PLACEHOLDER = "{namespace}"
PROJECT_PLACEHOLDER = "{project}"
DEFAULT_SERVICE_ACCOUNT_PATTERN = "feast-{namespace}@{project}.iam.gserviceaccount.com"
DEFAULT_EXCLUDED_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")

Problem = tuple[str, str]


class AuthzPolicy(ApiModel):
    """Feast authorization the admin demands of every store."""

    required: bool = False
    """Refuse stores with spec.authz.type none: on a cluster shared by teams, every Feast server
    then checks who calls it (network policies alone admit every pod of the namespace)."""


class AdminPolicy(CostBounds):
    """Limits on what a FeatureStore may ask for. Empty lists take the defaults named per field.
    The cost and size knobs (maxComputePods, maxPodResources, maxStoreResources, maxVolumeSize,
    maxStoresPerNamespace, maxFreeFormBytes, maxSpecBytes) are CostBounds' (api/bounds.py)."""

    allowed_projects: list[str] = Field(default_factory=list)
    """GCP project ids stores may use. Empty: only the operator's gcpProject."""
    allowed_regions: list[str] = Field(default_factory=list)
    """GCP regions of Memorystore instances. Empty: only the operator's gcpRegion."""
    allowed_networks: list[str] = Field(default_factory=list)
    """VPC networks (projects/P/global/networks/N, * wildcards) Memorystore may attach to. Empty:
    only the operator's gcpNetwork (or the default network of its project)."""
    service_account_patterns: list[str] = Field(default_factory=list)
    """GSAs a namespace may bind through Workload Identity: patterns with {namespace}, {project}
    (each allowed project) and * wildcards. Empty: feast-{namespace}@{project}.iam.gserviceaccount.com."""
    denied_service_accounts: list[str] = Field(default_factory=list)
    """GSAs never bound (* wildcards), besides the operator's own (always denied)."""
    allowed_memorystore_tiers: list[MemorystoreTier] = Field(
        default_factory=lambda: [MemorystoreTier.BASIC, MemorystoreTier.STANDARD_HA]
    )
    """Memorystore tiers stores may use."""
    max_memorystore_size_gb: int = Field(default=32, ge=1, le=300)
    """Largest Memorystore instance (GiB)."""
    max_replicas: int = Field(default=20, ge=1, le=100)
    """Most replicas of any server (feature, registry, offline, UI), autoscaling bounds included."""
    allowed_image_prefixes: list[str] = Field(default_factory=list)
    """Image prefixes every image field may use (spec.images, compute engine images), e.g.
    europe-docker.pkg.dev/my-project/feast/. A prefix not ending in /, : or @ names a whole repository
    and matches only up to one of those (gcr.io/team admits gcr.io/team/x, never gcr.io/team-evil/x).
    The operator's configured images are always allowed. Empty: only those."""
    excluded_namespaces: list[str] = Field(default_factory=lambda: list(DEFAULT_EXCLUDED_NAMESPACES))
    """Namespaces (* wildcards) where FeatureStores are refused (system namespaces)."""
    allow_byo: bool = True
    """Allow existingBucket/existingInstance (bring your own), still within the projects above."""
    authz: AuthzPolicy = Field(default_factory=AuthzPolicy)
    """Feast authorization every store must use."""


class EffectivePolicy(ApiModel):
    """An AdminPolicy with the operator's defaults filled in (see OperatorConfig.effective_policy)."""

    projects: list[str]
    regions: list[str]
    networks: list[str]
    service_account_patterns: list[str]
    denied_service_accounts: list[str]
    memorystore_tiers: list[MemorystoreTier]
    max_memorystore_size_gb: int
    max_replicas: int
    image_prefixes: list[str]
    excluded_namespaces: list[str]
    allow_byo: bool
    authz_required: bool
    # --- cost and size bounds (api/bounds.py) ---
    bounds: CostBounds


def effective(
    policy: AdminPolicy,
    *,
    project: str | None,
    region: str | None,
    network: str | None,
    operator_service_account: str | None,
    images: list[str],
) -> EffectivePolicy:
    """Fill the policy's empty lists from the operator's own settings."""
    projects = policy.allowed_projects or ([project] if project else [])
    networks = policy.allowed_networks or (
        [network] if network else [f"projects/{p}/global/networks/default" for p in projects]
    )
    denied = list(policy.denied_service_accounts)
    if operator_service_account:
        denied.append(operator_service_account)
    return EffectivePolicy(
        projects=projects,
        regions=policy.allowed_regions or ([region] if region else []),
        networks=networks,
        service_account_patterns=policy.service_account_patterns or [DEFAULT_SERVICE_ACCOUNT_PATTERN],
        denied_service_accounts=denied,
        memorystore_tiers=policy.allowed_memorystore_tiers,
        max_memorystore_size_gb=policy.max_memorystore_size_gb,
        max_replicas=policy.max_replicas,
        image_prefixes=[*images, *policy.allowed_image_prefixes],
        excluded_namespaces=policy.excluded_namespaces,
        allow_byo=policy.allow_byo,
        authz_required=policy.authz.required,
        bounds=CostBounds.model_validate(policy.model_dump(include=set(CostBounds.model_fields))),
    )


def _match(value: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)


def allowed_service_accounts(policy: EffectivePolicy, namespace: str) -> list[str]:
    """The GSA patterns of ``namespace`` with {namespace} and {project} filled in."""
    out = []
    for pattern in policy.service_account_patterns:
        pattern = pattern.replace(NAMESPACE_PLACEHOLDER, namespace)
        if PROJECT_PLACEHOLDER in pattern:
            out += [pattern.replace(PROJECT_PLACEHOLDER, p) for p in policy.projects]
        else:
            out.append(pattern)
    return out


def _listed(values: list[str]) -> str:
    return ", ".join(values) if values else "(none: the operator has no default configured)"


def _namespace(fs: FeatureStore, policy: EffectivePolicy) -> list[Problem]:
    ns = fs.metadata.namespace
    if _match(ns, policy.excluded_namespaces):
        return [
            (
                "metadata.namespace",
                f"namespace {ns} is excluded by the admin policy (excludedNamespaces: "
                f"{_listed(policy.excluded_namespaces)}); create the FeatureStore in a user or profile namespace",
            )
        ]
    return []


def _placement(fs: FeatureStore, policy: EffectivePolicy) -> list[Problem]:
    spec = fs.spec
    ms = spec.online_store.memorystore if spec.online_store else None
    gcs = spec.offline_store.gcs if spec.offline_store else None
    if ms is None and gcs is None:
        return []
    problems: list[Problem] = []
    project = spec.gcp.project
    if project and project not in policy.projects:
        problems.append(
            (
                "spec.gcp.project",
                f"project {project} is not allowed by the admin policy (allowedProjects: "
                f"{_listed(policy.projects)}); remove spec.gcp.project to use the operator's project",
            )
        )
    if ms is not None:
        region = spec.gcp.region
        if region and region not in policy.regions:
            problems.append(
                (
                    "spec.gcp.region",
                    f"region {region} is not allowed by the admin policy (allowedRegions: "
                    f"{_listed(policy.regions)}); remove spec.gcp.region to use the operator's region",
                )
            )
        if ms.network and not _match(ms.network, policy.networks):
            problems.append(
                (
                    "spec.onlineStore.memorystore.network",
                    f"network {ms.network} is not allowed by the "
                    f"admin policy (allowedNetworks: {_listed(policy.networks)}); remove the field to use "
                    f"the operator's network",
                )
            )
    return problems


def _identity(fs: FeatureStore, policy: EffectivePolicy) -> list[Problem]:
    gsa = fs.spec.gcp.service_account
    if not gsa:
        return []
    field = "spec.gcp.serviceAccount"
    if fs.spec.provider is Provider.LOCAL:
        return [
            (
                field,
                "provider local binds no Google service account (the admin policy grants Workload Identity "
                "only to provider gcp); remove spec.gcp.serviceAccount",
            )
        ]
    if _match(gsa, policy.denied_service_accounts):
        return [
            (
                field,
                f"{gsa} may never be bound (deniedServiceAccounts, which always holds the operator's own "
                f"service account); use {_listed(allowed_service_accounts(policy, fs.metadata.namespace))}",
            )
        ]
    allowed = allowed_service_accounts(policy, fs.metadata.namespace)
    if not _match(gsa, allowed):
        # a name GCP cannot hold is no advice: feast-{namespace} of a namespace over 24 characters
        possible = [a for a in allowed if "*" in a or re.match(GSA_EMAIL_PATTERN, a)]
        use = (
            f"use {_listed(possible)}, or ask the admin to allow it"
            if possible
            else f"the policy allows only {_listed(allowed)}, which GCP cannot create (an account id has at most "
            "30 characters): ask the admin to set serviceAccountPatterns (Helm value policy.serviceAccountPatterns)"
        )
        return [
            (
                field,
                f"{gsa} is not allowed in namespace {fs.metadata.namespace} by the admin policy "
                f"(serviceAccountPatterns); {use}",
            )
        ]
    return []


def _ceilings(fs: FeatureStore, policy: EffectivePolicy) -> list[Problem]:
    spec = fs.spec
    problems: list[Problem] = []
    ms = spec.online_store.memorystore if spec.online_store else None
    if ms is not None and (ms.existing_instance is None):
        field = "spec.onlineStore.memorystore"
        if ms.tier not in policy.memorystore_tiers:
            problems.append(
                (
                    f"{field}.tier",
                    f"tier {ms.tier.value} is not allowed by the admin policy "
                    f"(allowedMemorystoreTiers: {', '.join(t.value for t in policy.memorystore_tiers)})",
                )
            )
        if ms.memory_size_gb > policy.max_memorystore_size_gb:
            problems.append(
                (
                    f"{field}.memorySizeGb",
                    f"{ms.memory_size_gb} GB exceeds the admin policy's "
                    f"maxMemorystoreSizeGb {policy.max_memorystore_size_gb}; ask for at most that",
                )
            )
    return problems


def _byo(fs: FeatureStore, policy: EffectivePolicy) -> list[Problem]:
    if policy.allow_byo:
        return []
    spec = fs.spec
    problems: list[Problem] = []
    if spec.online_store and spec.online_store.memorystore and spec.online_store.memorystore.existing_instance:
        problems.append(
            (
                "spec.onlineStore.memorystore.existingInstance",
                "bring-your-own instances are disabled by the admin policy (allowByo: false); remove the field",
            )
        )
    if spec.offline_store and spec.offline_store.gcs and spec.offline_store.gcs.existing_bucket:
        problems.append(
            (
                "spec.offlineStore.gcs.existingBucket",
                "bring-your-own buckets are disabled by the admin policy (allowByo: false); remove the field",
            )
        )
    return problems


def _authz(fs: FeatureStore, policy: EffectivePolicy) -> list[Problem]:
    if not policy.authz_required or fs.spec.authz.type is not AuthzType.NONE:
        return []
    return [
        (
            "spec.authz.type",
            "the admin policy requires Feast authorization on every store (authz.required); set spec.authz.type "
            "to kubernetes (callers present their ServiceAccount token) or oidc",
        )
    ]


# replicas, images and every other cost and size bound: api/bounds.py (generic over the spec tree)
RULES = (_namespace, _placement, _identity, _ceilings, check_bounds, _byo, _authz)


def check(fs: FeatureStore, policy: EffectivePolicy) -> list[Problem]:
    """Every way ``fs`` (its spec resolved against the operator config) breaks ``policy``; [] when none."""
    return [p for rule in RULES for p in rule(fs, policy)]


def immutable_changes(old: FeatureStore, new: FeatureStore) -> list[Problem]:
    """Fields that cannot change on an existing store (both specs resolved). Pure."""
    problems: list[Problem] = []

    def pair(path: str, a: object, b: object) -> None:
        if a != b:
            problems.append(
                (path, f"cannot be changed after creation (was {a}, now {b}); revert it, or create a new FeatureStore")
            )

    o_ms = old.spec.online_store.memorystore if old.spec.online_store else None
    n_ms = new.spec.online_store.memorystore if new.spec.online_store else None
    if o_ms and n_ms and o_ms.existing_instance is None and n_ms.existing_instance is None:
        base = "spec.onlineStore.memorystore"
        pair(f"{base}.tier", o_ms.tier.value, n_ms.tier.value)
        pair(f"{base}.connectMode", o_ms.connect_mode.value, n_ms.connect_mode.value)
        pair(f"{base}.network", o_ms.network, n_ms.network)
        pair(f"{base}.transitEncryption", o_ms.transit_encryption, n_ms.transit_encryption)
    o_gcs = old.spec.offline_store.gcs if old.spec.offline_store else None
    n_gcs = new.spec.offline_store.gcs if new.spec.offline_store else None
    if o_gcs and n_gcs and o_gcs.bucket == n_gcs.bucket and not n_gcs.existing_bucket:
        pair("spec.offlineStore.gcs.location", o_gcs.location.upper(), n_gcs.location.upper())
    return problems
