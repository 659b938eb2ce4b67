"""`featurestore-operator` command line: render, crd, validate, run."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import yaml

from .api import OperatorConfig, SpecError, parse_featurestore, resolve
from .api.crd import crd
from .cli_files import Manifests, config_file, load, sources


def _manifests(args: argparse.Namespace) -> list[Manifests]:
    """Every -f source, loaded; a source without FeatureStores gets a note on stderr (not in JSON)."""
    out = [load(source) for source in sources(args.filename)]
    for m in out:
        if m.skipped and getattr(args, "output", "text") != "json":
            print(f"note: {m.source}: {m.skipped}", file=sys.stderr)
    return out


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


def _config(args: argparse.Namespace) -> OperatorConfig:
    return config_file(args.config) if args.config else OperatorConfig()


def cmd_render(args: argparse.Namespace) -> int:
    from .backends.planned import planned_endpoints
    from .render import RepoSource, render
    from .render.names import short_hash

    out: list[dict[str, Any]] = []
    config = _config(args)
    for doc in [d for m in _manifests(args) for d in m.stores]:
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


def _install_notes(doc: dict, config: OperatorConfig) -> list[str]:
    """What a valid store still needs from the operator's installation (its Materialization condition
    would say so), and where its notebooks retrieve historical data without Ray, for ``validate``."""
    from .render import compute, offline

    fs = parse_featurestore(doc)
    notes = (compute.chart_rbac_missing(fs, config.compute_enabled), offline.notebook_note(fs))
    return [n for n in notes if n]


def _check(doc: dict[str, Any], source: str, config: OperatorConfig) -> dict[str, Any]:
    """One FeatureStore's verdict: the operator's own admission check (api/review.py: model,
    config, admin policy) and what a valid store still needs from the installation."""
    from .api.review import review

    meta: dict[str, Any] = doc["metadata"] if isinstance(doc.get("metadata"), dict) else {}
    problems = review(doc, config)
    notes = [] if problems else _install_notes(doc, config)
    return {
        "file": source,
        "name": meta.get("name") or "?",
        "namespace": meta.get("namespace"),
        "valid": not problems,
        "errors": [{"field": path, "message": msg} for path, msg in problems],
        "notes": notes,
    }


def _print_verdict(v: dict[str, Any]) -> None:
    for e in v["errors"]:
        print(f"error: featurestore/{v['name']}: {e['field']}: {e['message']}", file=sys.stderr)
    if v["valid"]:
        print(f"featurestore/{v['name']}: valid")
    for note in v["notes"]:
        print(f"note: featurestore/{v['name']}: {note}", file=sys.stderr)


def cmd_validate(args: argparse.Namespace) -> int:
    """Every FeatureStore of every -f source, checked as the operator checks it."""
    if args.output == "json":
        try:
            config = _config(args)
        except SpecError as err:  # a bad --config file: still one JSON report
            errors = [{"file": args.config, "field": path, "message": msg} for path, msg in err.problems]
            print(json.dumps({"valid": False, "featureStores": [], "skipped": [], "errors": errors}, indent=2))
            return 1
        return _validate_json(args, config)
    config = _config(args)
    verdicts = [_check(doc, m.source, config) for m in _manifests(args) for doc in m.stores]
    for v in verdicts:
        _print_verdict(v)
    return 0 if all(v["valid"] for v in verdicts) else 1


def _validate_json(args: argparse.Namespace, config: OperatorConfig) -> int:
    """One JSON document for CI: every store's verdict, skipped files, and file-level errors."""
    report: dict[str, Any] = {"valid": True, "featureStores": [], "skipped": [], "errors": []}
    for source in sources(args.filename):
        try:
            m = load(source)
        except SpecError as err:
            report["errors"] += [{"file": source, "field": p, "message": msg} for p, msg in err.problems]
            continue
        if m.skipped:
            report["skipped"].append({"file": source, "note": m.skipped})
        report["featureStores"] += [_check(doc, source, config) for doc in m.stores]
    report["valid"] = not report["errors"] and all(v["valid"] for v in report["featureStores"])
    print(json.dumps(report, indent=2))
    return 0 if report["valid"] else 1


def cmd_gsa(args: argparse.Namespace) -> int:
    """The Google service accounts the admin policy lets each namespace bind (spec.gcp.serviceAccount)."""
    from .api.policy import allowed_service_accounts

    config = _config(args)
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


FILENAME_HELP = "manifest file, directory (its *.yaml, *.yml, *.json) or - for stdin; repeatable"
CONFIG_HELP = (
    "operator configuration file (YAML: FSO_* names, snake_case or camelCase keys; "
    "sample: examples/operator-config.yaml); default: the FSO_* environment"
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="featurestore-operator", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("render", help="print every object a FeatureStore manifest creates, without a cluster")
    r.add_argument("-f", "--filename", required=True, action="append", help=FILENAME_HELP)
    r.add_argument("-o", "--output", choices=["yaml", "json"], default="yaml")
    r.add_argument("--config", default=None, help=CONFIG_HELP)
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
    v.add_argument("-f", "--filename", required=True, action="append", help=FILENAME_HELP)
    v.add_argument("--config", default=None, help=CONFIG_HELP)
    v.add_argument(
        "-o", "--output", choices=["text", "json"], default="text", help="json: one report on stdout, for CI"
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
