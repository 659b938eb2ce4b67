"""A stand-in for the kubelet on a control plane without nodes: moves Pods created by the real
controllers to Running/Ready (or Succeeded/Failed), so Deployments, StatefulSets and Jobs report
status through their real controllers."""

from __future__ import annotations

import datetime as dt

from kubernetes import client
from kubernetes.client.rest import ApiException


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class FakeKubelet:
    def __init__(self, api: client.ApiClient):
        self.core = client.CoreV1Api(api)

    def pods(self, namespace: str, selector: str) -> list[client.V1Pod]:
        return self.core.list_namespaced_pod(namespace, label_selector=selector).items

    def run(self, namespace: str, selector: str, phase: str = "Running", messages: dict[str, str] | None = None) -> int:
        """Set every matching Pod to ``phase`` (Running = ready). A terminated container named in
        ``messages`` gets that termination message (what it wrote to its terminationMessagePath).
        Returns how many were changed."""
        changed = 0
        now = _now()
        for pod in self.pods(namespace, selector):
            if pod.status and pod.status.phase == phase:
                continue
            assert pod.metadata and pod.metadata.name and pod.spec, "a pod the API server answered"
            ready = "True" if phase == "Running" else "False"
            containers = [
                {
                    "name": c.name,
                    "ready": phase == "Running",
                    "restartCount": 0,
                    "image": c.image,
                    "imageID": "",
                    "state": {"running": {"startedAt": now}}
                    if phase == "Running"
                    else {
                        "terminated": {
                            "exitCode": 0 if phase == "Succeeded" else 1,
                            "startedAt": now,
                            "finishedAt": now,
                            "reason": "Completed" if phase == "Succeeded" else "Error",
                            **({"message": messages[c.name]} if messages and c.name in messages else {}),
                        }
                    },
                }
                for c in pod.spec.containers
            ]
            status = {
                "phase": phase,
                "startTime": now,
                "conditions": [
                    {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                    {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                    {"type": "ContainersReady", "status": ready, "lastTransitionTime": now},
                    {"type": "Ready", "status": ready, "lastTransitionTime": now},
                ],
                "containerStatuses": containers,
            }
            try:
                self.core.patch_namespaced_pod_status(pod.metadata.name, namespace, {"status": status})
            except ApiException as err:
                if err.status != 404:
                    raise
                continue  # deleted since the list (a scale-down, a roll-out): a kubelet skips it too
            changed += 1
        return changed
