"""Checks shared by the engine tests."""

from __future__ import annotations

from vibelocal.types import TurnStats


def assert_no_token_twice(stats: TurnStats) -> None:
    """What llama.cpp evaluated is exactly the uncached prompt plus every generated and injected token."""
    assert stats.evaluated_tokens == (
        stats.prompt_tokens
        - stats.cached_tokens
        + stats.thinking_tokens
        + stats.forced_tokens
        + stats.answer_tokens
    )
