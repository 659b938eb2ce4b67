"""PodDefault admission stand-in: Kubeflow's PodDefault mutating webhook, rule for rule.

Mirrors kubeflow/dashboard ``components/poddefaults-webhooks/main.go`` at commit
d84246482d865a2bbd7e782ccafa6cd842bf6999 (last change to main.go: 7640c089ebf8f2bafd90cdfb291ead72172c8165;
formerly kubeflow/kubeflow ``components/admission-webhook``). Each function below names the Go
function it mirrors; ``tests/unit/test_poddefault_standin.py`` pins every rule.

The webhook configuration (``manifests/kustomize/base/mutating-webhook-configuration.yaml``) is
``failurePolicy: Fail`` on pod CREATE with ``namespaceSelector: {matchLabels:
{app.kubernetes.io/part-of: kubeflow-profile}}``: a conflict REFUSES the pod, and a namespace
without that label gets no PodDefault at all.

Go's ``reflect.DeepEqual`` on decoded structs cannot tell an omitted field from its zero value
(``""``, empty list/map, a non-pointer ``false``); :func:`_norm` drops those before comparing, so
``{"name": "A", "value": ""}`` equals ``{"name": "A"}`` here as it does upstream. ``false`` is dropped
only for the non-pointer bools of Container/VolumeMount (``readOnly``, ``stdin``, ``stdinOnce``,
``tty``); a pointer bool such as ``optional: false`` differs from an omitted one, as in Go.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

ANNOTATION_PREFIX = "poddefault.admission.kubeflow.org"  # main.go const annotationPrefix
ISTIO_PROXY = "istio-proxy"  # main.go const istioProxyContainerName
MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"  # corev1.MirrorPodAnnotationKey
PROFILE_LABEL = ("app.kubernetes.io/part-of", "kubeflow-profile")  # the webhook's namespaceSelector

Obj = dict[str, Any]


class PodDefaultConflict(Exception):
    """The webhook's refusal: ``conflict occurred while applying poddefaults: ...`` (mutatePods)."""


def webhook_acts_on(namespace_labels: Mapping[str, str] | None) -> bool:
    """MutatingWebhookConfiguration ``namespaceSelector``: only profile namespaces."""
    key, value = PROFILE_LABEL
    return (namespace_labels or {}).get(key) == value


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    """``metav1.LabelSelectorAsSelector`` + ``Matches``. The spec's selector is a struct, never nil,
    so an EMPTY selector selects EVERY pod of the namespace (labels.Everything())."""
    labels = labels or {}
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    return all(_requirement(expr, labels) for expr in selector.get("matchExpressions") or [])


