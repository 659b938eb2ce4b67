"""Prepended (before the prelude) to the programs that only load Feast objects from the registry
(materialization, ``programs.feast_program(..., typechecks=False)``): Feast's ``@typechecked``
classes are left as defined, as ``python -O`` leaves them (asserts are kept here).

typeguard instruments each decorated class at import by parsing and recompiling its source: about
3.6 of the 6 CPU-seconds a materialization process spent before its first row (py-spy,
``bash hack/bench.sh compute --profile``), paid by every run and by every share of a fanned-out
run. The checks catch wrong argument types in feature definitions written by hand, so ``feast
apply`` and the servers keep them; a materialization run builds its views from the registry.
"""

from typing import Any

import typeguard as _typeguard


def _unchecked(target: Any = None, **_options: Any) -> Any:
    """``typechecked`` as typeguard defines it under ``python -O``: the target itself."""
    return _unchecked if target is None else target


_typeguard.typechecked = _unchecked
