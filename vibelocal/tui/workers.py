"""Bodies of the app's thread workers: stream a turn, load a model, download one; they only post Messages.

The stream pump coalesces tokens: at 2,000 tokens/s it posts about one batch per `BATCH_INTERVAL_S` instead of
one message per token, so the UI thread never falls behind.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from textual.message import Message

from vibelocal.engine.control import TurnControl
from vibelocal.tui import messages as m
from vibelocal.tui.wording import in_app_error
from vibelocal.types import ChatMessage, StreamEvent

if TYPE_CHECKING:
    from vibelocal.models.transfer import DownloadProgress

BATCH_INTERVAL_S = 1 / 30
"""Longest an answer token waits before being posted while tokens keep coming."""

THINKING_INTERVAL_S = 0.1
"""Longest a thinking token waits: the live tail repaints ten times a second, which reads as live, and each
repaint of the screen is CPU taken from the model on a laptop whose cores all decode."""

STATS_INTERVAL_S = 0.25
"""Running stats are posted at most this often."""

Post = Callable[[Message], Any]


def error_line(exc: BaseException) -> str:
    """One line for the user, in the app's words (no command-line flags): see vibelocal.tui.wording."""
    return in_app_error(exc)


def pump_turn(
    events: Iterable[StreamEvent],
    post: Post,
    turn: int,
    *,
    interval: float = BATCH_INTERVAL_S,
    thinking_interval: float = THINKING_INTERVAL_S,
    clock: Callable[[], float] = time.perf_counter,
) -> None:
    """Turn a stream of StreamEvents into batched Messages; always ends with TurnFinished (or raises)."""
    thinking: list[str] = []
    answer: list[str] = []
    think_tokens = 0
    answer_tokens = 0
    budget: int | None = None
    last_flush = clock()
    last_stats = float("-inf")

    def flush() -> None:
        nonlocal last_flush
        if thinking:
            post(m.ThinkingDelta(turn, "".join(thinking), think_tokens, budget))
            thinking.clear()
        if answer:
            post(m.AnswerDelta(turn, "".join(answer), answer_tokens))
            answer.clear()
        last_flush = clock()

    try:
        for ev in events:
            kind = ev.kind
            if kind == "thinking":
                thinking.append(ev.text)
                think_tokens = max(
                    think_tokens, ev.thinking_tokens
                )  # injected text (a wrap-up) counts nothing
                if ev.budget_tokens is not None:
                    budget = ev.budget_tokens
            elif kind == "answer":
                if thinking:
                    flush()  # the thinking panel must see its last words before the answer starts
                answer.append(ev.text)
                answer_tokens += 1
            elif kind == "reclassify":  # a bare </think>: what streamed as the answer was reasoning
                flush()
                think_tokens, answer_tokens = think_tokens + answer_tokens, 0
                post(m.AnswerReclassified(turn, think_tokens))
            elif kind == "budget":
                flush()
                budget = ev.budget_tokens
                think_tokens = max(think_tokens, ev.thinking_tokens)
                post(m.BudgetNote(turn, ev.note or "", think_tokens, budget))
            elif kind in ("loop", "status"):
                flush()
                post(m.TurnNotice(turn, ev.text))
            elif kind == "stats" and ev.stats is not None:
                now = clock()
                if now - last_stats >= STATS_INTERVAL_S:
                    last_stats = now
                    post(m.TurnStatsUpdate(turn, ev.stats))
            elif kind == "done":
                flush()
                post(m.TurnFinished(turn, ev.stop_reason or "answered", ev.stats, ev.truncated_thinking))
                return
            if clock() - last_flush >= (interval if answer else thinking_interval):
                flush()
    except BaseException:
        flush()  # what streamed before a failure is kept
        raise
    flush()
    post(m.TurnFinished(turn, "error", None, False))


def stream_turn(
    session: Any,
    engine_lock: threading.Lock,
    messages: list[ChatMessage],
    control: TurnControl,
    turn: int,
    post: Post,
    *,
    budget: Any = None,
    ref: str | None = None,
) -> None:
    """Worker body of one turn: make sure the model is loaded, then stream through the session.

    The engine lock is held for the whole turn, so a model switch asked for mid-reply (a load worker waiting
    on the lock) happens right after the reply ends, never under it."""
    try:
        with engine_lock:
            engine = session.engine(ref)
            settings = session.generation_settings(budget=budget)
            post(m.TurnBegan(turn, settings, engine.info))
            events = session.stream(messages, settings, control, ref=ref)
            try:
                pump_turn(events, post, turn)
            finally:
                close = getattr(events, "close", None)
                if close is not None:
                    close()  # the session is idle again before the lock is released
    except Exception as exc:  # a worker must report, never die silently
        post(m.TurnFailed(turn, error_line(exc)))


def load_engine(session: Any, engine_lock: threading.Lock, post: Post, *, ref: str | None = None) -> None:
    """Worker body: find the installed model (or report it missing) and load it."""
    try:
        with engine_lock:
            if session.remote:  # a --backend server: nothing to find or load here
                engine = session.engine()
                post(
                    m.EngineReady(engine.info, f"{engine.info.model_name or 'model'} on {engine.info.device}")
                )
                return
            model = session.find_installed(ref)
            if model is None:
                post(m.EngineFailed(f"{session.resolve(ref).display} is not installed", missing=True))
                return
            engine = session.engine(ref, model=model)
        post(m.EngineReady(engine.info, (session.model or model).label))
    except Exception as exc:
        post(m.EngineFailed(error_line(exc)))


def download_model(
    session: Any, post: Post, cancel: threading.Event, *, ref: str | None = None, interval: float = 0.1
) -> None:
    """Worker body: pull the model through the session, posting throttled progress."""
    last = 0.0

    def on_progress(progress: DownloadProgress) -> None:
        nonlocal last
        now = time.perf_counter()
        total = progress.total_bytes
        if now - last >= interval or (total and progress.downloaded_bytes >= total):
            last = now
            post(m.DownloadProgress(progress))

    try:
        model = session.pull(ref, progress=on_progress, cancel=cancel)
    except Exception as exc:
        post(m.DownloadFailed(error_line(exc), cancelled=cancel.is_set()))
        return
    post(m.DownloadFinished(model))
