"""The admin policy: what a namespace editor's FeatureStore may ask for. Pure.

A namespace editor may create FeatureStores and must get a feature store, never more. Every spec
field is hostile input; the policy bounds what the operator does on its behalf:

* GCP placement: projects, regions and VPC networks (default: the operator's own project, region
  and network);
* identity: which Google service accounts (GSAs) a namespace may bind, as patterns with
  ``{namespace}``, ``{accountId}`` and ``{project}`` (default only ``{accountId}@<operator project>.iam.
  gserviceaccount.com``, see :func:`account_id`); the operator's own GSA never; no GSA at all on
  provider local;
* cost: Memorystore tiers and size, replicas of every server;
* images: allowed prefixes (the operator's configured images are always allowed);
* namespaces where no FeatureStore may live (system namespaces);
* Feast authorization: whether every store must authenticate its callers (``authz.required``);
* bring your own (``byoAssignments``): the cloud resources the operator did not create that a
  namespace may use; none by default (docs/security/bring-your-own.md);
* custom cloud names (``customNamePatterns``): ``instanceId``/``bucket`` confined to the namespace;
* Memorystore AUTH and TLS (``memorystoreSecurity``), required by default.

:func:`check` is the one place these rules are applied; the admission webhook, the ``validate``
CLI and the operator's reconcile all call it, on the spec *resolved* against the operator config.
Each problem is ``(field path, message)`` and the message names the rule and the fix.

Configured as ``FSO_POLICY`` (JSON or YAML) or ``FSO_POLICY_FILE``; chart value ``policy``.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import re
from typing import TYPE_CHECKING, Annotated

from pydantic import Field, StringConstraints

from . import immutable
from .base import ApiModel
from .bounds import CostBounds, check_bounds
from .spec import GSA_EMAIL_PATTERN, AuthzType, MemorystoreTier, Provider

if TYPE_CHECKING:
    from .resource import FeatureStore

NAMESPACE_PLACEHOLDER = "{namespace}"
ACCOUNT_ID_PLACEHOLDER = "{accountId}"
PROJECT_PLACEHOLDER = "{project}"
DEFAULT_SERVICE_ACCOUNT_PATTERN = "{accountId}@{project}.iam.gserviceaccount.com"
#: GCP service account ids: 6-30 characters, [a-z][a-z0-9-]*[a-z0-9]
ACCOUNT_ID_MAX = 30
#: namespace characters kept in a hashed account id (readability only; the hash identifies)
ACCOUNT_ID_HEAD = 7
DEFAULT_EXCLUDED_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")

Problem = tuple[str, str]
#: A byoAssignments instance entry: the full resource name (wildcards allowed), never a bare id.
INSTANCE_ENTRY_PATTERN = r"^projects/[^/]+/locations/[^/]+/instances/[^/]+$"


class AuthzPolicy(ApiModel):
    """Feast authorization the admin demands of every store."""

    required: bool = False
    """Refuse stores with spec.authz.type none: on a cluster shared by teams, every Feast server
    then checks who calls it (network policies alone admit every pod of the namespace)."""


class ByoAssignment(ApiModel):
    """Cloud resources the operator did not create that the namespaces of one byoAssignments key may use.
    Entries take * wildcards and {namespace} (the FeatureStore's namespace)."""

    instances: list[Annotated[str, StringConstraints(pattern=INSTANCE_ENTRY_PATTERN)]] = Field(default_factory=list)
    """Memorystore instances as projects/PROJECT/locations/REGION/instances/ID."""
    buckets: list[Annotated[str, StringConstraints(min_length=1)]] = Field(default_factory=list)
    """GCS bucket names."""


class CustomNamePatterns(ApiModel):
    """Custom names (spec instanceId/bucket) a namespace may choose besides its own prefix. Patterns take
    * wildcards, {namespace} and {project}. A derived name (another store's) is refused whatever matches."""

    instances: list[str] = Field(default_factory=list)
    """Patterns of spec.onlineStore.memorystore.instanceId."""
    buckets: list[str] = Field(default_factory=list)
    """Patterns of spec.offlineStore.gcs.bucket."""


class MemorystoreSecurity(ApiModel):
    """What every Memorystore instance a store uses must have (created or brought)."""

    require_auth: bool = True
    """Refuse instances without the Redis AUTH string (spec authEnabled false, or an existingInstance
    without AUTH)."""
    require_tls: bool = True
    """Refuse instances without in-transit encryption (spec transitEncryption false, or an
    existingInstance without SERVER_AUTHENTICATION)."""


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
    (each allowed project), {accountId} (:func:`account_id`: a GSA id valid for every namespace) and *
    wildcards. Empty: {accountId}@{project}.iam.gserviceaccount.com."""
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
    """Allow existingBucket/existingInstance (bring your own) at all; each resource must also be
    assigned to the namespace in byoAssignments (false: refused even when assigned)."""
    authz: AuthzPolicy = Field(default_factory=AuthzPolicy)
    """Feast authorization every store must use."""
    byo_assignments: dict[str, ByoAssignment] = Field(default_factory=dict)
    """Namespace (or * pattern) -> the existing instances and buckets its stores may use. Empty: no
    namespace may use any (the operator would otherwise copy credentials of resources it did not create)."""
    custom_name_patterns: CustomNamePatterns = Field(default_factory=CustomNamePatterns)
    """Custom instanceId/bucket names allowed besides the namespace's own prefix (n<len>-<namespace>- for
    instances, <namespace>_ for buckets)."""
    memorystore_security: MemorystoreSecurity = Field(default_factory=MemorystoreSecurity)
    """Memorystore AUTH and TLS every store must use (both required by default)."""
    notebook_bucket_read: bool = True
    """Grant roles/storage.objectViewer on each store's bucket to the Google service account of its
    namespace's default-editor (notebooks, pipelines), when serviceAccountPatterns allow that GSA for the
    namespace (docs/notebooks.md). false: no grant (notebooks then read through the store's servers)."""


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
    # bring your own, custom names, Memorystore AUTH/TLS (issue 25; see _byo, _custom_names, _memorystore_security)
    byo_assignments: dict[str, ByoAssignment] = Field(default_factory=dict)
    custom_name_patterns: CustomNamePatterns = Field(default_factory=CustomNamePatterns)
    memorystore_security: MemorystoreSecurity = Field(default_factory=MemorystoreSecurity)
    notebook_bucket_read: bool = True
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
        byo_assignments=policy.byo_assignments,
        custom_name_patterns=policy.custom_name_patterns,
        memorystore_security=policy.memorystore_security,
        notebook_bucket_read=policy.notebook_bucket_read,
        bounds=CostBounds.model_validate(policy.model_dump(include=set(CostBounds.model_fields))),
    )


