"""The decode loop of one turn: sample, split thinking from answer, apply the budget, inject, stream events.

It drives a `TokenBackend` (engine/runtime.py implements it over llama.cpp) and holds no model itself, so the
per-token path is plain Python over small objects: no re-detokenizing, no scans of the whole text.
Every token it counts is evaluated exactly once, so `evaluated == prompt - cached + thinking + forced + answer`.
"""

from __future__ import annotations

import codecs
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import replace
from typing import Protocol

from vibelocal.engine.budget import (
    FORCED_ANSWER_TEXT,
    MIN_THINKING_TEXT,
    WRAP_UP_TEXT,
    AnswerBudget,
    BudgetController,
)
from vibelocal.engine.control import TurnControl
from vibelocal.engine.loops import LoopDetector
from vibelocal.engine.think import ThinkSplitter, ThinkState
from vibelocal.types import ChatFormat, GenerationSettings, StopReason, StreamEvent, TurnStats

STATS_EVERY_S = 1.0
"""A running `stats` event at most this often."""
_CHECK_EVERY = 16  # tokens between clock reads (stats, time budget)


class TokenBackend(Protocol):
    """What the loop needs from a loaded model whose prompt is already evaluated."""

    n_ctx: int

    @property
    def n_past(self) -> int:
        """Tokens in the KV cache."""
        ...

    def sample(self) -> int: ...

    def is_stop(self, token: int) -> bool: ...

    def piece(self, token: int) -> bytes: ...

    def tokenize(self, text: str) -> list[int]:
        """Plain text to tokens (no BOS, special tokens not parsed)."""
        ...

    def eval(self, tokens: list[int]) -> None:
        """Append tokens to the KV cache (and count them as evaluated)."""
        ...

    def rollback(self, n_past: int) -> None:
        """Drop KV entries from position `n_past` on."""
        ...


def start_state(settings: GenerationSettings) -> ThinkState:
    if settings.max_thinking_tokens == 0:
        return ThinkState.ANSWER
    return ThinkState.THINKING if settings.prefill_think else ThinkState.START


