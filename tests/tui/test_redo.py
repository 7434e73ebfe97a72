"""Which budget a regenerated reply gets: the stored one, or twice it."""

from __future__ import annotations

import pytest

from vibelocal.config import MAX_BUDGET_SECONDS, MAX_BUDGET_TOKENS, BudgetSpec, parse_budget
from vibelocal.tui.redo import bigger, budget_of

FALLBACK = parse_budget("medium")


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"budget": {"label": "4k", "thinking_tokens": 6144}}, BudgetSpec("4k", 4096)),
        ({"budget": {"label": "high"}}, BudgetSpec("high", 24576)),
        ({"budget": {"label": "90s"}}, BudgetSpec("90s", None, 90.0)),
        ({"budget": {"label": "nonsense"}}, FALLBACK),
        ({"error": "engine failed"}, FALLBACK),
        ({}, FALLBACK),
    ],
)
def test_budget_of_reads_the_stored_label(record, expected):
    assert budget_of(record, FALLBACK) == expected


@pytest.mark.parametrize(
    ("spec", "tokens", "seconds"),
    [
        ("medium", 16384, None),
        ("4k", 8192, None),
        ("off", 4096, None),
        ("unlimited", None, None),
        ("90s", None, 180.0),
        ("9000000", MAX_BUDGET_TOKENS, None),
        ("1000m", None, MAX_BUDGET_SECONDS),
    ],
)
def test_bigger_doubles_within_the_limits_and_its_label_parses_back(spec, tokens, seconds):
    more = bigger(parse_budget(spec))
    assert (more.tokens, more.seconds) == (tokens, seconds)
    assert parse_budget(more.label) == more
