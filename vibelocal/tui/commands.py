"""What a chat message may start with: `/budget 4k` sets the thinking budget of that message only (pure)."""

from __future__ import annotations

import re

from vibelocal.config import BudgetSpec, parse_budget
from vibelocal.errors import UsageError

_BUDGET = re.compile(r"^/budget\s+(?P<value>\S+)(?:\s+|$)", re.IGNORECASE)


def split_budget_prefix(text: str) -> tuple[BudgetSpec | None, str]:
    """(the budget a leading `/budget VALUE` names, the rest of the message); (None, text) without one.

    Raises ValueError with a sentence for the chat app (no command-line flag names) when VALUE is not a budget.
    """
    m = _BUDGET.match(text.lstrip())
    if m is None:
        return None, text
    try:
        budget = parse_budget(m["value"])
    except UsageError:
        raise ValueError(
            f"'{m['value']}' is not a budget: use off, low, medium, high, unlimited, tokens (4k, 8000) or a time (90s)"
        ) from None
    return budget, text.lstrip()[m.end() :].strip()