def decode_turn(
    backend: TokenBackend,
    settings: GenerationSettings,
    control: TurnControl,
    stats: TurnStats,
    *,
    chat: ChatFormat,
    t_start: float,
    rate_hint: float | None = None,
) -> Iterator[StreamEvent]:
    """Generate until a stop; the last event is `done`."""
    splitter = ThinkSplitter(
        open_tag=chat.think_open, close_tag=chat.think_close, start=start_state(settings)
    )
    budget = BudgetController(
        settings.max_thinking_tokens,
        seconds=settings.thinking_time_s,
        rate_tok_s=rate_hint,
        grace=settings.grace_tokens,
        min_tokens=settings.min_thinking_tokens,
    )
    answer = AnswerBudget(settings.max_answer_tokens, force_boxed=settings.force_boxed)
    think_loops = LoopDetector() if settings.loop_detection else None
    answer_loops = LoopDetector() if settings.loop_detection else None
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    close_text = f"\n{chat.think_close}\n\n"
    wrap_text = WRAP_UP_TEXT + chat.think_close + "\n\n"
    n_ctx = backend.n_ctx
    reserve = min(settings.max_answer_tokens, n_ctx // 4) + 48
    recent: deque[tuple[int, str]] | None = deque(maxlen=16) if settings.min_thinking_tokens else None
    stats.budget_tokens = budget.budget
    sampled = 0
    closed_on_stop = False
    t_decode = time.perf_counter()
    next_stats = t_decode + STATS_EVERY_S

    def finish(reason: StopReason) -> StreamEvent:
        tail = decoder.decode(b"", final=True)
        if tail:
            splitter.feed(tail)  # a dangling partial character; nothing useful to stream
        now = time.perf_counter()
        stats.total_s = now - t_start
        spent = now - t_decode
        stats.decode_tok_s = sampled / spent if sampled and spent > 0 else None
        stats.budget_tokens = budget.budget
        stats.budget_hit = stats.budget_hit or budget.hit
        truncated = splitter.truncated and splitter.opened > 0
        return StreamEvent("done", stop_reason=reason, stats=stats, truncated_thinking=truncated)

    def budget_event(note: str) -> StreamEvent:
        return StreamEvent(
            "budget",
            note=note,
            thinking_tokens=stats.thinking_tokens,
            budget_tokens=budget.budget,  # type: ignore[arg-type]
        )

    def inject(pending: list[int], text: str) -> bool:
        """Evaluate `pending` plus the tokens of `text` in one batch; False when the context cannot hold them."""
        extra = backend.tokenize(text)
        if backend.n_past + len(pending) + len(extra) > n_ctx:
            return False
        pending.extend(extra)
        stats.forced_tokens += len(extra)
        return True

    def route(pieces, events: list[StreamEvent]) -> None:
        for kind, text in pieces:
            if kind == "thinking":
                events.append(
                    StreamEvent(
                        "thinking",
                        text=text,
                        thinking_tokens=stats.thinking_tokens,
                        budget_tokens=budget.budget,
                    )
                )
            elif kind == "answer":
                events.append(StreamEvent("answer", text=text))

    while True:
        cmds = control.take()
        if cmds.cancel:
            yield finish("cancelled")
            return
        if cmds.extend_tokens and (note := budget.extend(cmds.extend_tokens)):
            stats.budget_tokens = budget.budget
            yield budget_event(note)
        if cmds.wrap_up and splitter.state is not ThinkState.ANSWER:
            budget.request_wrap_up()
        n_past = backend.n_past
        if n_past >= n_ctx:
            yield finish("context_full")
            return
        if splitter.state is ThinkState.THINKING and not budget.wrapped and n_past + reserve >= n_ctx:
            budget.request_wrap_up(forced=True)

        token = backend.sample()
        if stats.ttft_s is None:
            stats.ttft_s = time.perf_counter() - t_start

        if backend.is_stop(token):
            if splitter.state is not ThinkState.THINKING or closed_on_stop:
                yield finish("answered")
                return
            # The model ended its turn inside <think>: keep thinking below the minimum, else close and answer.
            pending: list[int] = []
            if not budget.close_allowed(stats.thinking_tokens):
                if not inject(pending, MIN_THINKING_TEXT):
                    yield finish("context_full")
                    return
                budget.waited()
                yield budget_event("min_thinking")
                events: list[StreamEvent] = []
                route(splitter.feed(MIN_THINKING_TEXT), events)
                yield from events
            else:
                closed_on_stop = True
                if not inject(pending, close_text):
                    yield finish("context_full")
                    return
                yield StreamEvent(
                    "status", text="the model stopped inside its thinking; asking for the answer"
                )
                splitter.feed(close_text)
                budget.wrap_up_now()
            backend.eval(pending)
            stats.evaluated_tokens += len(pending)
            continue

        sampled += 1
        text = decoder.decode(backend.piece(token))
        thinking_before = splitter.state is ThinkState.THINKING
        pending = [token]
        stands = True  # False when an early </think> was rolled back with this token
        events = []
        if recent is not None:
            recent.append((n_past, text))
        pieces = splitter.feed(text) if text else ()
        early = -1
        for i, (kind, _) in enumerate(pieces):
            if kind == "close" and not budget.close_allowed(stats.thinking_tokens):
                early = i
                break
            if kind == "open" and budget.wrapped:
                budget.reopen()
        if early >= 0:  # </think> before the minimum: take it back and think on
            route(pieces[:early], events)
            pending = _undo_close(backend, splitter, recent, chat.think_close)
            stats.forced_tokens += len(pending)
            stands = False
            decoder.reset()
            if not inject(pending, MIN_THINKING_TEXT):
                yield from events
                yield finish("context_full")
                return
            budget.waited()
            events.append(budget_event("min_thinking"))
            route(splitter.feed(MIN_THINKING_TEXT), events)
            text = ""
            sampled -= 1
        else:
            if thinking_before or splitter.state is ThinkState.THINKING:
                stats.thinking_tokens += 1
            else:
                stats.answer_tokens += 1
            route(pieces, events)
        stop: StopReason | None = None
        if splitter.state is ThinkState.THINKING and text:
            loop = think_loops.feed(text) if think_loops else None
            if loop:
                events.append(StreamEvent("loop", text=loop))
                step = budget.wrap_up_now()
            else:
                step = budget.step(stats.thinking_tokens, text)
            for note in step.notes:
                events.append(budget_event(note))
            if step.wrap_up:
                if inject(pending, wrap_text):
                    route(splitter.feed(wrap_text), events)
                else:
                    stop = "context_full"
        elif splitter.state is ThinkState.ANSWER and stands:
            if answer_loops and text and (loop := answer_loops.feed(text)):
                events.append(StreamEvent("loop", text=loop))
                stop = "loop"
            else:
                verdict = answer.step(stats.answer_tokens, text)
                if verdict == "force_boxed":
                    events.append(budget_event("forced_answer"))
                    stats.budget_hit = True
                    if inject(pending, FORCED_ANSWER_TEXT):
                        answer.forced()
                        events.append(StreamEvent("answer", text=FORCED_ANSWER_TEXT))
                    else:
                        stop = "context_full"
                elif verdict == "close_box":
                    stop = "answered" if inject(pending, "}") else "context_full"
                    if stop == "answered":
                        events.append(StreamEvent("answer", text="}"))
                elif verdict == "stop":
                    stop = "answered" if answer.forcing else "budget_exhausted"
        backend.eval(pending)
        stats.evaluated_tokens += len(pending)
        yield from events
        if stop:
            yield finish(stop)
            return
        if sampled % _CHECK_EVERY == 0 and sampled:
            now = time.perf_counter()
            if settings.thinking_time_s is not None and not budget.wrapped and now > t_decode:
                budget.set_rate(sampled / (now - t_decode))
            if now >= next_stats:
                next_stats = now + STATS_EVERY_S
                spent = now - t_decode
                stats.decode_tok_s = sampled / spent if spent > 0 else None
                stats.budget_tokens = budget.budget
                stats.total_s = now - t_start
                yield StreamEvent("stats", stats=replace(stats))


def _undo_close(
    backend: TokenBackend, splitter: ThinkSplitter, recent: deque[tuple[int, str]] | None, close_tag: str
) -> list[int]:
    """Roll the KV cache back to the token where an early `</think>` began; return the tokens to re-add
    (the text of that token before the tag), the splitter back inside thinking."""
    assert recent is not None
    joined = ""
    starts: list[tuple[int, int, str]] = []  # (n_past, offset in joined, text)
    for n_past, text in recent:
        starts.append((n_past, len(joined), text))
        joined += text
    at = joined.rfind(close_tag)
    keep = ""
    cut = starts[-1][0]
    for n_past, offset, text in starts:
        if offset <= at < offset + len(text) or (at < 0 and n_past == cut):
            cut = n_past
            keep = text[: max(0, at - offset)]
            break
    backend.rollback(cut)
    splitter.revert_close()
    recent.clear()
    return backend.tokenize(keep) if keep else []
