"""What the spec knows of a cleaning rule: a HojiChar filter, given alone, in a list or tuple, or in a `Compose`."""

from __future__ import annotations

from typing import Any

from hojichar import Compose, Filter

Rule = Filter


def as_rules(value: Any) -> tuple[Rule, ...] | None:
    """A rule set given as a `Compose`, a list or a tuple of filters, as a tuple; None if it is none of these."""
    if isinstance(value, Compose):
        value = value.filters
    if isinstance(value, list | tuple) and all(isinstance(f, Filter) for f in value):
        return tuple(value)
    return None


def rule_name(rule: Rule) -> str:
    return type(rule).__name__
