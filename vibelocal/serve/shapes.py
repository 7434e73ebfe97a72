"""The OpenAI-shaped objects the server writes: completions, stream chunks, usage, and the `vibelocal` extension."""

from __future__ import annotations

import time
from typing import Any

from vibelocal.serve.collect import Outcome
from vibelocal.serve.turns import Job


def reasoning_fields(text: str, which: str, *, exclude: bool = False) -> dict[str, str]:
    """Thinking under `reasoning_content` (llama-server, LM Studio, DeepSeek) and/or `reasoning` (vLLM, Ollama,
    OpenRouter)."""
    if exclude:
        return {}
    if which == "both":
        return {"reasoning_content": text, "reasoning": text}
    return {which: text}


def usage(outcome: Outcome) -> dict[str, Any]:
    s = outcome.stats
    completion = s.thinking_tokens + s.answer_tokens
    return {
        "prompt_tokens": s.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": s.prompt_tokens + completion,
        "prompt_tokens_details": {"cached_tokens": s.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": s.thinking_tokens},
    }


def budget_echo(job: Job) -> dict[str, Any]:
    """The budget the request runs under, as sent before the first token."""
    req = job.request
    return {
        "budget_tokens": req.settings.max_thinking_tokens,
        "budget_seconds": req.settings.thinking_time_s,
        "budget_source": req.budget.source,
        "tools_ignored": req.tools_ignored,
    }


def extension(job: Job, outcome: Outcome) -> dict[str, Any]:
    """The `vibelocal` object: the effective budget, whether it was hit, why the turn stopped, the counts."""
    s = outcome.stats
    data = budget_echo(job)
    data.update(
        budget_tokens=s.budget_tokens
        if outcome.finished and s.budget_tokens is not None
        else data["budget_tokens"],
        budget_hit=s.budget_hit,
        stop_reason=outcome.stop_reason,
        thinking_tokens=s.thinking_tokens,
        answer_tokens=s.answer_tokens,
        forced_tokens=s.forced_tokens,
        evaluated_tokens=s.evaluated_tokens,
        cached_tokens=s.cached_tokens,
        ttft_s=None if s.ttft_s is None else round(s.ttft_s, 4),
        decode_tok_s=None if s.decode_tok_s is None else round(s.decode_tok_s, 2),
        seed=s.seed,
    )
    return data


def _head(job: Job, model: str, obj: str) -> dict[str, Any]:
    return {"id": job.id, "object": obj, "created": int(time.time()), "model": model}


def chat_completion(job: Job, outcome: Outcome, model: str) -> dict[str, Any]:
    req = job.request
    message = {"role": "assistant", "content": outcome.content}
    message.update(
        reasoning_fields(outcome.reasoning, req.reasoning_field, exclude=req.budget.exclude_reasoning)
    )
    choice = {"index": 0, "message": message, "finish_reason": outcome.finish_reason, "logprobs": None}
    return {
        **_head(job, model, "chat.completion"),
        "choices": [choice],
        "usage": usage(outcome),
        "vibelocal": extension(job, outcome),
    }


def chat_chunk(
    job: Job, model: str, delta: dict[str, Any] | None, finish_reason: str | None = None, **extra: Any
) -> dict[str, Any]:
    """One `chat.completion.chunk`; `delta=None` gives the usage chunk (no choices)."""
    chunk = _head(job, model, "chat.completion.chunk")
    chunk["choices"] = (
        []
        if delta is None
        else [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}]
    )
    chunk.update(extra)
    return chunk


def text_completion(job: Job, outcome: Outcome, model: str) -> dict[str, Any]:
    req = job.request
    choice: dict[str, Any] = {"index": 0, "text": outcome.content, "finish_reason": outcome.finish_reason}
    choice["logprobs"] = None
    choice.update(
        reasoning_fields(outcome.reasoning, req.reasoning_field, exclude=req.budget.exclude_reasoning)
    )
    return {
        **_head(job, model, "text_completion"),
        "choices": [choice],
        "usage": usage(outcome),
        "vibelocal": extension(job, outcome),
    }


def text_chunk(
    job: Job, model: str, text: str | None, finish_reason: str | None = None, **extra: Any
) -> dict[str, Any]:
    chunk = _head(job, model, "text_completion")
    chunk["choices"] = (
        [] if text is None else [{"index": 0, "text": text, "finish_reason": finish_reason, "logprobs": None}]
    )
    chunk.update(extra)
    return chunk
