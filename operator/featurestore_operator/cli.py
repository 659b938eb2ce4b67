"""`featurestore-operator` command line: render, crd, validate, run."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from .api import OperatorConfig, SpecError, parse_featurestore, resolve
from .api.crd import crd
from .api.resource import select_featurestores


def _load_manifests(path: str) -> list[dict[str, Any]]:
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as err:
        raise SpecError([(path, f"not valid YAML: {err}")]) from None
    return select_featurestores(docs, path)


class _Dumper(yaml.SafeDumper):
    """No anchors/aliases; multi-line strings (feature_store.yaml, scripts) as literal blocks."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _dump(objects: list[dict[str, Any]], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(objects, indent=2)
    return yaml.dump_all(objects, Dumper=_Dumper, sort_keys=False)


def _config() -> OperatorConfig:
    return OperatorConfig()


def cmd_render(args: argparse.Namespace) -> int:
    from .backends.planned import planned_endpoints
    from .render import RepoSource, render
    from .render.names import short_hash

    out: list[dict[str, Any]] = []
    config = _config()
    for doc in _load_manifests(args.filename):
        fs = parse_featurestore(doc)
        fs = fs.model_copy(update={"spec": resolve(fs.spec, config)})
        repo = None
        if fs.spec.feature_repo:
            # Without a cluster a ConfigMap's content is unknown: the revision hashes the reference.
            repo = RepoSource(revision=short_hash(json.dumps(fs.spec.feature_repo.wire(), sort_keys=True), length=16))
        out += render(fs, planned_endpoints(fs, config), config, repo=repo).objects
    print(_dump(out, args.output), end="")
    return 0


def cmd_crd(args: argparse.Namespace) -> int:
    print(yaml.safe_dump(crd(), sort_keys=False), end="")
    return 0


def cmd_reference(args: argparse.Namespace) -> int:
    from .api.reference import markdown

    print(markdown(), end="")
    return 0


def _config_file(path: str) -> OperatorConfig:
    """Operator settings from a YAML/JSON file: keys as FSO_ variables (FSO_GCP_PROJECT), snake_case
    or camelCase (gcpProject); the environment fills what the file leaves out."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise SpecError([(path, "an operator config file must be a mapping of settings")])

    def key(k: str) -> str:
        k = k.removeprefix("FSO_").removeprefix("fso_")
        return "".join("_" + c.lower() if c.isupper() and not k.isupper() else c.lower() for c in k).lstrip("_")

    return OperatorConfig(**{key(str(k)): v for k, v in data.items()})


def _install_note(doc: dict, config: OperatorConfig) -> str | None:
    """What a valid store still needs from the operator's installation (its Materialization condition
    would say so), for ``validate``."""
    from .render import compute

    return compute.chart_rbac_missing(parse_featurestore(doc), config.compute_enabled)


def cmd_validate(args: argparse.Namespace) -> int:
    """The operator's own admission check (api/review.py: model, config, admin policy)."""
    from .api.review import review

    config = _config_file(args.config) if args.config else _config()
    failed = False
    for doc in _load_manifests(args.filename):
        name = ((doc.get("metadata") or {}).get("name") if isinstance(doc, dict) else None) or "?"
        problems = review(doc, config)
        for path, msg in problems:
            print(f"error: featurestore/{name}: {path}: {msg}", file=sys.stderr)
        if not problems:
            print(f"featurestore/{name}: valid")
            note = _install_note(doc, config)
            if note:
                print(f"note: featurestore/{name}: {note}", file=sys.stderr)
        failed = failed or bool(problems)
    return 1 if failed else 0


def cmd_gsa(args: argparse.Namespace) -> int:
    """The Google service accounts the admin policy lets each namespace bind (spec.gcp.serviceAccount)."""
    from .api.policy import allowed_service_accounts

    config = _config_file(args.config) if args.config else _config()
    for ns in args.namespace:
        print(f"{ns}: {', '.join(allowed_service_accounts(config.effective_policy, ns))}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    # kopf logs in through the `kubernetes` package whenever it is importable (it is, where tests
    # run): 48 MiB of generated models for nothing. The operator logs in with kopf's own minimal
    # handlers (handlers.startup.login) and talks to the API with lightkube, so that package is
    # kept out of the operator process wherever it happens to be installed.
    sys.modules.setdefault("kubernetes", None)  # type: ignore[arg-type]
    from .handlers.main import run

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="featurestore-operator", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("render", help="print every object a FeatureStore manifest creates, without a cluster")
    r.add_argument("-f", "--filename", required=True, help="manifest file, or - for stdin")
    r.add_argument("-o", "--output", choices=["yaml", "json"], default="yaml")
    r.set_defaults(func=cmd_render)
    c = sub.add_parser("crd", help="print the FeatureStore CustomResourceDefinition")
    c.set_defaults(func=cmd_crd)
    ref = sub.add_parser("reference", help="print the FeatureStore field reference (Markdown)")
    ref.set_defaults(func=cmd_reference)
    v = sub.add_parser(
        "validate",
        help="check FeatureStore manifests against the model and the admin policy "
        "(FSO_* variables or --config); errors name the field, the rule and the fix",
    )
    v.add_argument("-f", "--filename", required=True)
    v.add_argument(
        "--config", default=None, help="operator settings file (YAML: FSO_* names or gcpProject, policy, ...)"
    )
    v.set_defaults(func=cmd_validate)
    g = sub.add_parser(
        "gsa", help="print the Google service accounts the admin policy lets a namespace bind (create those)"
    )
    g.add_argument("namespace", nargs="+")
    g.add_argument("--config", default=None, help="operator settings file (as for validate)")
    g.set_defaults(func=cmd_gsa)
    run = sub.add_parser("run", help="run the operator")
    run.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=None,
        help="watch only this namespace (repeatable); default: all (or FSO_NAMESPACES)",
    )
    run.add_argument(
        "--leader-election",
        default=None,
        metavar="LEASE",
        help="elect the acting replica with this Lease (default: FSO_LEADER_ELECTION; none)",
    )
    run.add_argument("--standalone", action="store_true", help="no leader election even if configured")
    run.set_defaults(func=cmd_run)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SpecError as err:
        for path, msg in err.problems:
            print(f"error: {path}: {msg}", file=sys.stderr)
        return 1
    except FileNotFoundError as err:
        print(f"error: {err.filename}: no such file", file=sys.stderr)
        return 1
    except (ValueError, Exception) as err:  # pydantic-settings config errors among them
        from pydantic import ValidationError

        if isinstance(err, ValidationError):
            for e in err.errors(include_url=False):
                field = "FSO_" + "_".join(str(x) for x in e["loc"]).upper()
                print(f"error: operator config {field}: {e['msg']}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
