"""The bad-input corpus (tests/support/bad_manifests.py) against the real API server and the real
operator process: every manifest is rejected by the CRD schema (422 naming the field) or accepted and
reported by a condition naming the field; hostile-but-valid ones are accepted and reach containers
only as argv; the operator never crashes and still reconciles a good store afterwards.

Isolation: a FeatureStore can only use Secrets and ConfigMaps of its own namespace - references to
names that exist only in another namespace end as SecretNotFound/ConfigMapNotFound.
"""

from __future__ import annotations

import base64
import collections
import time

from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.support.bad_manifests import FOREIGN_CONFIG_MAP, FOREIGN_GIT_SECRET, FOREIGN_SECRET, Case, corpus
from tests.support.kube import G, P, V, list_fs
from tests.support.kubelet import FakeKubelet
from tests.support.logs import tracebacks
from tests.support.operator_process import OperatorProcess
from tests.support.waiting import wait_for


def _conditions(obj: dict) -> list[dict]:
    return ((obj or {}).get("status") or {}).get("conditions") or []


def _naming(obj: dict, case: Case) -> dict | None:
    """The condition that reports the case: False, naming the field (of the expected type if given)."""
    for c in _conditions(obj):
        if (
            c["status"] == "False"
            and case.reported_field in c.get("message", "")
            and c["type"] != "Ready"
            and (case.condition is None or c["type"] in (case.condition, "Spec"))
        ):
            return c
    return None


