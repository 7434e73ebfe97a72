"""Every client's budget field maps to the one turn budget; disagreements and bad values are 400s."""

from __future__ import annotations

import pytest

from vibelocal.config import BudgetSpec
from vibelocal.errors import UsageError
from vibelocal.serve.budgets import DEFAULT_EFFORT_TOKENS, choose_budget, parse_effort_map
from vibelocal.serve.errors import ApiError

SERVER = BudgetSpec("medium", 8192)


@pytest.mark.parametrize(
    ("body", "tokens", "source"),
    [
        ({}, 8192, "server"),
        ({"reasoning_effort": "none"}, 0, "reasoning_effort"),
        ({"reasoning_effort": "minimal"}, 512, "reasoning_effort"),
        ({"reasoning_effort": "LOW"}, 2048, "reasoning_effort"),
        ({"reasoning_effort": "high"}, 24576, "reasoning_effort"),
        ({"reasoning_effort": "xhigh"}, 32768, "reasoning_effort"),
        ({"reasoning_effort": "max"}, None, "reasoning_effort"),
        ({"reasoning": {"effort": "low"}}, 2048, "reasoning.effort"),
        ({"reasoning": {"max_tokens": 300}}, 300, "reasoning.max_tokens"),
        ({"reasoning": {"enabled": False}}, 0, "reasoning.enabled"),
        ({"reasoning": {"enabled": True}}, 8192, "server"),
        ({"thinking_budget_tokens": 64}, 64, "thinking_budget_tokens"),
        ({"reasoning_budget_tokens": -1}, None, "reasoning_budget_tokens"),
        ({"thinking_token_budget": 0}, 0, "thinking_token_budget"),
        ({"reasoning_effort": "low", "thinking_budget_tokens": 2048}, 2048, "reasoning_effort"),
        ({"reasoning_effort": None, "thinking_budget_tokens": None}, 8192, "server"),
    ],
)
def test_budget_fields_map_to_the_turn_budget(body, tokens, source) -> None:
    choice = choose_budget(body, SERVER)
    assert choice.spec.tokens == tokens
    assert choice.source == source


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"reasoning_effort": "extreme"}, "reasoning_effort", "unknown_effort"),
        ({"reasoning_effort": 3}, "reasoning_effort", "unknown_effort"),
        ({"reasoning": {"effort": "huge"}}, "reasoning.effort", "unknown_effort"),
        ({"reasoning": {"max_tokens": -5}}, "reasoning.max_tokens", "invalid_value"),
        ({"reasoning": {"budget": 5}}, "reasoning.budget", "invalid_value"),
        ({"reasoning": "high"}, "reasoning", "invalid_value"),
        ({"reasoning": {"enabled": "no"}}, "reasoning.enabled", "invalid_value"),
        ({"thinking_budget_tokens": "2k"}, "thinking_budget_tokens", "invalid_value"),
        ({"thinking_budget_tokens": 1.5}, "thinking_budget_tokens", "invalid_value"),
        ({"thinking_budget_tokens": True}, "thinking_budget_tokens", "invalid_value"),
        ({"reasoning_budget_tokens": -2}, "reasoning_budget_tokens", "invalid_value"),
        (
            {"reasoning_effort": "low", "thinking_budget_tokens": 100},
            "thinking_budget_tokens",
            "conflicting_budget",
        ),
        ({"reasoning": {"effort": "high", "max_tokens": 10}}, "reasoning.max_tokens", "conflicting_budget"),
    ],
)
def test_bad_or_conflicting_budgets_are_400s(body, param, code) -> None:
    with pytest.raises(ApiError) as info:
        choose_budget(body, SERVER)
    err = info.value
    assert err.status == 400
    assert err.param == param
    assert err.code == code
    assert err.body()["error"]["type"] == "invalid_request_error"


def test_reasoning_exclude_is_kept() -> None:
    assert choose_budget({"reasoning": {"exclude": True}}, SERVER).exclude_reasoning is True
    assert choose_budget({}, SERVER).exclude_reasoning is False


def test_effort_map_overrides_levels() -> None:
    table = parse_effort_map(["low=32", "high=16k", "minimal=unlimited"])
    assert table["low"] == 32
    assert table["high"] == 16384
    assert table["minimal"] is None
    assert table["medium"] == DEFAULT_EFFORT_TOKENS["medium"]
    assert choose_budget({"reasoning_effort": "low"}, SERVER, table).spec.tokens == 32


@pytest.mark.parametrize("item", ["low", "ultra=5", "low=abc", "low=90s", "=5"])
def test_bad_effort_map_is_a_usage_error(item) -> None:
    with pytest.raises(UsageError):
        parse_effort_map([item])
