"""Server-sent events in OpenAI's streaming format: `data: {chunk}` lines, then `data: [DONE]`.

The first chunk carries the role and the `vibelocal` budget echo (and the id live control needs), thinking goes
out as `reasoning_content`/`reasoning` deltas, the answer as `content`, the last choice chunk carries the
finish reason and the full `vibelocal` object, and `stream_options.include_usage` adds a usage chunk.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from vibelocal.serve import shapes
from vibelocal.serve.collect import TurnReader

DONE = b"data: [DONE]\n\n"


def event(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n\n"


async def chat_stream(reader: TurnReader, model: str) -> AsyncIterator[bytes]:
    job = reader.job
    req = job.request
    first = {"role": "assistant", "content": ""}
    yield event(shapes.chat_chunk(job, model, first, vibelocal=shapes.budget_echo(job)))
    async for d in reader.deltas():
        if d.kind == "reasoning":
            delta: dict[str, Any] = shapes.reasoning_fields(
                d.text, req.reasoning_field, exclude=req.budget.exclude_reasoning
            )
            if not delta:
                continue
        else:
            delta = {"content": d.text}
        yield event(shapes.chat_chunk(job, model, delta))
    out = reader.outcome
    yield event(shapes.chat_chunk(job, model, {}, out.finish_reason, vibelocal=shapes.extension(job, out)))
    if req.include_usage:
        yield event(shapes.chat_chunk(job, model, None, usage=shapes.usage(out)))
    yield DONE


async def text_stream(reader: TurnReader, model: str) -> AsyncIterator[bytes]:
    job = reader.job
    req = job.request
    yield event(shapes.text_chunk(job, model, "", vibelocal=shapes.budget_echo(job)))
    async for d in reader.deltas():
        if d.kind == "reasoning":
            fields = shapes.reasoning_fields(
                d.text, req.reasoning_field, exclude=req.budget.exclude_reasoning
            )
            if fields:
                chunk = shapes.text_chunk(job, model, "")
                chunk["choices"][0].update(fields)
                yield event(chunk)
            continue
        yield event(shapes.text_chunk(job, model, d.text))
    out = reader.outcome
    yield event(shapes.text_chunk(job, model, "", out.finish_reason, vibelocal=shapes.extension(job, out)))
    if req.include_usage:
        yield event(shapes.text_chunk(job, model, None, usage=shapes.usage(out)))
    yield DONE


async def cancel_on_exit(body: AsyncIterator[bytes], reader: TurnReader) -> AsyncIterator[bytes]:
    """Pass the stream through; if it stops early (the client went away), cancel the turn's decoding."""
    try:
        async for chunk in body:
            yield chunk
    finally:
        if not reader.outcome.finished:
            reader.job.control.cancel()
