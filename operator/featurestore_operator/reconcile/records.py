"""Clean-up records: a ConfigMap per FeatureStore with cloud resources, written before its
finalizer and deleted after its clean-up, so a store deleted past its finalizer (or while the
operator was down) still has its cloud resources deleted (``finalize.clean_up_vanished``).

Where they live, and why there. A record tells the operator to delete cloud resources and a
ConfigMap: whoever can write one steers the operator. They used to live in the store's own
namespace, where any namespace editor can write ConfigMaps; a forged one whose uid held ``../``
segments made the operator DELETE objects in other namespaces. Two designs close that:

* records in the operator's own namespace (``OperatorConfig.operator_namespace``, the chart's
  release namespace), which tenants cannot write; or
* records anywhere, signed with an operator-held HMAC key.

The first is chosen: it needs no key to generate, keep secret, rotate or lose (a lost key would
orphan every store's resources), a record cannot be replayed from one namespace into another, and
the RBAC it needs is ConfigMaps in one namespace. Records found anywhere else (an older version's,
or a forgery) are never acted on and never deleted: a log line says they are ignored.

Everything read from a record is validated again all the same (namespace: DNS label, name: DNS
subdomain, uid: UUID; the record's own name and labels must be the ones derived from them), and a
record whose uid is a live store's does nothing (``handlers.featurestore``).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..api import names
from ..api.resource import API_VERSION

#: label of every clean-up record
CLEANUP_RECORD = "featurestore.kubeflow.org/cleanup-record"
#: labels naming the record's store (selected on per watched namespace; checked against the data)
STORE_NAMESPACE = "featurestore.kubeflow.org/store-namespace"
STORE_UID = "featurestore.kubeflow.org/store-uid"
#: annotation with the store's name (for people: names may be longer than a label value)
STORE_NAME = "featurestore.kubeflow.org/store-name"
_DATA = "featurestore.json"


class Refused(Exception):
    """A record the operator does not act on (the reason says why)."""


def record_name(namespace: object, name: object, uid: object) -> str:
    """The record's name: derived from the store's validated namespace, name and uid (a hash: any
    namespace and name fit, and an altered record no longer matches its name)."""
    key = f"{names.namespace(namespace)}/{names.object_name(name)}/{names.uid(uid)}"
    return "featurestore-cleanup-" + hashlib.sha256(key.encode()).hexdigest()[:40]


def record_for(body: dict[str, Any], records_namespace: str) -> dict[str, Any]:
    """The record of the FeatureStore ``body`` (as read from the API server): its namespace, name,
    uid and spec, in ``records_namespace`` (raises ``names.UnsafeName`` on a bad namespace/name/uid)."""
    meta = body["metadata"]
    ns, name, uid = meta["namespace"], meta["name"], meta.get("uid")
    kept = {
        "apiVersion": API_VERSION,
        "kind": "FeatureStore",
        "metadata": {"name": name, "namespace": ns, "uid": uid},
        "spec": body.get("spec") or {},
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": record_name(ns, name, uid),
            "namespace": names.namespace(records_namespace),
            "labels": {CLEANUP_RECORD: "true", STORE_NAMESPACE: ns, STORE_UID: uid},
            "annotations": {STORE_NAME: name},
        },
        "data": {_DATA: json.dumps(kept)},
    }


def read(record: dict[str, Any], records_namespace: str) -> dict[str, Any]:
    """The FeatureStore (last known body) a record names; :class:`Refused` when the record is not
    one the operator wrote: outside ``records_namespace``, unreadable, or not matching its own name
    and labels."""
    meta = record.get("metadata") or {}
    where = f"{meta.get('namespace')}/{meta.get('name')}"
    if meta.get("namespace") != records_namespace:
        raise Refused(f"clean-up record {where} is outside the operator's namespace {records_namespace}")
    try:
        body = json.loads((record.get("data") or {}).get(_DATA) or "")
        fs = body["metadata"]
        ns, name, uid = fs["namespace"], fs["name"], fs["uid"]
        expected = record_name(ns, name, uid)
    except (ValueError, KeyError, TypeError) as err:  # names.UnsafeName is a ValueError
        raise Refused(f"clean-up record {where} is unreadable: {err}") from None
    labels = meta.get("labels") or {}
    if meta.get("name") != expected or labels.get(STORE_NAMESPACE) != ns or labels.get(STORE_UID) != uid:
        raise Refused(f"clean-up record {where} does not match the store it names ({ns}/{name}, uid {uid})")
    spec = body.get("spec")
    return {
        "apiVersion": API_VERSION,
        "kind": "FeatureStore",
        "metadata": {"name": name, "namespace": ns, "uid": uid},
        "spec": spec if isinstance(spec, dict) else {},
    }