def _match(value: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)


def account_id(namespace: str) -> str:
    """The GSA account id of ``namespace`` (``{accountId}``): valid for EVERY namespace (a DNS label of
    up to 63 characters), deterministic, and never the same for two namespaces.

    ``feast-<namespace>`` while that has at most 29 characters (namespaces up to 23 characters), else
    ``feast-<first 7 characters, trailing '-' dropped>-<base32 of sha256(namespace)>``, cut to exactly
    30 characters (16 to 22 hash characters: at least 80 bits). The two forms never meet (29 vs 30
    characters), so no short namespace can be named to land on a long namespace's GSA."""
    plain = f"feast-{namespace}"
    if len(plain) < ACCOUNT_ID_MAX:
        return plain
    head = namespace[:ACCOUNT_ID_HEAD].rstrip("-")
    digest = base64.b32encode(hashlib.sha256(namespace.encode()).digest()).decode().lower()
    return f"feast-{head}-{digest[: ACCOUNT_ID_MAX - len('feast--') - len(head)]}"


def allowed_service_accounts(policy: EffectivePolicy, namespace: str) -> list[str]:
    """The GSA patterns of ``namespace`` with {namespace}, {accountId} and {project} filled in."""
    out = []
    for pattern in policy.service_account_patterns:
        pattern = pattern.replace(NAMESPACE_PLACEHOLDER, namespace).replace(
            ACCOUNT_ID_PLACEHOLDER, account_id(namespace)
        )
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
        # a name GCP cannot hold is no advice: an admin's feast-{namespace} of a namespace over 24 characters
        possible = [a for a in allowed if "*" in a or re.match(GSA_EMAIL_PATTERN, a)]
        use = (
            f"use {_listed(possible)}, or ask the admin to allow it"
            if possible
            else f"the policy allows only {_listed(allowed)}, which GCP cannot create (an account id has at most "
            "30 characters): ask the admin to use {accountId} in serviceAccountPatterns (Helm value "
            "policy.serviceAccountPatterns)"
        )
        return [
            (
                field,
                f"{gsa} is not allowed in namespace {fs.metadata.namespace} by the admin policy "
                f"(serviceAccountPatterns); {use}",
            )
        ]
    return []


