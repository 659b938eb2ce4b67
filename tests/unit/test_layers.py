"""The layers of docs/concepts/design.md, from the source: every import of the operator package points
down the floors (handlers > reconcile > runtime > backends > render > api), runtime/ imports nothing
but api/ and the metrics module, and no module imports itself through others (no import circle,
``if TYPE_CHECKING:`` imports included). Read with ``ast``: nothing is imported to check it."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "featurestore_operator"
#: floor of each top-level package or module: an import may point to its own floor or below
FLOORS = {
    "api": 0,
    "metrics": 0,
    "render": 1,
    "store_metrics": 1,
    "backends": 2,
    "runtime": 3,
    "reconcile": 4,
    "handlers": 5,
    "cli_files": 5,
    "cli": 6,
    "__init__": 0,
}
#: what runtime/ may import besides itself: it knows controllers only through protocols
RUNTIME_MAY_IMPORT = {"runtime", "api", "metrics"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Modules of the package that ``name`` imports (a ``from X import y`` of a submodule y counts as y)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in known]
            found.update(subs)
            if len(subs) < len(node.names) and target in known:
                found.add(target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in known)
    return found - {name}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def floor(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def upward(edges: dict[str, set[str]]) -> list[str]:
    bad = []
    for source, targets in edges.items():
        for target in targets:
            a, b = floor(source), floor(target)
            if FLOORS[b] > FLOORS[a] or (a == "runtime" and b not in RUNTIME_MAY_IMPORT):
                bad.append(f"{source} -> {target}")
    return sorted(bad)


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, set()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in list(edges):
        if v not in index:
            visit(v)
    return out


def test_every_module_is_on_a_known_floor() -> None:
    assert {floor(m) for m in graph()} <= FLOORS.keys()


def test_no_import_points_up_a_floor_and_runtime_stands_alone() -> None:
    assert upward(graph()) == []


def test_no_import_circles() -> None:
    assert circles(graph()) == []


def test_the_checks_see_what_they_refuse() -> None:
    """The checker itself: an upward import, runtime importing render, and a circle are found."""
    edges: dict[str, set[str]] = {}
    edges["featurestore_operator.runtime.workers"] = {"featurestore_operator.reconcile.core"}
    edges["featurestore_operator.runtime.discovery"] = {"featurestore_operator.render"}
    edges["featurestore_operator.api.spec"] = {"featurestore_operator.api.compute"}
    edges["featurestore_operator.api.compute"] = {"featurestore_operator.api.spec"}
    assert upward(edges) == [
        "featurestore_operator.runtime.discovery -> featurestore_operator.render",
        "featurestore_operator.runtime.workers -> featurestore_operator.reconcile.core",
    ]
    assert circles(edges) == [["featurestore_operator.api.compute", "featurestore_operator.api.spec"]]
    # and the real graph is read: runtime's workers import its client facade
    assert "featurestore_operator.runtime.kube" in graph()["featurestore_operator.runtime.workers"]
