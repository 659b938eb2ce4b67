"""The client facade (runtime/kube.py) never sends a request whose URL leaves the object it names.

Every verb gets generated names, namespaces and label selectors (hostile and valid alike) against
lightkube over a recording transport (the real URL building, nothing sent anywhere): a call either
raises :class:`UnsafeRequest` with no request sent, or sends exactly one request to
``/api(s)/GROUP/VERSION[/namespaces/NS]/PLURAL[/NAME]`` of the namespace and name it was given, with
the label selector it was given. The attack it stops: a clean-up record whose uid held ``../``
segments turned ``DELETE .../configmaps/featurestore-cleanup-x-<uid>`` into a DELETE of a Secret in
another namespace (tests/controlplane/test_forged_records.py, on the real API server)."""

from __future__ import annotations

import asyncio
import json
import string
from typing import Any

import httpx2
import pytest
from featurestore_operator.api import names
from featurestore_operator.runtime.kinds import KINDS
from featurestore_operator.runtime.kube import ApiError, Kube, UnsafeRequest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from lightkube import AsyncClient, KubeConfig

HOSTILE = [
    "",
    ".",
    "..",
    "../x",
    "x/..",
    "a/b",
    "/",
    "%2F",
    "x%2F..%2F..%2Fkube-system",
    "%2e%2e",
    "x?y=1",
    "x#f",
    "x;y",
    "X",
    "-x",
    "x-",
    "x..y",
    "x\n",
    "\nx",
    "x\x00",
    " x",
    "x ",
    "*",
    "x" * 254,
    "a" * 64,
    "é",
    "x\\..\\y",
    "x/",
    "featurestore-cleanup-x-/../../../victim/secrets/s",
    "a.-b",
    "a_b",
    "x:y",
    "..%2F",
    "%",
    "x@y",
    "~",
]
VALID = ["a", "demo", "team-a", "a.b", "x" * 63, "a" * 253, "0", "featurestore-cleanup-0a1b"]

#: hostile fragments spliced around a valid name, and arbitrary text (printable and not)
fragments = st.sampled_from(["/", "..", "%2F", "%", "?", "#", "\n", " ", ".", "*", "\\", ":", "A", "_", "~"])
spliced = st.builds(
    lambda pre, mid, post: pre + mid + post, st.sampled_from(VALID + [""]), fragments, st.sampled_from(VALID + [""])
)
candidate = st.one_of(
    st.sampled_from(HOSTILE + VALID),
    spliced,
    st.text(max_size=80),
    st.text(alphabet=string.ascii_lowercase + string.digits + "-./%", max_size=70),
    st.from_regex(names.DNS_SUBDOMAIN, fullmatch=True).filter(lambda s: len(s) <= 253),
)
namespaced_kinds = st.sampled_from(["ConfigMap", "Secret", "Deployment", "FeatureStore", "RoleBinding", "Lease"])
cluster_kinds = st.sampled_from(["Namespace", "ClusterRoleBinding", "Profile"])


class Recorder:
    """A transport that records every request and answers like an API server would."""

    def __init__(self) -> None:
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        if request.url.params.get("watch"):
            return httpx2.Response(500, json={"kind": "Status", "code": 500, "message": "recorded"})
        if request.method == "GET" and not _names_object(request):
            return httpx2.Response(200, json={"kind": "List", "metadata": {"resourceVersion": "1"}, "items": []})
        body = json.loads(request.content or b"{}") if request.method != "DELETE" else {}
        return httpx2.Response(200, json={"metadata": {"resourceVersion": "2"}, **body})


def _names_object(request: httpx2.Request) -> bool:
    return request.url.path.rstrip("/").split("/")[-1] not in {k.plural for k in KINDS.values()}


