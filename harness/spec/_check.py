"""Checking the values of spec dataclasses against their annotations: one line naming `Class.field` on a mismatch."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from harness.errors import UserError


class SpecError(UserError):
    """A field of an experiment holds a value that cannot work; the loader prefixes the file name."""


def _check_types(obj: Any) -> None:
    """Reject values whose type contradicts the field annotation, naming `Class.field`."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value, hint = getattr(obj, f.name), hints[f.name]
        if not _matches(value, hint):
            shown = getattr(hint, "__name__", None) or str(hint).replace("harness.experiment.", "")
            raise SpecError(f"{type(obj).__name__}.{f.name} must be {shown}, got {type(value).__name__} {value!r:.80}")


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(hint))
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_matches(v, args[0]) for v in value)
        return len(args) == len(value) and all(_matches(v, a) for v, a in zip(value, args, strict=True))
    if hint is Any:
        return True
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is type(None):
        return value is None
    return isinstance(value, origin or hint)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise SpecError(message)
