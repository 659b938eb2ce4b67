"""Every dotted reference in the product's docstrings and comments points at something real: a
``reconcile.core.reconcile`` or :func:`~.inputs.secret_hash` that names a moved or renamed module,
function or constant fails here, naming the file and line.

A reference is a backticked dotted name whose first part is a top-level module of the package
(``reconcile.core.reconcile``, ``featurestore_operator.render.jobs``), or one in a Sphinx role
(:func:`~.inputs.secret_hash`, :data:`jobs.X`), resolved from the referring module's own package as
a reader would. A plain backticked ``spec.project`` or ``status.materialization`` is a field path, not
a reference, even where a module of that name sits next door."""

from __future__ import annotations

import ast
import importlib
import io
import pkgutil
import re
import tokenize
from pathlib import Path
from types import ModuleType

import featurestore_operator
import pytest

PACKAGE = Path(featurestore_operator.__file__).parent
#: backticked dotted names, Sphinx roles included (:func:`~.x.y`, ``a.b``, `a.b`)
REF = re.compile(r"(:\w+:)?`{1,2}~?(\.?[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)(?:\(\))?`{1,2}")
#: render/programs/*.py run in the Feast image: never imported here
NOT_IMPORTED = {PACKAGE / "render" / "programs"}


def _modules() -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py")) if not any(p.is_relative_to(d) for d in NOT_IMPORTED)]


def _dotted(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _texts(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every docstring and comment of a module."""
    source = path.read_text()
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node, clean=False)
            if doc and node.body:
                out.append((node.body[0].lineno, doc))
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            out.append((tok.start[0], tok.string))
    return out


def _submodules(package: str) -> set[str]:
    module = importlib.import_module(package)
    return {m.name for m in pkgutil.iter_modules(getattr(module, "__path__", []))}


def _resolve(dotted: str) -> bool:
    """Whether ``dotted`` names a module, or an attribute (chain) of one."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                if isinstance(obj, ModuleType):
                    return False
                annotations = getattr(obj, "__annotations__", {})
                fields = getattr(obj, "model_fields", {}) or getattr(obj, "__dataclass_fields__", {})
                return attr in annotations or attr in fields
            obj = getattr(obj, attr)
        return True
    return False


def _references() -> list[tuple[str, str, str]]:
    """(where, reference, candidate) for every reference to check."""
    top = _submodules("featurestore_operator")
    found = []
    for path in _modules():
        module = _dotted(path)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        local = _submodules(package)
        for line, text in _texts(path):
            for role, ref in REF.findall(text):
                head = ref.lstrip(".").split(".")[0]
                if ref.startswith("featurestore_operator."):
                    candidate = ref
                elif ref.startswith("."):
                    candidate = f"{package}{ref}"
                elif role and head in local:
                    candidate = f"{package}.{ref}"
                elif head in top:
                    candidate = f"featurestore_operator.{ref}"
                else:
                    continue  # a spec path (spec.tls), a file name, another library
                found.append((f"{path.relative_to(PACKAGE.parent)}:{line}", ref, candidate))
    return found


REFS = _references()


def test_the_package_has_many_references():
    assert len(REFS) > 20, REFS


def test_every_reference_resolves():
    broken = [f"{where}: {ref} ({candidate})" for where, ref, candidate in REFS if not _resolve(candidate)]
    assert not broken, "references to nothing:\n" + "\n".join(broken)


@pytest.mark.parametrize("bad", ["reconcile.core.no_such_step", "render.nowhere.x", "api.spec.FeatureStoreSpec.nope"])
def test_a_wrong_reference_is_caught(bad: str):
    assert not _resolve(f"featurestore_operator.{bad}")
