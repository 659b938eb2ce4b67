"""A notebook-like pod as Kubeflow admits it, for the e2e scenarios (used by scenario-gcp.sh).

Reads ``{"poddefaults": <kubectl get poddefaults -o json>, "namespace": <kubectl get ns -o json>}``
on stdin and prints the Pod manifest (JSON) that Kubeflow's PodDefault webhook would admit: the pod
is labelled like a notebook whose form ticked each store's box, runs as the profile's
``default-editor``, and the PodDefaults are applied by ``tests/support/poddefaults.apply_poddefaults``
(upstream's merge and conflict rules; a conflict exits non-zero with the webhook's refusal, as the
notebook would never start). On a cluster with the real webhook, ``--no-admission`` prints the pod
unmutated and the API server's webhook does the same job.

    python -m tests.e2e.notebook_pod NAME IMAGE CODE --store S1 --store S2 [--env-json '[...]'] < in.json
"""

from __future__ import annotations

import argparse
import json
import sys

from tests.support.poddefaults import PodDefaultConflict, apply_poddefaults

SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}


def notebook(name: str, image: str, code: str, stores: list[str], env: list[dict[str, str]], sa: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            # the labels the notebook form sets when its PodDefault boxes are ticked
            "labels": {
                **{f"access-feast-{s}": "true" for s in stores},
                "app.kubernetes.io/part-of": "featurestore-e2e",
            },
            "annotations": {"sidecar.istio.io/inject": "false"},
        },
        "spec": {
            "serviceAccountName": sa,
            "restartPolicy": "Never",
            "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "notebook",
                    "image": image,
                    "imagePullPolicy": "Never",
                    "command": ["python", "-c", code],
                    "env": [{"name": "HOME", "value": "/tmp"}, *env],
                    "securityContext": SECURITY,
                    "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                }
            ],
            "volumes": [{"name": "tmp", "emptyDir": {}}],
        },
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("name")
    p.add_argument("image")
    p.add_argument("code")
    p.add_argument("--store", action="append", default=[])
    p.add_argument("--env-json", default="[]")
    p.add_argument("--service-account", default="default-editor")
    p.add_argument("--no-admission", action="store_true")
    args = p.parse_args(argv)
    pod = notebook(args.name, args.image, args.code, args.store, json.loads(args.env_json), args.service_account)
    if not args.no_admission:
        given = json.load(sys.stdin)
        ns = given["namespace"]
        try:
            pod = apply_poddefaults(
                pod,
                given["poddefaults"].get("items", []),
                namespace=ns["metadata"]["name"],
                namespace_labels=ns["metadata"].get("labels") or {},
            )
        except PodDefaultConflict as err:
            print(f"admission webhook refused the pod: {err}", file=sys.stderr)
            return 3
    json.dump(pod, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
