"""The decode loop of one turn: sample, split thinking from answer, apply the budget, inject, stream events.

It drives a `TokenBackend` (engine/llama/runtime.py implements it over llama.cpp) and holds no model itself, so
the per-token path is plain Python over small objects: no re-detokenizing, no scans of the whole text.
Every token it counts is evaluated exactly once, so `evaluated == prompt - cached + thinking + forced + answer`.

`TurnLoop` keeps one method per rule; each takes the token's `events` (appended in order) and, where text may be
injected, its `pending` tokens (evaluated together in one batch), and returns a stop reason or None.
"""

from __future__ import annotations

import codecs
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Protocol

from vibelocal.engine.budget import (
    FORCED_ANSWER_TEXT,
    MIN_THINKING_TEXT,
    WRAP_UP_TEXT,
    AnswerBudget,
    BudgetController,
    BudgetStep,
)
from vibelocal.engine.control import TurnControl
from vibelocal.engine.loops import LoopDetector
from vibelocal.engine.tags import ThinkTags
from vibelocal.engine.think import Piece, ThinkSplitter, ThinkState
from vibelocal.types import ChatFormat, GenerationSettings, StopReason, StreamEvent, TurnStats

STATS_EVERY_S = 1.0
"""A running `stats` event at most this often."""
_CHECK_EVERY = 16  # tokens between clock reads (stats, time budget)
_THINKING = ThinkState.THINKING
_ANSWER = ThinkState.ANSWER
_START = ThinkState.START
BARE_CLOSE_TEXT = (
    "the model closed its thinking without opening it; the text before </think> was its reasoning"
)
"""The status event of a bare `</think>` (a `reclassify` event moves the answer so far to the thinking)."""


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


