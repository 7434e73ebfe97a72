"""Reasoning budgets: parsing what the user types (this file starts with it; the streaming state machines follow)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from vibelocal.errors import UsageError

PRESETS: dict[str, int | None] = {
    "off": 0,
    "low": 2048,
    "medium": 8192,
    "high": 24576,
    "unlimited": None,
}

_TOKENS = re.compile(r"^(?P<n>\d+(?:\.\d+)?)\s*(?P<k>[kK])?$")
_TIME = re.compile(r"^(?:(?P<m>\d+(?:\.\d+)?)\s*m(?:in)?)?\s*(?:(?P<s>\d+(?:\.\d+)?)\s*s(?:ec)?)?$")


@dataclass(frozen=True)
class BudgetSpec:
    """A thinking budget: tokens (None = unlimited, 0 = no thinking) or a time in seconds."""

    label: str
    tokens: int | None = None
    seconds: float | None = None

    @property
    def unlimited(self) -> bool:
        return self.tokens is None and self.seconds is None


def parse_budget(text: str | int | None) -> BudgetSpec:
    """`off|low|medium|high|unlimited`, `8000`, `2k` (= 2048), `90s`, `2m`, `1m30s`; UsageError otherwise."""
    if text is None:
        return BudgetSpec("medium", PRESETS["medium"])
    if isinstance(text, int):
        if text < 0:
            raise UsageError(f"invalid budget {text}: must be 0 or more")
        return BudgetSpec(str(text), text)
    raw = text.strip().lower()
    if raw in PRESETS:
        return BudgetSpec(raw, PRESETS[raw])
    if raw in {"none", "inf", "infinite", "unbounded"}:
        return BudgetSpec("unlimited", None)
    if m := _TOKENS.match(raw):
        value = float(m["n"]) * (1024 if m["k"] else 1)
        if not m["k"] and "." in m["n"]:
            raise UsageError(f"invalid budget {text!r}: a token count is a whole number")
        return BudgetSpec(raw, int(value))
    if raw and (m := _TIME.match(raw)) and (m["m"] or m["s"]):
        seconds = float(m["m"] or 0) * 60 + float(m["s"] or 0)
        if seconds <= 0:
            raise UsageError(f"invalid budget {text!r}: a time budget must be more than 0s")
        return BudgetSpec(raw, None, seconds)
    raise UsageError(
        f"invalid budget {text!r}: use off, low, medium, high, unlimited, a token count (8000, 2k) or a time (90s, 2m)"
    )
