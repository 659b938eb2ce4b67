"""Every object a namespace ever held, by watching it: a delete-and-recreate (a new uid under the
same name) or a rewritten value shows up here even when the final state looks the same."""

from __future__ import annotations

import collections
import threading
from typing import Any

from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from tests.support.labeled import LISTERS


class ObjectHistory:
    """Watches ``kinds`` in ``namespace`` from ``start()`` to ``stop()``; ``uids[(kind, name)]`` is every
    uid seen under that name, ``versions[(kind, name)]`` every distinct ``data`` (Secrets, ConfigMaps)."""

    def __init__(self, api: client.ApiClient, namespace: str, kinds: list[str]):
        self.api, self.namespace, self.kinds = api, namespace, kinds
        self.uids: dict[tuple[str, str], set[str]] = collections.defaultdict(set)
        self.versions: dict[tuple[str, str], list[Any]] = collections.defaultdict(list)
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self) -> ObjectHistory:
        for kind in self.kinds:
            api_class, method = LISTERS[kind]
            lister = getattr(api_class(self.api), method)
            version = lister(self.namespace).metadata.resource_version  # nothing missed from here on
            thread = threading.Thread(target=self._watch, args=(kind, lister, version), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _record(self, kind: str, obj: Any) -> None:
        key = (kind, obj.metadata.name)
        data = getattr(obj, "data", None)
        with self._lock:
            self.uids[key].add(obj.metadata.uid)
            if data is not None and (not self.versions[key] or self.versions[key][-1] != data):
                self.versions[key].append(data)

    def _watch(self, kind: str, lister: Any, version: str) -> None:
        while not self._stop.is_set():
            try:
                for event in watch.Watch().stream(lister, self.namespace, resource_version=version, timeout_seconds=5):
                    obj = event["object"]
                    version = obj.metadata.resource_version
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._record(kind, obj)
                    if self._stop.is_set():
                        return
            except ApiException as err:  # 410 Gone: the history is lost, and so is the proof
                self.errors.append(f"{kind}: {err.status} {err.reason}")
                return

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def __enter__(self) -> ObjectHistory:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
