"""The OpenAI shapes: which field carries the thinking, and how usage counts reasoning and cached tokens."""

from __future__ import annotations

import pytest

from vibelocal.serve.collect import Outcome
from vibelocal.serve.shapes import reasoning_fields, usage
from vibelocal.types import TurnStats


@pytest.mark.parametrize(
    ("which", "exclude", "fields"),
    [
        ("both", False, {"reasoning_content": "t", "reasoning": "t"}),
        ("reasoning_content", False, {"reasoning_content": "t"}),
        ("reasoning", False, {"reasoning": "t"}),
        ("both", True, {}),
    ],
)
def test_reasoning_fields(which, exclude, fields) -> None:
    assert reasoning_fields("t", which, exclude=exclude) == fields


def test_usage_counts_thinking_as_reasoning_tokens() -> None:
    stats = TurnStats(
        prompt_tokens=40, cached_tokens=30, thinking_tokens=12, answer_tokens=5, forced_tokens=28
    )
    u = usage(Outcome(stats=stats))
    assert u["completion_tokens"] == 17 and u["total_tokens"] == 57
    assert u["completion_tokens_details"] == {"reasoning_tokens": 12}
    assert u["prompt_tokens_details"] == {"cached_tokens": 30}
