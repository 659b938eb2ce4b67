"""The spec fields that cannot change on an existing store: ONE table, read by

- admission (``api/review.py``: the webhook refuses such a change at ``kubectl apply``, and the
  ``validate`` CLI); Kubernetes 1.20 has no CEL (``x-kubernetes-validations``), so the webhook is
  where a change is refused;
- the backends, when a change slipped through (webhook down or bypassed): the resource keeps serving
  as it is and the part's condition says ``ImmutableFieldChanged`` naming the field
  (``backends/memorystore.py``, ``backends/gcs.py``);
- the CRD's and the generated reference's field descriptions (``api/crd.py`` appends the note).

Each row: the field's path in the spec, the section it belongs to, how to read (and normalise) its
value from that section, and why it cannot change. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .spec import FeatureStoreSpec, GcsSpec, MemorystoreSpec

MEMORYSTORE = "spec.onlineStore.memorystore"
GCS = "spec.offlineStore.gcs"


def network_form(value: str | None) -> str:
    """A VPC network by its ``projects/P/global/networks/N`` form (the API may answer a full URL)."""
    v = (value or "").strip()
    i = v.find("projects/")
    return v[i:] if i > 0 else v


@dataclass(frozen=True)
class Immutable:
    section: str
    field: str
    #: the value of this field in the section's spec model (resolved spec), normalised for comparison
    read: Callable[[Any], object]
    why: str

    @property
    def path(self) -> str:
        return f"{self.section}.{self.field}"

    def norm(self, value: object) -> object:
        """A value as the backend observed it, in the form ``read`` gives (None: unknown)."""
        if value is None or value == "":
            return None
        if self.field == "network":
            return network_form(str(value))
        if self.field == "location":
            return str(value).upper()
        return value


IMMUTABLE: tuple[Immutable, ...] = (
    Immutable(MEMORYSTORE, "tier", lambda ms: ms.tier.value, "Memorystore has no in-place tier change"),
    Immutable(
        MEMORYSTORE, "connectMode", lambda ms: ms.connect_mode.value, "fixed when the instance attaches to the VPC"
    ),
    Immutable(MEMORYSTORE, "network", lambda ms: network_form(ms.network), "fixed when the instance is created"),
    Immutable(MEMORYSTORE, "transitEncryption", lambda ms: ms.transit_encryption, "fixed when the instance is created"),
    Immutable(
        MEMORYSTORE, "authEnabled", lambda ms: ms.auth_enabled, "the operator does not switch AUTH on a live instance"
    ),
    Immutable(
        MEMORYSTORE, "redisVersion", lambda ms: ms.redis_version, "the operator does not upgrade a live instance"
    ),
    Immutable(GCS, "location", lambda gcs: gcs.location.upper(), "a bucket never moves"),
)


def rows(section: str) -> tuple[Immutable, ...]:
    return tuple(r for r in IMMUTABLE if r.section == section)


def description(path: str) -> str | None:
    """The note the CRD and the reference append to ``path``'s description (None: mutable)."""
    for r in IMMUTABLE:
        if r.path == path:
            return f"Immutable: a change is refused at admission ({r.why}); create a new FeatureStore instead."
    return None


def _show(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def differences(section: str, want: Any, have: Mapping[str, object]) -> list[tuple[str, str, str]]:
    """(path, have, want) for every immutable field of ``section`` where the spec model ``want``
    differs from ``have`` (field -> value, already normalised; a field absent, None or "" is unknown
    and not compared)."""
    out = []
    for r in rows(section):
        if r.field not in have or have[r.field] in (None, ""):
            continue
        new = r.read(want)
        if new in (None, ""):
            continue
        if have[r.field] != new:
            out.append((r.path, _show(have[r.field]), _show(new)))
    return out


def _sections(spec: FeatureStoreSpec) -> dict[str, MemorystoreSpec | GcsSpec | None]:
    ms = spec.online_store.memorystore if spec.online_store else None
    gcs = spec.offline_store.gcs if spec.offline_store else None
    return {
        MEMORYSTORE: ms if ms and not ms.existing_instance else None,
        GCS: gcs if gcs and not gcs.existing_bucket else None,
    }


def changes(old: FeatureStoreSpec, new: FeatureStoreSpec) -> list[tuple[str, str, str]]:
    """(path, was, now) for every immutable field changed from ``old`` to ``new`` (both resolved).
    A section that is (or was) bring-your-own, or a bucket that was renamed, is a new resource:
    nothing to compare."""
    before, after = _sections(old), _sections(new)
    out = []
    for section, was in before.items():
        now = after[section]
        if was is None or now is None:
            continue
        if isinstance(was, GcsSpec) and isinstance(now, GcsSpec) and was.bucket != now.bucket:
            continue
        out += differences(section, now, {r.field: r.read(was) for r in rows(section)})
    return out
