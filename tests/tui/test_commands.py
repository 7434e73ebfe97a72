"""The `/budget VALUE` prefix of a chat message: a table of cases."""

from __future__ import annotations

import pytest

from vibelocal.tui.commands import split_budget_prefix


@pytest.mark.parametrize(
    ("text", "label", "tokens", "rest"),
    [
        ("/budget 4k What is 6*7?", "4k", 4096, "What is 6*7?"),
        ("  /BUDGET high\\nline two", "high", 24576, "line two"),
        ("/budget off hi", "off", 0, "hi"),
        ("/budget 90s think", "90s", None, "think"),
        ("/budget 2k", "2k", 2048, ""),
        ("What is /budget 4k?", None, None, "What is /budget 4k?"),
        ("/budgets 4k x", None, None, "/budgets 4k x"),
    ],
)
def test_the_prefix_sets_this_messages_budget(text, label, tokens, rest):
    text = text.replace("\\n", "\n")
    budget, remainder = split_budget_prefix(text)
    assert (budget.label if budget else None, budget.tokens if budget else None) == (label, tokens)
    assert remainder == rest


def test_a_bad_budget_is_a_sentence_without_flag_names():
    with pytest.raises(ValueError) as err:
        split_budget_prefix("/budget lots What?")
    assert "'lots' is not a budget" in str(err.value) and "--" not in str(err.value)
