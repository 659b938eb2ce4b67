"""What a Kubernetes name, namespace, uid and label may be: the one place these rules are written.

Anything read from an object a tenant can write (labels, annotations, ConfigMap/Secret data, spec,
status, ownerReferences) is checked against these before it becomes part of a URL, an object name
or a cloud id: a ``/``, ``%``, ``..`` or ``?`` in a name turns a request for one object into a
request for another (``featurestore-cleanup-x-/../../../victim/secrets/s`` once made the operator
DELETE a Secret in another namespace). The rules are Kubernetes' own (k8s.io/apimachinery
``pkg/util/validation``: IsDNS1123Subdomain, IsDNS1123Label, IsQualifiedName, IsValidLabelValue),
so a name that passes is one the API server could have given an object.
"""

from __future__ import annotations

import re
import uuid

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS_LABEL = re.compile(_LABEL)
DNS_SUBDOMAIN = re.compile(rf"{_LABEL}(\.{_LABEL})*")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")


class UnsafeName(ValueError):
    """A name, namespace, uid or label that no Kubernetes object can have."""


def object_name(value: object, what: str = "name") -> str:
    """A Kubernetes object name (DNS-1123 subdomain, <= 253 characters): no ``/``, ``%``, ``..``,
    ``.`` alone, upper case, blank or control characters."""
    if not isinstance(value, str) or len(value) > 253 or not DNS_SUBDOMAIN.fullmatch(value):
        raise UnsafeName(
            f"{what} {value!r} is not a Kubernetes object name (DNS-1123 subdomain, at most 253 characters)"
        )
    return value


def namespace(value: object, what: str = "namespace") -> str:
    """A namespace name (DNS-1123 label, <= 63 characters)."""
    if not isinstance(value, str) or len(value) > 63 or not DNS_LABEL.fullmatch(value):
        raise UnsafeName(f"{what} {value!r} is not a namespace name (DNS-1123 label, at most 63 characters)")
    return value


def uid(value: object, what: str = "uid") -> str:
    """An object uid as the API server assigns them: a UUID in its canonical lower-case form."""
    try:
        if isinstance(value, str) and str(uuid.UUID(value)) == value:
            return value
    except ValueError:
        pass
    raise UnsafeName(f"{what} {value!r} is not a Kubernetes uid (a UUID)")


def label(key: object, value: object) -> tuple[str, str]:
    """A label key (optional DNS-subdomain prefix + ``/`` + name <= 63) and value (<= 63): what a
    label selector may hold without changing its meaning (no ``,``, ``=``, ``!``, spaces)."""
    if not isinstance(key, str) or not isinstance(value, str):
        raise UnsafeName(f"label {key!r}={value!r}: key and value must be strings")
    prefix, _, name = key.rpartition("/")
    if (
        (prefix and (len(prefix) > 253 or not DNS_SUBDOMAIN.fullmatch(prefix)))
        or len(name) > 63
        or not _QUALIFIED_NAME.fullmatch(name)
    ):
        raise UnsafeName(f"label key {key!r} is not a Kubernetes label key")
    if len(value) > 63 or not _LABEL_VALUE.fullmatch(value):
        raise UnsafeName(f"label value {value!r} of {key} is not a Kubernetes label value")
    return key, value