def notebook_gsa_problem(policy: EffectivePolicy, namespace: str, gsa: str) -> str | None:
    """Why the GSA a namespace's ``default-editor`` is annotated with may NOT read that namespace's
    buckets (None: it may). The annotation is tenant-writable, so it gets the same rule as
    spec.gcp.serviceAccount: only a GSA the admin's serviceAccountPatterns give this namespace, never a
    denied one (the operator's own), never a GSA shared with other namespaces (e.g. Kubeflow's one
    kf-user GSA for every profile, which would let every profile read every store)."""
    if not policy.notebook_bucket_read:
        return "the admin policy turns notebook bucket read off (policy.notebookBucketRead: false)"
    if not re.fullmatch(GSA_EMAIL_PATTERN, gsa):
        return f"{gsa!r} is not a Google service account email"
    if _match(gsa, policy.denied_service_accounts):
        return f"{gsa} may never be granted anything (deniedServiceAccounts)"
    if not _match(gsa, allowed_service_accounts(policy, namespace)):
        return (
            f"{gsa} is not a GSA of namespace {namespace} by the admin policy (serviceAccountPatterns: "
            f"{_listed(allowed_service_accounts(policy, namespace))})"
        )
    return None


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


# --- bring your own, custom names, Memorystore AUTH/TLS (issue 25) ---------------------------------


def instance_resource(fs: FeatureStore, instance_id: str) -> str:
    """projects/P/locations/L/instances/ID of ``instance_id`` in the store's (resolved) project and region."""
    return f"projects/{fs.spec.gcp.project}/locations/{fs.spec.gcp.region}/instances/{instance_id}"


def byo_assigned(policy: EffectivePolicy, namespace: str, kind: str, resource: str) -> bool:
    """Whether the admin assigned ``resource`` (kind "instances" or "buckets") to ``namespace``: some
    byoAssignments key matches the namespace and one of its entries ({namespace} filled in) the resource."""
    for key, assignment in policy.byo_assignments.items():
        if fnmatch.fnmatchcase(namespace, key):
            entries = [e.replace(NAMESPACE_PLACEHOLDER, namespace) for e in getattr(assignment, kind)]
            if _match(resource, entries):
                return True
    return False


def byo_problems(fs: FeatureStore, policy: EffectivePolicy) -> list[Problem]:
    """existingInstance/existingBucket the admin did not assign to the store's namespace. The backends ask
    this again right before they read a credential of the resource (backends/policy.py)."""
    spec, ns = fs.spec, fs.metadata.namespace
    ms = spec.online_store.memorystore if spec.online_store else None
    gcs = spec.offline_store.gcs if spec.offline_store else None
    wanted = []
    if ms and ms.existing_instance:
        wanted.append(
            (
                "spec.onlineStore.memorystore.existingInstance",
                "instances",
                "instance",
                instance_resource(fs, ms.existing_instance),
            )
        )
    if gcs and gcs.existing_bucket:
        wanted.append(("spec.offlineStore.gcs.existingBucket", "buckets", "bucket", gcs.existing_bucket))
    problems: list[Problem] = []
    for field, kind, what, resource in wanted:
        if not policy.allow_byo:
            problems.append(
                (field, f"bring-your-own {what}s are disabled by the admin policy (allowByo: false); remove the field")
            )
        elif not byo_assigned(policy, ns, kind, resource):
            problems.append(
                (
                    field,
                    f"{what} {resource} is not assigned to namespace {ns} by the admin policy (byoAssignments); "
                    f"remove the field to let the operator create one, or ask the admin to add it to "
                    f"policy.byoAssignments[{ns}].{kind}",
                )
            )
    return problems


def _byo(fs: FeatureStore, policy: EffectivePolicy) -> list[Problem]:
    return byo_problems(fs, policy)


#: Every id backends/naming.py derives starts with this; a custom id never may.
DERIVED_INSTANCE_PREFIX = "fs-"


def derived_bucket_prefix(project: str) -> str:
    """Every bucket name backends/naming.py derives in ``project`` starts with this; a custom one never may."""
    return f"{project}-feast-"


def instance_prefix(namespace: str) -> str:
    """The custom Memorystore ids of ``namespace`` start with n<len>-<namespace>-. The length makes the
    prefixes of two namespaces never prefixes of each other (team-a cannot take team-a-b's names), and
    derived ids start with fs-, so no custom id is ever another store's derived one."""
    return f"n{len(namespace)}-{namespace}-"


def bucket_prefix(namespace: str) -> str:
    """The custom bucket names of ``namespace`` start with <namespace>_: namespaces never hold _, so the
    namespace is what comes before the first _; derived bucket names never hold _ either."""
    return f"{namespace}_"


def _pattern_match(value: str, patterns: list[str], namespace: str, projects: list[str]) -> bool:
    filled = []
    for pattern in patterns:
        pattern = pattern.replace(NAMESPACE_PLACEHOLDER, namespace)
        filled += (
            [pattern.replace(PROJECT_PLACEHOLDER, p) for p in projects] if PROJECT_PLACEHOLDER in pattern else [pattern]
        )
    return _match(value, filled)


