"""The endpoints: health, models, chat completions, raw completions, and live control of a running turn."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from vibelocal import __version__
from vibelocal.engine.contract import ChatEngine
from vibelocal.serve import shapes, sse
from vibelocal.serve.access import LOG_KEY, PENDING_KEY
from vibelocal.serve.collect import Outcome, TurnReader
from vibelocal.serve.errors import ApiError, bad_request
from vibelocal.serve.requests import ServeDefaults, TurnRequest, chat_request, completion_request
from vibelocal.serve.turns import Job, TurnQueue, new_id

DISCONNECT_POLL_S = 0.25


@dataclass
class ServerState:
    """What every route reads: the defaults, the model (None while it loads) and the turn queue."""

    defaults: ServeDefaults
    model_id: str
    think_open: str = "<think>"
    engine: ChatEngine | None = None
    load_error: str | None = None
    max_waiting: int = 16
    """Requests that may wait behind the running ones; one more is a 429."""
    parallel: int = 1
    """Requests decoded at once (`--parallel N`), on an engine that can fork; otherwise one at a time."""
    started: int = field(default_factory=lambda: int(time.time()))
    queue: TurnQueue = field(init=False)

    def __post_init__(self) -> None:
        self.queue = TurnQueue(lambda: self.engine, max_waiting=self.max_waiting, parallel=self.parallel)


def error_response(err: ApiError) -> JSONResponse:
    headers = {"retry-after": "1"} if err.status in (429, 503) else None
    return JSONResponse(err.body(), status_code=err.status, headers=headers)


def _state(request: Request) -> ServerState:
    return request.app.state.vibelocal


async def health(request: Request) -> Response:
    state = _state(request)
    if state.engine is None:
        status = "error" if state.load_error else "loading"
        return JSONResponse({"status": status, "error": state.load_error}, status_code=503)
    q = state.queue
    return JSONResponse(
        {
            "status": "ok",
            "model": state.model_id,
            "busy": q.busy,
            "running": len(q.running),
            "parallel": q.slots,
            "waiting": q.waiting(),
            "served": q.served,
            # who answers: `--backend` clients (engine/remote/detect.py) recognise vibelocal serve by this
            "vibelocal": {"version": __version__, "n_ctx": state.engine.info.n_ctx},
        }
    )


async def models(request: Request) -> Response:
    state = _state(request)
    entry = {"id": state.model_id, "object": "model", "created": state.started, "owned_by": "vibelocal"}
    return JSONResponse({"object": "list", "data": [entry]})


async def _body(request: Request) -> Any:
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise bad_request("the request body is not valid JSON", code="invalid_json") from None


def _log(request: Request, job: Job, out: Outcome) -> None:
    s = out.stats
    request.scope[LOG_KEY] = {
        "id": job.id,
        "prompt": s.prompt_tokens,
        "cached": s.cached_tokens,
        "reasoning": s.thinking_tokens,
        "content": s.answer_tokens,
        "tok_s": s.decode_tok_s,
        "budget": s.budget_tokens
        if s.budget_tokens is not None
        else job.request.settings.max_thinking_tokens,
        "budget_hit": s.budget_hit,
        "stop": out.stop_reason,
    }


async def _until_done(reader: TurnReader, request: Request) -> Outcome:
    """Read a non-streaming turn to its end; a client that hangs up meanwhile cancels the decoding."""
    task = asyncio.ensure_future(reader.drain())
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
            if done:
                return task.result()
            if await request.is_disconnected():
                reader.job.control.cancel()
    finally:
        if not task.done():
            reader.job.control.cancel()
            await asyncio.shield(task)


async def _answer(
    request: Request,
    turn: TurnRequest,
    prefix: str,
    whole: Callable[[Job, Outcome, str], dict[str, Any]],
    stream: Callable[[TurnReader, str], AsyncIterator[bytes]],
) -> Response:
    """Queue the turn, then stream it as SSE or answer with one JSON object at its end."""
    state = _state(request)
    if state.engine is None:
        raise ApiError(503, "the model is still loading; retry shortly", code="model_loading")
    job = Job(new_id(prefix), turn, asyncio.get_running_loop())
    state.queue.submit(job)
    reader = TurnReader(job)

    async def logged() -> AsyncIterator[bytes]:
        try:
            async for chunk in sse.cancel_on_exit(stream(reader, state.model_id), reader):
                yield chunk
        finally:
            if reader.outcome.finished:
                _log(request, job, reader.outcome)
            else:  # cut short: the log line waits (outside this cancelled task) for the engine's final counts
                rest = asyncio.ensure_future(reader.rest())
                rest.add_done_callback(lambda f: _log(request, job, f.result()))
                request.scope[PENDING_KEY] = rest

    if turn.stream:
        headers = {"cache-control": "no-cache", "x-accel-buffering": "no"}
        return StreamingResponse(logged(), media_type="text/event-stream", headers=headers)
    out = await _until_done(reader, request)
    _log(request, job, out)
    return JSONResponse(whole(job, out, state.model_id))


async def chat_completions(request: Request) -> Response:
    turn = chat_request(await _body(request), _state(request).defaults)
    return await _answer(request, turn, "chatcmpl", shapes.chat_completion, sse.chat_stream)


async def completions(request: Request) -> Response:
    state = _state(request)
    turn = completion_request(await _body(request), state.defaults, state.think_open)
    return await _answer(request, turn, "cmpl", shapes.text_completion, sse.text_stream)


async def control(request: Request) -> Response:
    """`{"id", "action": "reasoning_end" | "extend" | "cancel", "tokens": N}` for a queued or running turn."""
    body = await _body(request)
    if not isinstance(body, dict) or not isinstance(body.get("id"), str):
        raise bad_request("id must be the id of a running completion", "id")
    job = _state(request).queue.find(body["id"])
    if job is None:
        raise ApiError(404, f"no running completion with id {body['id']!r}", param="id", code="not_found")
    action = body.get("action")
    if action == "reasoning_end":
        job.control.wrap_up()
    elif action == "extend":
        tokens = body.get("tokens", 2048)
        if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 1:
            raise bad_request(f"tokens must be a positive integer, got {tokens!r}", "tokens")
        job.control.extend(tokens)
    elif action == "cancel":
        job.control.cancel()
    else:
        raise bad_request(f"unknown action {action!r}: use reasoning_end, extend or cancel", "action")
    return JSONResponse({"id": job.id, "action": action, "ok": True})
