"""Regenerate and edit-and-resend: which budget a regenerated reply gets (pure)."""

from __future__ import annotations

from typing import Any

from vibelocal.config import MAX_BUDGET_SECONDS, MAX_BUDGET_TOKENS, BudgetSpec, parse_budget
from vibelocal.errors import UsageError

BIGGER_FACTOR = 2
""""Regenerate with a bigger budget" doubles the budget the last reply was asked with."""
BIGGER_FROM_OFF = 4096
"""A reply that had no thinking (`off`) is regenerated with this many thinking tokens."""


def budget_of(record: dict[str, Any], fallback: BudgetSpec) -> BudgetSpec:
    """The budget a stored reply was asked with (its record's budget label, so a `/budget 4k` message keeps its
    4k; Ctrl+B extensions are not carried over); `fallback` when the record names none that parses."""
    label = (record.get("budget") or {}).get("label")
    if isinstance(label, str):
        try:
            return parse_budget(label)
        except UsageError:
            pass
    return fallback


def bigger(spec: BudgetSpec) -> BudgetSpec:
    """Twice `spec` (tokens or seconds, within the limits `parse_budget` allows); off becomes 4k tokens and
    unlimited stays unlimited. The label parses back to the same budget."""
    if spec.unlimited:
        return spec
    if spec.seconds is not None:
        seconds = int(min(spec.seconds * BIGGER_FACTOR, MAX_BUDGET_SECONDS))
        return BudgetSpec(f"{seconds}s", None, float(seconds))
    tokens = min(max((spec.tokens or 0) * BIGGER_FACTOR, BIGGER_FROM_OFF), MAX_BUDGET_TOKENS)
    return BudgetSpec(str(tokens), tokens)
