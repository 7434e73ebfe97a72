"""Checks shared by the engine tests."""

from __future__ import annotations

import llama_cpp

from vibelocal.engine.llama import LlamaEngine
from vibelocal.types import TurnStats


def llama_evaluated(engine: LlamaEngine) -> int:
    """Tokens llama.cpp has decoded in the engine's context so far, by its own performance counters."""
    ctx = engine._llm.ctx
    llama_cpp.llama_synchronize(ctx)  # llama.cpp adds a batch to its counters when it next synchronizes
    perf = llama_cpp.llama_perf_context(ctx)
    # batches of several tokens count in n_p_eval, single tokens in n_eval; llama.cpp reports a count that is
    # still 0 as 1 (it divides by it), and the time spent tells the two apart
    return (perf.n_p_eval if perf.t_p_eval_ms > 0 else 0) + (perf.n_eval if perf.t_eval_ms > 0 else 0)


def accounted(stats: TurnStats) -> int:
    """What a turn says llama.cpp evaluated: the uncached prompt, every generated and injected token, and the
    speculative drafts it rolled back."""
    return (
        stats.prompt_tokens
        - stats.cached_tokens
        + stats.thinking_tokens
        + stats.forced_tokens
        + stats.answer_tokens
        + stats.rejected_draft_tokens
    )


def assert_no_token_twice(engine: LlamaEngine, before: int, stats: TurnStats) -> None:
    """What llama.cpp decoded since `before` (a `llama_evaluated` reading taken before the turn) is exactly
    the uncached prompt plus every generated and injected token plus the rejected speculative drafts, and the
    turn's own count agrees."""
    decoded = llama_evaluated(engine) - before
    counted = accounted(stats)
    assert decoded == counted, f"llama.cpp decoded {decoded} tokens, the turn accounts for {counted}"
    assert stats.evaluated_tokens == decoded