class TurnLoop:
    """One turn's decode loop over a backend whose prompt is evaluated; `run()` streams its events (the last
    is `done`)."""

    def __init__(
        self,
        backend: TokenBackend,
        settings: GenerationSettings,
        control: TurnControl,
        stats: TurnStats,
        *,
        chat: ChatFormat,
        t_start: float,
        rate_hint: float | None = None,
        tags: ThinkTags | None = None,
    ) -> None:
        self.backend, self.settings, self.control, self.stats = backend, settings, control, stats
        self.tags = tags or ThinkTags(chat.think_open, chat.think_close)
        self.tag_ids = self.tags.ids()
        """Think tags that are single tokens: detected by id, injected as that id."""
        self.t_start = t_start
        self.splitter = ThinkSplitter(
            open_tag=chat.think_open, close_tag=chat.think_close, start=start_state(settings)
        )
        self.budget = BudgetController(
            settings.max_thinking_tokens,
            seconds=settings.thinking_time_s,
            rate_tok_s=rate_hint,
            grace=settings.grace_tokens,
            min_tokens=settings.min_thinking_tokens,
        )
        self.answer = AnswerBudget(settings.max_answer_tokens, force_boxed=settings.force_boxed)
        self.think_loops = LoopDetector() if settings.loop_detection else None
        self.answer_loops = LoopDetector() if settings.loop_detection else None
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.close_tag = chat.think_close
        self.close_text = f"\n{chat.think_close}\n\n"
        self.wrap_text = WRAP_UP_TEXT + chat.think_close + "\n\n"
        self.n_ctx = backend.n_ctx
        self.reserve = min(settings.max_answer_tokens, self.n_ctx // 4) + 48
        """Room kept for the answer: thinking that reaches it is wrapped up."""
        self.recent: deque[tuple[int, str]] | None = (
            deque(maxlen=16) if settings.min_thinking_tokens else None
        )
        """(n_past, text) of the last tokens, to roll back an early `</think>` (only with a minimum)."""
        self.sampled = 0
        """Tokens sampled and kept (the decode rate's numerator)."""
        self.undecided = 0
        """Tokens sampled before the splitter knew thinking from answer (whitespace, a split `<think>`)."""
        self.closed_on_stop = False
        self.deferred: list[int] | None = None
        """Tokens `step` leaves to evaluate after its events are handed on (`evaluate_deferred`)."""
        self.t_decode = self.next_stats = 0.0

    # ------------------------------------------------------------------ the loop

    def run(self) -> Iterator[StreamEvent]:
        """Generate until a stop; the last event is `done`. The single-sequence driver of `step`."""
        self.begin()
        step = self.step
        while True:
            events: list[StreamEvent] = []
            if step(events):
                yield from events
                return
            yield from events
            if (
                self.deferred is not None
            ):  # the close injected after a stop: evaluated once its events are out
                self.evaluate_deferred()

    def begin(self) -> None:
        """Start the clocks; call once before the first `step`."""
        self.stats.budget_tokens = self.budget.budget
        self.t_decode = time.perf_counter()
        self.next_stats = self.t_decode + STATS_EVERY_S

    def step(self, events: list[StreamEvent]) -> bool:
        """One token: sample it, apply the rules, hand what is to be evaluated to `backend.eval`; its events
        are appended to `events`. True when the turn is over (the last event is then `done`).

        A batched driver (engine/llama/batch.py) steps several loops, whose backends only queue the tokens
        `eval` gets, then decodes them all at once: nothing here samples between an `eval` and the next step.
        A driver calls `evaluate_deferred()` after handing the events on (a remote backend's `eval` is a
        new request: the consumer sees the events of a model's stop before it starts, as before)."""
        backend, stats = self.backend, self.stats
        n_past = backend.n_past
        stop = self.apply_commands(events) or self.check_context(n_past)
        if stop is None:
            token = backend.sample()
            if stats.ttft_s is None:
                stats.ttft_s = time.perf_counter() - self.t_start
            if backend.is_stop(token):
                pending: list[int] = []
                stop = self.model_stopped(events, pending)
                if stop is None:
                    self.deferred = pending  # evaluated by the driver after these events are handed on
                    return False
            else:
                stop = self.next_token(token, n_past, events)
        if stop is not None:
            events += self.flush()
            events.append(self.finish(stop))
            return True
        if self.sampled % _CHECK_EVERY == 0 and self.sampled:
            running = self.check_clock()
            if running is not None:
                events.append(running)
        return False

    def next_token(self, token: int, n_past: int, events: list[StreamEvent]) -> StopReason | None:
        """A sampled token that is not a stop: split it, apply the rules, evaluate it with anything injected."""
        self.sampled += 1
        text = self.decoder.decode(self.backend.piece(token))
        splitter = self.splitter
        thinking_before = splitter.state is _THINKING
        if self.recent is not None:
            self.recent.append((n_past, text))
        tag = self.tag_ids.get(token)
        pieces = splitter.tag(tag) if tag else splitter.feed(text) if text else ()
        early = self.early_close_at(pieces)
        pending: list[int] | None = [token]
        stands = early < 0  # False when an early </think> was rolled back with this token
        if stands:  # counted as thinking when it began or ended inside thinking (inline: the hot path)
            state = splitter.state
            if thinking_before or state is _THINKING:
                self.stats.thinking_tokens += 1
            elif state is _ANSWER:
                self.stats.answer_tokens += 1
            else:
                self.undecided += 1
            if self.undecided and state is not _START:
                self.settle(state)
            self.route(pieces, events)
        else:
            pending = self.take_back_close(pieces[:early], events)
            if pending is None:
                return "context_full"  # nothing re-added is evaluated
            text = ""
        stop: StopReason | None = None
        if splitter.state is _THINKING and text:
            stop = self.thinking_rules(text, events, pending)
        elif splitter.state is _ANSWER and stands:
            stop = self.answer_rules(text, events, pending)
        self.backend.eval(pending)  # as `evaluate`, inline
        self.stats.evaluated_tokens += len(pending)
        return stop

    # ------------------------------------------------------------------ rules

    def apply_commands(self, events: list[StreamEvent]) -> StopReason | None:
        """Commands from the front end: cancel stops; extend gives the budget more; wrap-up asks to answer."""
        cmds = self.control.take()
        if cmds.cancel:
            return "cancelled"
        if cmds.extend_tokens and (note := self.budget.extend(cmds.extend_tokens)):
            self.stats.budget_tokens = self.budget.budget
            events.append(self.budget_event(note))
        if cmds.wrap_up and self.splitter.state is not _ANSWER:
            self.budget.request_wrap_up()
        return None

    def check_context(self, n_past: int) -> StopReason | None:
        """A full context stops the turn; thinking that leaves too little room for the answer is wrapped up."""
        if n_past >= self.n_ctx:
            return "context_full"
        if (
            self.splitter.state is _THINKING
            and not self.budget.wrapped
            and n_past + self.reserve >= self.n_ctx
        ):
            self.budget.request_wrap_up(forced=True)
        return None

    def model_stopped(self, events: list[StreamEvent], pending: list[int]) -> StopReason | None:
        """The model ended its turn. Inside thinking, below the minimum it thinks on; else the think block is
        closed for it and the answer follows (once: a second stop ends the turn)."""
        if self.splitter.state is not _THINKING or self.closed_on_stop:
            return "answered"
        if not self.budget.close_allowed(self.stats.thinking_tokens):
            return self.think_on(events, pending)
        self.closed_on_stop = True
        if not self.inject(pending, self.close_text):
            return "context_full"
        events.append(
            StreamEvent("status", text="the model stopped inside its thinking; asking for the answer")
        )
        self.route(self.splitter.finish(), events)  # a held `<` is text, then the injected close
        self.splitter.feed(self.close_text)
        self.budget.wrap_up_now()
        return None

    def early_close_at(self, pieces: Sequence[Piece]) -> int:
        """Where in `pieces` a `</think>` comes that the minimum does not allow yet (-1: none). A `<think>` after
        the wrap-up reopens the budget."""
        budget = self.budget
        for i, (kind, _) in enumerate(pieces):
            if kind == "close" and not budget.close_allowed(self.stats.thinking_tokens):
                return i
            if kind == "open" and budget.wrapped:
                budget.reopen()
        return -1

    def take_back_close(self, before: Sequence[Piece], events: list[StreamEvent]) -> list[int] | None:
        """Undo an early `</think>`: stream the text before it, roll the cache back to where the tag began and
        think on. Returns the tokens to evaluate (None: the context cannot hold them)."""
        self.route(before, events)
        pending = self.roll_back_close()
        kept = len(pending)
        self.decoder.reset()
        if self.think_on(events, pending) is not None:
            return None  # nothing re-added is evaluated, so nothing is counted
        self.stats.forced_tokens += kept
        self.sampled -= 1
        return pending

    def think_on(self, events: list[StreamEvent], pending: list[int]) -> StopReason | None:
        """Below the minimum: inject MIN_THINKING_TEXT instead of a close or a stop."""
        if not self.inject(pending, MIN_THINKING_TEXT):
            return "context_full"
        self.budget.waited()
        events.append(self.budget_event("min_thinking"))
        self.route(self.splitter.feed(MIN_THINKING_TEXT), events)
        return None

    def thinking_rules(self, text: str, events: list[StreamEvent], pending: list[int]) -> StopReason | None:
        """After a thinking token: the loop nudge, else the budget; either may inject the wrap-up."""
        step = self.loop_nudge(text, events) or self.budget.step(self.stats.thinking_tokens, text)
        for note in step.notes:
            events.append(self.budget_event(note))
        if not step.wrap_up:
            return None
        if not self.inject(pending, self.wrap_text):
            return "context_full"
        self.route(self.splitter.feed(self.wrap_text), events)
        return None

    def loop_nudge(self, text: str, events: list[StreamEvent]) -> BudgetStep | None:
        """Thinking that loops is wrapped up at once (None: no loop)."""
        loop = self.think_loops.feed(text) if self.think_loops else None
        if not loop:
            return None
        self.stats.loop_shape = self.think_loops.shape  # type: ignore[union-attr]
        events.append(StreamEvent("loop", text=loop))
        return self.budget.wrap_up_now()

    def answer_rules(self, text: str, events: list[StreamEvent], pending: list[int]) -> StopReason | None:
        """After an answer token: a loop stops the turn, else the answer budget applies."""
        if self.answer_loops and text and (loop := self.answer_loops.feed(text)):
            self.stats.loop_shape = self.answer_loops.shape
            events.append(StreamEvent("loop", text=loop))
            return "loop"
        return self.answer_budget(text, events, pending)

    def answer_budget(self, text: str, events: list[StreamEvent], pending: list[int]) -> StopReason | None:
        """At the answer budget: stop, or force a `\\boxed{` on a math turn without one and close it in time."""
        verdict = self.answer.step(self.stats.answer_tokens, text)
        if verdict == "continue":
            return None
        if verdict == "force_boxed":
            events.append(self.budget_event("forced_answer"))
            self.stats.budget_hit = True
            if not self.inject(pending, FORCED_ANSWER_TEXT):
                return "context_full"
            self.answer.forced()
            events.append(StreamEvent("answer", text=FORCED_ANSWER_TEXT))
            return None
        if verdict == "close_box":
            if not self.inject(pending, "}"):
                return "context_full"
            events.append(StreamEvent("answer", text="}"))
            return "answered"
        return "answered" if self.answer.forcing else "budget_exhausted"

    # ------------------------------------------------------------------ helpers

    def settle(self, state: ThinkState) -> None:
        """The splitter decided: tokens sampled while it could not tell count where the output went."""
        if state is _THINKING:
            self.stats.thinking_tokens += self.undecided
        else:
            self.stats.answer_tokens += self.undecided
        self.undecided = 0

    def route(self, pieces: Sequence[Piece], events: list[StreamEvent]) -> None:
        """Thinking and answer text become events (tag markers do not; a bare `</think>` moves the answer so
        far, its tokens too, to the thinking)."""
        for kind, text in pieces:
            if kind == "bare_close":
                self.stats.thinking_tokens += self.stats.answer_tokens
                self.stats.answer_tokens = 0
                events += [StreamEvent("reclassify"), StreamEvent("status", text=BARE_CLOSE_TEXT)]
            if kind == "thinking":
                events.append(
                    StreamEvent(
                        "thinking",
                        text=text,
                        thinking_tokens=self.stats.thinking_tokens,
                        budget_tokens=self.budget.budget,
                    )
                )
            elif kind == "answer":
                events.append(StreamEvent("answer", text=text))

    def budget_event(self, note: str) -> StreamEvent:
        return StreamEvent(
            "budget",
            note=note,
            thinking_tokens=self.stats.thinking_tokens,
            budget_tokens=self.budget.budget,  # type: ignore[arg-type]
        )

    def inject(self, pending: list[int], text: str) -> bool:
        """Add the tokens of `text` to `pending` (one batch); False when the context cannot hold them."""
        extra = self.tags.encode(text, self.backend.tokenize)
        if self.backend.n_past + len(pending) + len(extra) > self.n_ctx:
            return False
        pending.extend(extra)
        self.stats.forced_tokens += len(extra)
        return True

    def evaluate_deferred(self) -> None:
        """Evaluate what `step` left for after its events (the injection after a model's stop)."""
        pending, self.deferred = self.deferred, None
        if pending is not None:
            self.evaluate(pending)

    def evaluate(self, pending: list[int]) -> None:
        self.backend.eval(pending)
        self.stats.evaluated_tokens += len(pending)

    def roll_back_close(self) -> list[int]:
        """Roll the KV cache back to the token where an early `</think>` began; return the tokens to re-add
        (the text of that token before the tag), the splitter back inside thinking."""
        recent = self.recent
        assert recent is not None
        joined = ""
        starts: list[tuple[int, int, str]] = []  # (n_past, offset in joined, text)
        for n_past, text in recent:
            starts.append((n_past, len(joined), text))
            joined += text
        at = joined.rfind(self.close_tag)
        keep = ""
        cut = starts[-1][0]
        for n_past, offset, text in starts:
            if offset <= at < offset + len(text) or (at < 0 and n_past == cut):
                cut = n_past
                keep = text[: max(0, at - offset)]
                break
        self.backend.rollback(cut)
        self.splitter.revert_close()
        recent.clear()
        return self.backend.tokenize(keep) if keep else []

    def check_clock(self) -> StreamEvent | None:
        """Every few tokens: feed the measured rate to a time budget; now and then a running `stats` event."""
        now = time.perf_counter()
        stats, spent = self.stats, now - self.t_decode
        if self.settings.thinking_time_s is not None and not self.budget.wrapped and now > self.t_decode:
            self.budget.set_rate(self.sampled / spent)
        if now < self.next_stats:
            return None
        self.next_stats = now + STATS_EVERY_S
        stats.decode_tok_s = self.sampled / spent if spent > 0 else None
        stats.budget_tokens = self.budget.budget
        stats.total_s = now - self.t_start
        return StreamEvent("stats", stats=replace(stats))

    def flush(self) -> list[StreamEvent]:
        """The end of the turn: text the splitter or the UTF-8 decoder still holds (a trailing `<`, a partial
        character) is streamed, and tokens the splitter never decided on count as answer."""
        events: list[StreamEvent] = []
        tail = self.decoder.decode(b"", final=True)
        self.route(self.splitter.feed(tail) if tail else [], events)
        self.route(self.splitter.finish(), events)
        if self.undecided:
            self.settle(_ANSWER)
        return events

    def finish(self, reason: StopReason) -> StreamEvent:
        """The `done` event: final timings and counts."""
        stats, now = self.stats, time.perf_counter()
        stats.total_s = now - self.t_start
        spent = now - self.t_decode
        stats.decode_tok_s = self.sampled / spent if self.sampled and spent > 0 else None
        stats.budget_tokens = self.budget.budget
        stats.budget_hit = stats.budget_hit or self.budget.hit
        truncated = self.splitter.truncated and self.splitter.opened > 0
        return StreamEvent("done", stop_reason=reason, stats=stats, truncated_thinking=truncated)
