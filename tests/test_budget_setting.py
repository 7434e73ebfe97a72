"""Parsing what users type for --budget."""

from __future__ import annotations

import pytest

from vibelocal.config import parse_budget
from vibelocal.errors import UsageError


@pytest.mark.parametrize(
    ("text", "tokens", "seconds"),
    [
        ("off", 0, None),
        ("low", 2048, None),
        ("medium", 8192, None),
        ("high", 24576, None),
        ("unlimited", None, None),
        ("HIGH", 24576, None),
        ("8000", 8000, None),
        ("2k", 2048, None),
        ("1.5k", 1536, None),
        ("0", 0, None),
        ("90s", None, 90.0),
        ("2m", None, 120.0),
        ("1m30s", None, 90.0),
        (" 45 s ", None, 45.0),
        (None, 8192, None),
        (500, 500, None),
    ],
)
def test_valid_budgets(text, tokens, seconds):
    spec = parse_budget(text)
    assert (spec.tokens, spec.seconds) == (tokens, seconds)


@pytest.mark.parametrize("text", ["", "lots", "-5", "2kk", "1.5", "0s", "k", "5 tokens", -1])
def test_malformed_budgets_are_usage_errors(text):
    with pytest.raises(UsageError) as err:
        parse_budget(text)
    assert err.value.exit_code == 2
    assert "budget" in str(err.value)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("9" * 400, "a number longer than 12 characters"),
        ("9" * 400 + "s", "a number longer than 12 characters"),
        ("9" * 400 + "k", "a number longer than 12 characters"),
        ("10000001", "'10000001': more than 10,000,000 tokens"),
        ("99999k", "'99999k': more than 10,000,000 tokens"),
        ("86401s", "86,401s is more than a day (86,400s)"),
        ("2000m", "120,000s is more than a day"),
        (10**400, "more than 10,000,000 tokens"),
    ],
)
def test_huge_budgets_are_one_line_usage_errors(text, fragment):
    with pytest.raises(UsageError) as err:
        parse_budget(text)
    assert err.value.exit_code == 2
    assert fragment in str(err.value)
    assert len(str(err.value)) < 200  # the 400 digits are not echoed back


def test_the_largest_budgets_are_accepted():
    assert parse_budget("10000000").tokens == 10_000_000
    assert parse_budget("1440m").seconds == 86_400.0