def _custom_names(fs: FeatureStore, policy: EffectivePolicy) -> list[Problem]:
    """instanceId and bucket (custom names of resources the operator creates) confined to the namespace:
    its own prefix or an admin pattern, and never the shape of a derived name (another store's)."""
    spec, ns = fs.spec, fs.metadata.namespace
    ms = spec.online_store.memorystore if spec.online_store else None
    gcs = spec.offline_store.gcs if spec.offline_store else None
    wanted = []
    if ms and ms.instance_id:
        derived = ms.instance_id.startswith(DERIVED_INSTANCE_PREFIX)
        wanted.append(
            (
                "spec.onlineStore.memorystore.instanceId",
                ms.instance_id,
                instance_prefix(ns),
                policy.custom_name_patterns.instances,
                "instances",
                derived,
            )
        )
    if gcs and gcs.bucket:
        projects = {*policy.projects, spec.gcp.project or ""} - {""}
        derived = any(gcs.bucket.startswith(derived_bucket_prefix(p)) for p in projects)
        wanted.append(
            (
                "spec.offlineStore.gcs.bucket",
                gcs.bucket,
                bucket_prefix(ns),
                policy.custom_name_patterns.buckets,
                "buckets",
                derived,
            )
        )
    problems: list[Problem] = []
    for field, name, prefix, patterns, kind, derived in wanted:
        if derived:
            problems.append(
                (
                    field,
                    f"{name} has the shape of a name the operator derives for FeatureStores (another store's); "
                    f"start it with {prefix}, or remove the field to use this store's derived name",
                )
            )
        elif not name.startswith(prefix) and not _pattern_match(name, patterns, ns, policy.projects):
            problems.append((field, _outside(name, ns, prefix, patterns, kind)))
    return problems


#: Longest Memorystore instance id and bucket name (GCP): a namespace prefix this long leaves no room.
NAME_MAX = {"instances": 40, "buckets": 63}


def _outside(name: str, ns: str, prefix: str, patterns: list[str], kind: str) -> str:
    """The refusal of a custom name outside the namespace's names, with the ways out."""
    ask = f"ask the admin for a pattern (policy.customNamePatterns.{kind})"
    if len(prefix) >= NAME_MAX[kind]:
        return (
            f"{name} is outside namespace {ns}'s names, and the namespace is too long for its own prefix "
            f"({prefix} leaves no room in a name of at most {NAME_MAX[kind]} characters): remove the "
            f"field to use the derived name, or {ask}"
        )
    allowed = f" or match {', '.join(patterns)}" if patterns else ""
    return (
        f"{name} is outside namespace {ns}'s names: start it with {prefix}{allowed} (e.g. {prefix}feast), "
        f"remove the field to use the derived name, or {ask}"
    )


def _memorystore_security(fs: FeatureStore, policy: EffectivePolicy) -> list[Problem]:
    """AUTH and TLS of a Memorystore the operator creates (an existingInstance is checked by the backend,
    which reads the instance: :func:`memorystore_security_problems`)."""
    ms = fs.spec.online_store.memorystore if fs.spec.online_store else None
    if ms is None or ms.existing_instance:
        return []
    return memorystore_security_problems(policy, auth=ms.auth_enabled, tls=ms.transit_encryption, existing=False)


def memorystore_security_problems(policy: EffectivePolicy, *, auth: bool, tls: bool, existing: bool) -> list[Problem]:
    """Problems of a Memorystore with (or asking for) ``auth``/``tls`` under memorystoreSecurity."""
    sec = policy.memorystore_security
    base = "spec.onlineStore.memorystore"
    problems: list[Problem] = []
    for required, have, field, knob, what in (
        (sec.require_auth, auth, "authEnabled", "requireAuth", "the Redis AUTH string"),
        (sec.require_tls, tls, "transitEncryption", "requireTls", "TLS (in-transit encryption)"),
    ):
        if required and not have:
            fix = (
                f"enable {what} on the instance, or use another"
                if existing
                else f"remove {base}.{field} (default true) or set it to true"
            )
            problems.append(
                (
                    f"{base}.existingInstance" if existing else f"{base}.{field}",
                    f"the admin policy requires {what} on every Memorystore (memorystoreSecurity.{knob}); {fix}",
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
RULES = (_namespace, _placement, _identity, _ceilings, check_bounds, _byo, _authz, _custom_names, _memorystore_security)


def check(fs: FeatureStore, policy: EffectivePolicy) -> list[Problem]:
    """Every way ``fs`` (its spec resolved against the operator config) breaks ``policy``; [] when none."""
    return [p for rule in RULES for p in rule(fs, policy)]


def immutable_changes(old: FeatureStore, new: FeatureStore) -> list[Problem]:
    """Fields that cannot change on an existing store (both specs resolved; the table: api/immutable.py). Pure."""
    return [
        (path, f"cannot be changed after creation (was {was}, now {now}); revert it, or create a new FeatureStore")
        for path, was, now in immutable.changes(old.spec, new.spec)
    ]
