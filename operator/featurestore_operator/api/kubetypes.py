"""Kubernetes value types the spec models share (``spec``, ``compute``): quantities, resource names,
image references and container resource requirements."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

from .base import ApiModel
from .markers import IMAGE

#: A non-negative Kubernetes quantity (resource.Quantity's grammar): 500m, 2, 1.5Gi, 1e3.
_QUANTITY = re.compile(r"^\+?([0-9]+(\.[0-9]*)?|\.[0-9]+)(([KMGTPE]i)|[numkMGTPE]|([eE][-+]?[0-9]+))?$")
#: A resource name (cpu, memory, nvidia.com/gpu): a qualified name, as Kubernetes checks it.
_RESOURCE_NAME = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)


def _quantity(v: str | int) -> str | int:
    """Checked here, not only by the API server when a workload is applied: a bad quantity must be a
    Spec condition naming the field, not an apply that fails on every pass."""
    if isinstance(v, bool) or (isinstance(v, int) and v < 0) or (isinstance(v, str) and not _QUANTITY.match(v)):
        raise ValueError(f"{v!r} is not a non-negative Kubernetes quantity (e.g. 500m, 2, 1Gi)")
    return v


def _resource_name(v: str) -> str:
    if not _RESOURCE_NAME.match(v) or len(v) > 253:
        raise ValueError(f"{v!r} is not a resource name (e.g. cpu, memory, nvidia.com/gpu)")
    return v


Quantity = Annotated[
    str | int,
    AfterValidator(_quantity),
    Field(description="A Kubernetes resource quantity, e.g. 500m, 2, 1Gi."),
]
ResourceName = Annotated[str, AfterValidator(_resource_name)]
#: An image reference; no whitespace or shell metacharacters.
ImageRef = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*$", max_length=512),
    IMAGE,  # every field of this type is checked against the admin policy's allowedImagePrefixes
]


class ResourceRequirements(ApiModel):
    """Compute resources of a container (same shape as core/v1 ResourceRequirements)."""

    requests: dict[ResourceName, Quantity] | None = None
    """Minimum resources, e.g. {cpu: 500m, memory: 1Gi}."""
    limits: dict[ResourceName, Quantity] | None = None
    """Maximum resources, e.g. {cpu: "2", memory: 2Gi}. The CPU limit sets the default worker count."""