def kube(recorder: Recorder) -> Kube:
    config = KubeConfig.from_dict(
        {
            "clusters": [{"name": "c", "cluster": {"server": "https://kube.test"}}],
            "users": [{"name": "u", "user": {"token": "t"}}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u", "namespace": "operator-home"}}],
            "current-context": "c",
        }
    )
    return Kube(AsyncClient(config, transport=httpx2.MockTransport(recorder), field_manager="featurestore-operator"))


def base(kind: str, api_version: str) -> str:
    group, _, version = api_version.rpartition("/")
    return f"/apis/{group}/{version}" if group else f"/api/{version}"


def expected_path(kind: str, api_version: str, namespace: str | None, name: str | None, sub: str = "") -> str:
    k = KINDS[kind]
    path = base(kind, api_version) + (f"/namespaces/{namespace}" if namespace else "") + f"/{k.plural}"
    return path + (f"/{name}" if name is not None else "") + (f"/{sub}" if sub else "")


def valid(namespace: Any, name: Any, namespaced: bool = True) -> bool:
    try:
        names.object_name(name)
        if namespaced:
            names.namespace(namespace)
        elif namespace:
            return False
    except names.UnsafeName:
        return False
    return True


def obj(kind: str, namespace: str | None, name: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "resourceVersion": "1"}
    if namespace is not None:
        meta["namespace"] = namespace
    return {"apiVersion": KINDS[kind].api_versions()[0], "kind": kind, "metadata": meta}


async def one_object_verb(k: Kube, verb: str, kind: str, namespace: Any, name: Any) -> None:
    api_version = KINDS[kind].api_versions()[0]
    calls = {
        "get": lambda: k.get(kind, api_version, namespace, name),
        "delete": lambda: k.delete(kind, api_version, namespace, name),
        "patch_status": lambda: k.patch_status(kind, api_version, namespace, name, {"status": {}}),
        "apply": lambda: k.apply(obj(kind, namespace, name)),
        "create": lambda: k.create(obj(kind, namespace, name)),
        "replace": lambda: k.replace(obj(kind, namespace, name)),
        "patch_guarded": lambda: k.patch_guarded(obj(kind, namespace, name), {"metadata": {"labels": {}}}),
    }
    await calls[verb]()


def run_one(verb: str, kind: str, namespace: Any, name: Any) -> None:
    recorder = Recorder()

    async def go() -> None:
        k = kube(recorder)
        try:
            await one_object_verb(k, verb, kind, namespace, name)
        finally:
            await k.close()

    namespaced = KINDS[kind].namespaced
    if not valid(namespace, name, namespaced):
        with pytest.raises(UnsafeRequest):
            asyncio.run(go())
        assert not recorder.requests, f"{verb} sent {[str(r.url) for r in recorder.requests]}"
        return
    asyncio.run(go())
    [request] = recorder.requests
    sub = "status" if verb == "patch_status" else ""
    path_name = None if verb == "create" else name
    want = expected_path(kind, KINDS[kind].api_versions()[0], namespace if namespaced else None, path_name, sub)
    assert request.url.path == want and request.url.raw_path.decode().split("?")[0] == want, (verb, request.url)


ONE_OBJECT_VERBS = ["get", "delete", "patch_status", "apply", "create", "replace", "patch_guarded"]


@pytest.mark.parametrize("verb", ONE_OBJECT_VERBS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=namespaced_kinds, namespace=candidate, name=candidate)
@example(kind="ConfigMap", namespace="tenant", name="featurestore-cleanup-x-/../../../victim/secrets/s")
@example(kind="ConfigMap", namespace="../kube-system", name="x")
@example(kind="Secret", namespace="tenant", name="x%2F..%2F..%2Fvictim")
def test_every_verb_on_one_object_stays_on_that_object(verb, kind, namespace, name):
    run_one(verb, kind, namespace, name)


@pytest.mark.parametrize("verb", ["get", "delete", "apply"])
@settings(max_examples=40, deadline=None)
@given(kind=cluster_kinds, namespace=st.one_of(st.none(), candidate), name=candidate)
def test_cluster_scoped_kinds_take_no_namespace(verb, kind, namespace, name):
    run_one(verb, kind, namespace, name)


labels = st.dictionaries(
    st.one_of(st.sampled_from(["app", "featurestore.kubeflow.org/owner", "a/b/c", "x,y", "k="]), candidate),
    st.one_of(candidate, st.sampled_from(["v", "a,b!=c", "x in (y)", ""])),
    max_size=3,
)


def label_ok(selector: dict[str, str]) -> bool:
    try:
        for key, value in selector.items():
            names.label(key, value)
    except names.UnsafeName:
        return False
    return True


@pytest.mark.parametrize("verb", ["list", "list_with_version", "watch", "served"])
@settings(max_examples=60, deadline=None)
@given(kind=namespaced_kinds, namespace=st.one_of(st.none(), candidate), selector=labels)
@example(kind="ConfigMap", namespace="*", selector={})
@example(kind="ConfigMap", namespace="tenant", selector={"featurestore.kubeflow.org/cleanup-record": "true,x!=y"})
def test_lists_and_watches_stay_in_their_namespace_and_selector(verb, kind, namespace, selector):
    recorder = Recorder()
    api_version = KINDS[kind].api_versions()[0]
    selector = {} if verb == "served" else selector

    async def go() -> None:
        k = kube(recorder)
        try:
            if verb == "watch":
                try:
                    async for _ in k.watch(kind, api_version, namespace, selector, "1"):
                        pass
                except UnsafeRequest:
                    raise
                except ApiError as err:  # the recorder's answer to a watch
                    assert err.status == 500
            elif verb == "served":
                await k.served(kind, api_version, namespace)
            else:
                await getattr(k, verb)(kind, api_version, namespace, selector)
        finally:
            await k.close()

    ok = (namespace is None or valid(namespace, "x")) and label_ok(selector)
    if not ok:
        with pytest.raises(UnsafeRequest):
            asyncio.run(go())
        assert not recorder.requests
        return
    asyncio.run(go())
    request = recorder.requests[0]
    assert request.url.path == expected_path(kind, api_version, namespace, None), request.url
    sent = request.url.params.get("labelSelector")
    assert sent == (",".join(f"{k}={v}" for k, v in selector.items()) or None), (sent, selector)


def test_unknown_kinds_and_versions_are_refused_unsent():
    recorder = Recorder()

    async def go() -> None:
        k = kube(recorder)
        try:
            for api_version in ("v1/../../apis/apps/v1", "apps/v1", "v2", ""):
                with pytest.raises(UnsafeRequest):
                    await k.get("ConfigMap", api_version, "tenant", "x")
            with pytest.raises(UnsafeRequest):
                await k.apply({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "x"}})
        finally:
            await k.close()

    asyncio.run(go())
    assert not recorder.requests


def test_a_refusal_names_the_bad_value():
    with pytest.raises(UnsafeRequest) as err:
        run_refused()
    assert err.value.status == 400
    assert "'../x'" in str(err.value) and "DNS-1123" in str(err.value)


def run_refused() -> None:
    async def go() -> None:
        k = kube(Recorder())
        try:
            await k.delete("ConfigMap", "v1", "tenant", "../x")
        finally:
            await k.close()

    asyncio.run(go())