def _requirement(expr: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key, op, values = expr["key"], expr["operator"], list(expr.get("values") or [])
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    # filterPodDefaults: "label selector conversion failed" -> toAdmissionResponse (pod refused)
    raise PodDefaultConflict(f"label selector conversion failed: {op!r} is not a valid pod selector operator")


def filter_poddefaults(poddefaults: Iterable[Obj], pod: Obj) -> list[Obj]:
    """``filterPodDefaults``: selector matches the pod's labels AND same namespace. The webhook lists
    PodDefaults straight from the API server, i.e. sorted by name; order decides serviceAccountName
    (last wins) and command/args (first wins)."""
    meta = pod.get("metadata") or {}
    chosen = [
        pd
        for pd in poddefaults
        if selector_matches(pd["spec"].get("selector"), meta.get("labels"))
        and pd["metadata"].get("namespace") == meta.get("namespace")
    ]
    return sorted(chosen, key=lambda pd: pd["metadata"]["name"])


def _norm(value: Any) -> Any:
    """What Go's DeepEqual sees after JSON decoding: zero values and omitted fields are the same."""
    if isinstance(value, Mapping):
        out = {k: _norm(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if not _zero(k, v)}
    if isinstance(value, list):
        return [_norm(v) for v in value]
    return value


def _zero(key: str, value: Any) -> bool:
    if value is False:
        return key in _NON_POINTER_BOOLS
    return value is None or value == "" or value == [] or value == {}


_NON_POINTER_BOOLS = frozenset({"readOnly", "stdin", "stdinOnce", "tty"})


def _merge_by_key(existing: list[Obj], defaults: list[tuple[str, Obj]], key: str, what: str) -> list[Obj]:
    """The shared shape of mergeEnv / mergeVolumes / mergeTolerations / mergeImagePullSecrets /
    mergeContainers: keep the pod's items, append new keys, refuse a same key with another value
    (an identical duplicate is dropped silently)."""
    seen = {item.get(key, ""): item for item in existing}
    merged, errors = list(existing), []
    for pd_name, item in defaults:
        found = seen.get(item.get(key, ""))
        if found is None:
            seen[item.get(key, "")] = item
            merged.append(item)
        elif _norm(found) != _norm(item):
            errors.append(f"merging {what} for {pd_name} has a conflict on {item.get(key, '')}")
    if errors:
        raise PodDefaultConflict("; ".join(errors))
    return merged


def _from(pds: list[Obj], field: str) -> list[tuple[str, Obj]]:
    return [(pd["metadata"]["name"], item) for pd in pds for item in pd["spec"].get(field) or []]


def merge_env(env: list[Obj], pds: list[Obj]) -> list[Obj]:
    """``mergeEnv``: by name, against the container's own env too."""
    return _merge_by_key(env, _from(pds, "env"), "name", "env")


def merge_env_from(env_from: list[Obj], pds: list[Obj]) -> list[Obj]:
    """``mergeEnvFrom``: plain append, never a conflict (later keys win inside the container)."""
    return [*env_from, *(item for _, item in _from(pds, "envFrom"))]


def merge_volumes(volumes: list[Obj], pds: list[Obj]) -> list[Obj]:
    """``mergeVolumes``: by name."""
    return _merge_by_key(volumes, _from(pds, "volumes"), "name", "volumes")


def merge_tolerations(tolerations: list[Obj], pds: list[Obj]) -> list[Obj]:
    """``mergeTolerations``: keyed by ``key`` alone (two tolerations of one key and another effect conflict)."""
    return _merge_by_key(tolerations, _from(pds, "tolerations"), "key", "tolerations")


def merge_image_pull_secrets(secrets: list[Obj], pds: list[Obj]) -> list[Obj]:
    """``mergeImagePullSecrets``: by name."""
    return _merge_by_key(secrets, _from(pds, "imagePullSecrets"), "name", "imagePullSecret")


def merge_containers(containers: list[Obj], pds: list[Obj], sidecars: bool) -> list[Obj]:
    """``mergeContainers``: spec.sidecars into containers, spec.initContainers into initContainers, by name."""
    field = "sidecars" if sidecars else "initContainers"
    return _merge_by_key(containers, _from(pds, field), "name", "containers")


def merge_volume_mounts(mounts: list[Obj], pds: list[Obj]) -> list[Obj]:
    """``mergeVolumeMounts``: by name AND by mountPath (two PodDefaults mounting different volumes at
    one path conflict, as do one volume name at two paths)."""
    by_name = {m.get("name", ""): m for m in mounts}
    by_path = {m.get("mountPath", ""): m for m in mounts}
    merged, errors = list(mounts), []
    for pd_name, item in _from(pds, "volumeMounts"):
        found = by_name.get(item.get("name", ""))
        if found is None:
            by_name[item.get("name", "")] = item
            merged.append(item)
        elif _norm(found) != _norm(item):
            errors.append(f"merging volume mounts for {pd_name} has a conflict on {item.get('name')}")
        found = by_path.get(item.get("mountPath", ""))
        if found is None:
            by_path[item.get("mountPath", "")] = item
        elif _norm(found) != _norm(item):
            errors.append(f"merging volume mounts for {pd_name} has a conflict on mount path {item.get('mountPath')}")
    if errors:
        raise PodDefaultConflict("; ".join(errors))
    return merged


def merge_map(existing: Mapping[str, str] | None, pds: list[Obj], field: str) -> dict[str, str]:
    """``mergeMap`` (annotations, labels): a key the pod or an earlier PodDefault set to another value conflicts."""
    out, errors = dict(existing or {}), []
    for pd in pds:
        for k, v in (pd["spec"].get(field) or {}).items():
            if k not in out:
                out[k] = v
            elif out[k] != v:
                errors.append(f"merging has conflict on {k}")
    if errors:
        raise PodDefaultConflict("; ".join(errors))
    return out


def _apply_to_container(ctr: Obj, pds: list[Obj]) -> Obj:
    """``applyPodDefaultsOnContainer`` + ``setCommandAndArgs`` (first PodDefault wins; never over
    the container's own command/args; never on istio-proxy)."""
    ctr = dict(ctr)
    ctr["env"] = merge_env(ctr.get("env") or [], pds)
    ctr["volumeMounts"] = merge_volume_mounts(ctr.get("volumeMounts") or [], pds)
    ctr["envFrom"] = merge_env_from(ctr.get("envFrom") or [], pds)
    if ctr.get("name") != ISTIO_PROXY:
        for pd in pds:
            for field in ("command", "args"):
                if ctr.get(field) is None and pd["spec"].get(field) is not None:
                    ctr[field] = pd["spec"][field]
    return {k: v for k, v in ctr.items() if v != [] or k not in ("env", "volumeMounts", "envFrom")}


def _apply(pod: Obj, pds: list[Obj]) -> Obj:
    """``safeToApplyPodDefaultsOnPod`` then ``applyPodDefaultsOnPod``: every merge raises on conflict,
    so nothing is applied unless all merge."""
    spec, meta = pod["spec"], pod.setdefault("metadata", {})
    for field, merge in (
        ("volumes", merge_volumes),
        ("tolerations", merge_tolerations),
        ("imagePullSecrets", merge_image_pull_secrets),
    ):
        merged = merge(spec.get(field) or [], pds)
        if merged:
            spec[field] = merged
    for pd in pds:
        if pd["spec"].get("automountServiceAccountToken") is not None:
            spec["automountServiceAccountToken"] = pd["spec"]["automountServiceAccountToken"]
        if pd["spec"].get("serviceAccountName"):
            spec["serviceAccountName"] = pd["spec"]["serviceAccountName"]
    meta["annotations"] = merge_map(meta.get("annotations"), pds, "annotations")
    meta["labels"] = merge_map(meta.get("labels"), pds, "labels")
    spec["containers"] = [_apply_to_container(c, pds) for c in spec.get("containers") or []]
    init = merge_containers(spec.get("initContainers") or [], pds, sidecars=False)
    if init:
        spec["initContainers"] = init
    spec["containers"] = merge_containers(spec["containers"], pds, sidecars=True)
    for pd in pds:
        rv = pd["metadata"].get("resourceVersion", "")
        meta["annotations"][f"{ANNOTATION_PREFIX}/poddefault-{pd['metadata']['name']}"] = rv
    return pod


def apply_poddefaults(
    pod: Obj,
    poddefaults: list[Obj],
    *,
    namespace: str | None = None,
    namespace_labels: Mapping[str, str] | None = None,
) -> Obj:
    """``mutatePods``: the pod as Kubeflow's webhook would admit it (a deep copy; the input is not
    changed), or :class:`PodDefaultConflict` where the webhook refuses it.

    ``namespace`` stands for the AdmissionReview's namespace when the pod names none;
    ``namespace_labels``, when given, applies the webhook's namespaceSelector (no profile label:
    the pod is admitted unchanged, since the webhook is never called)."""
    pod = copy.deepcopy(pod)
    meta = pod.setdefault("metadata", {})
    if not meta.get("namespace") and namespace:
        meta["namespace"] = namespace
    if namespace_labels is not None and not webhook_acts_on(namespace_labels):
        return pod
    annotations = meta.get("annotations") or {}
    if annotations.get(f"{ANNOTATION_PREFIX}/exclude") == "true" or MIRROR_POD_ANNOTATION in annotations:
        return pod
    chosen = filter_poddefaults(poddefaults, pod)
    if not chosen:
        return pod
    try:
        return _apply(pod, copy.deepcopy(chosen))
    except PodDefaultConflict as exc:
        names = ",".join(pd["metadata"]["name"] for pd in chosen)
        raise PodDefaultConflict(
            f"conflict occurred while applying poddefaults: {names} on pod: {meta.get('name')} err: {exc}"
        ) from None
