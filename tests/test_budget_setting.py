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