def _secret(name: str, data: dict[str, str]) -> client.V1Secret:
    return client.V1Secret(
        metadata=client.V1ObjectMeta(name=name),
        data={k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    )


def test_bad_input_corpus_against_api_server_and_operator(
    control_plane, featurestore_crd, kube_api, namespace, make_namespace
):
    cases = corpus()
    core, custom = client.CoreV1Api(kube_api), client.CustomObjectsApi(kube_api)
    # A neighbour namespace holding objects with the names the corpus references: never to be used.
    foreign = make_namespace("bad-input-other")
    # the whole corpus lives in one namespace: over the policy's default maxStoresPerNamespace (10)
    op = OperatorProcess(
        control_plane.kubeconfig,
        env={"FSO_RESYNC_SECONDS": "10", "FSO_POLICY": '{"maxStoresPerNamespace": 1000}'},
        args=["--namespace", namespace],
    )
    try:
        core.create_namespaced_secret(
            foreign, _secret(FOREIGN_SECRET, {"host": "redis.other", "port": "6379", "password": "theirs"})
        )
        core.create_namespaced_secret(foreign, _secret(FOREIGN_GIT_SECRET, {"token": "theirs"}))
        core.create_namespaced_config_map(
            foreign,
            client.V1ConfigMap(metadata=client.V1ObjectMeta(name=FOREIGN_CONFIG_MAP), data={"features.py": "x = 1\n"}),
        )
        for case in cases:
            for sname, data in case.secrets.items():
                core.create_namespaced_secret(namespace, _secret(sname, data))
        op.start()
        pid = op.pid

        outcome: dict[str, str] = {}
        accepted: list[Case] = []
        t0 = time.monotonic()
        for case in cases:
            try:
                custom.create_namespaced_custom_object(G, V, namespace, P, case.manifest)
            except ApiException as err:
                body = err.body.decode(errors="replace") if isinstance(err.body, bytes) else str(err.body)
                assert case.kind == "invalid", f"{case.id}: a valid manifest was rejected ({err.status}): {body[:400]}"
                assert err.status == 422 or (err.status == 400 and case.field.startswith("metadata")), (
                    f"{case.id}: {err.status} {body[:300]}"
                )
                assert case.field in body, f"{case.id}: the API server's error does not name {case.field}: {body[:600]}"
                outcome[case.id] = f"rejected {err.status}"
                continue
            accepted.append(case)
        submit = time.monotonic() - t0

        def reported() -> bool:
            current = {
                o["metadata"]["name"]: o for o in custom.list_namespaced_custom_object(G, V, namespace, P)["items"]
            }
            for case in accepted:
                if case.id in outcome:
                    continue
                obj = current.get(case.name)
                assert obj is not None, f"{case.id} vanished"
                if case.kind == "pruned":
                    # the structural schema dropped the unknown field before anyone saw it
                    assert case.field not in str(obj.get("spec")), f"{case.id}: unknown field stored"
                    if (obj.get("status") or {}).get("phase"):
                        outcome[case.id] = "pruned"
                elif case.kind == "hostile":
                    st = obj.get("status") or {}
                    if st.get("phase"):
                        spec_cond = next((c for c in _conditions(obj) if c["type"] == "Spec"), None)
                        assert spec_cond is None or spec_cond["status"] == "True", f"{case.id}: {spec_cond}"
                        assert st["phase"] != "Failed", f"{case.id}: {st}"
                        outcome[case.id] = "accepted"
                else:
                    cond = _naming(obj, case)
                    if cond:
                        outcome[case.id] = f"condition {cond['type']}/{cond['reason']}"
            return all(c.id in outcome for c in cases)

        try:
            wait_for(reported, timeout=180, interval=1, what="a condition naming the field on every accepted manifest")
        except AssertionError as err:
            missing = [c.id for c in cases if c.id not in outcome]
            current = {
                o["metadata"]["name"]: o for o in custom.list_namespaced_custom_object(G, V, namespace, P)["items"]
            }
            detail = {c.id: _conditions(current.get(c.name)) for c in cases if c.id in missing}
            raise AssertionError(f"{err}\nnot reported: {detail}\n{op.log_text()[-5000:]}") from None
        report = time.monotonic() - t0

        # Isolation: the same-named objects of the neighbour namespace were not used.
        by_id = {c.id: c for c in cases}
        for cid in (
            "external secret only in another namespace",
            "git secret only in another namespace",
            "repo ConfigMap only in another namespace",
        ):
            assert "NotFound" in outcome[cid], (cid, outcome[cid])
        assert by_id["external secret only in another namespace"]
        cm = core.list_namespaced_config_map(namespace).items
        assert not any("redis.other" in str(c.data) for c in cm), "a foreign Secret's host reached a ConfigMap"

        # Hostile-but-valid git URLs reach the git container as one literal argv entry each (the ref
        # resolver's, which runs first: the apply Job waits for its commit; render's unit tests check
        # the apply Job's fetch container the same way).
        batch = client.BatchV1Api(kube_api)
        for case in (c for c in cases if c.kind == "hostile" and c.argv and "featureRepo" in c.manifest["spec"]):
            url = case.manifest["spec"]["featureRepo"]["git"]["url"]
            jobs = wait_for(
                lambda name=case.name: (
                    batch.list_namespaced_job(
                        namespace,
                        label_selector=f"featurestore.kubeflow.org/name={name},"
                        "app.kubernetes.io/component=repo-resolver",
                    ).items
                ),
                timeout=60,
                what=f"resolver Job of {case.id}",
            )
            init = jobs[0].spec.template.spec.containers[0]
            assert init.command[:2] == ["sh", "-c"] and url not in init.command[2]
            assert init.args[0] == url.replace("$", "$$"), (case.id, init.args)

        # No crash: same process, and it still reconciles a good store to Ready.
        assert op.alive() and op.pid == pid
        custom.create_namespaced_custom_object(
            G,
            V,
            namespace,
            P,
            {
                "apiVersion": f"{G}/{V}",
                "kind": "FeatureStore",
                "metadata": {"name": "good"},
                "spec": {"project": "good"},
            },
        )
        kubelet = FakeKubelet(kube_api)
        wait_for(
            lambda: (
                kubelet.run(namespace, "featurestore.kubeflow.org/name=good") >= 0
                and (custom.get_namespaced_custom_object(G, V, namespace, P, "good").get("status") or {}).get("phase")
                == "Ready"
            ),
            timeout=120,
            interval=1,
            what="a good store Ready after the corpus",
        )
        assert op.alive() and op.pid == pid
        crashes = tracebacks(op.log_text())
        assert not crashes, crashes[:3]

        breakdown = collections.Counter(
            v.split(" ")[0] + (" " + v.split(" ")[1] if v.startswith("condition") else "") for v in outcome.values()
        )
        print(
            f"\n[corpus] {len(cases)} manifests ({dict(collections.Counter(c.kind for c in cases))}): "
            f"{dict(sorted(breakdown.items()))}; submitted in {submit:.1f}s, all reported after {report:.1f}s; "
            f"operator pid unchanged, 0 crashes"
        )
    finally:
        try:  # leave nothing another test's operator could pick up while the namespace terminates
            custom.delete_collection_namespaced_custom_object(G, V, namespace, P)
            wait_for(lambda: not list_fs(kube_api, namespace), timeout=90, what="corpus stores deleted")
        except Exception as err:  # noqa: BLE001 - best effort
            print(f"[cleanup] {err}")
        op.stop()
