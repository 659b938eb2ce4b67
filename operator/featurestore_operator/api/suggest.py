""" "Did you mean ...": the field names a model accepts at a validation error's location, and the
nearest one to a misspelled key. Pure: reads the pydantic models only."""

from __future__ import annotations

import difflib
import types
from collections.abc import Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

#: pydantic's own location parts for union and validator branches: not user fields.
_INTERNAL = ("function-", "union[", "list[", "dict[", "tagged-union[")


def _members(tp: Any) -> list[Any]:
    """The types ``tp`` may be, Annotated and Optional unwrapped."""
    origin = get_origin(tp)
    if origin is Annotated:
        return _members(get_args(tp)[0])
    if origin is Union or origin is types.UnionType:
        return [m for arg in get_args(tp) if arg is not type(None) for m in _members(arg)]
    return [tp]


def _model_field(model: type[BaseModel], key: str) -> Any | None:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return info.annotation
    return None


def _step(tp: Any, part: str | int) -> Any | None:
    """The type found one location part below ``tp``, or None when the part leads nowhere."""
    for member in _members(tp):
        origin = get_origin(member)
        if isinstance(member, type) and issubclass(member, BaseModel) and isinstance(part, str):
            found = _model_field(member, part)
            if found is not None:
                return found
            if part == member.__name__:  # a union branch named by its class
                return member
        elif origin in (list, tuple, set, frozenset, Sequence) and isinstance(part, int):
            return get_args(member)[0] if get_args(member) else None
        elif origin is dict and isinstance(part, str):
            args = get_args(member)
            return args[1] if len(args) == 2 else None
    return None


def accepted_names(model: type[BaseModel], parent: Sequence[str | int]) -> list[str]:
    """The keys the model accepts at ``parent`` (a location without its last, unknown part):
    aliases as written in manifests, else field names."""
    tp: Any = model
    for part in parent:
        if isinstance(part, str) and part.startswith(_INTERNAL):
            continue
        tp = _step(tp, part)
        if tp is None:
            return []
    names: list[str] = []
    for member in _members(tp):
        if isinstance(member, type) and issubclass(member, BaseModel):
            names += [info.alias or name for name, info in member.model_fields.items()]
    return names


def did_you_mean(model: type[BaseModel], loc: Sequence[str | int]) -> str | None:
    """The accepted key nearest to the unknown last part of ``loc``, or None when none is close."""
    if not loc or not isinstance(loc[-1], str):
        return None
    names = accepted_names(model, loc[:-1])
    by_fold = {n.lower().replace("_", ""): n for n in names}
    typed = loc[-1].lower().replace("_", "")
    close = difflib.get_close_matches(typed, list(by_fold), n=1, cutoff=0.75)
    return by_fold[close[0]] if close else None
