"""Plain-terminal rendering of a turn's StreamEvents: thinking on stderr, the answer on stdout."""

from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import dataclass
from typing import TextIO

from vibelocal.answers.latex import Span
from vibelocal.answers.latex_stream import UnicodeStream
from vibelocal.types import StreamEvent, TurnStats

DIM, BOLD_GREEN, YELLOW, RESET = "\x1b[2m", "\x1b[1;32m", "\x1b[33m", "\x1b[0m"
CLEAR_LINE = "\r\x1b[2K"
COUNTER_INTERVAL_S = 0.1


@dataclass(frozen=True)
class RenderOptions:
    """What goes where; build it with `terminal_options` from the flags and the streams."""

    thinking_text: bool = False
    """Thinking text on stderr (dimmed on a TTY)."""
    live_counter: bool = False
    """A one-line counter on stderr instead of the thinking text (only on a TTY)."""
    answer: bool = True
    """The answer on stdout (False for --json, --answer-only and votes, which print at the end)."""
    unicode_answer: bool = False
    """LaTeX as Unicode on stdout."""
    unicode_thinking: bool = False
    """LaTeX as Unicode in the thinking on stderr."""
    color_out: bool = False
    color_err: bool = False
    notices: bool = True
    """Budget, loop and status notices as short stderr lines."""
    summary: bool = False
    """A closing stats line on stderr."""


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def terminal_options(
    *,
    hide_thinking: bool = False,
    show_thinking: bool = False,
    raw: bool = False,
    answer: bool = True,
    out: TextIO | None = None,
    err: TextIO | None = None,
    environ: dict[str, str] | None = None,
) -> RenderOptions:
    """Thinking shows on a TTY stderr unless hidden, elsewhere only with `show_thinking`; LaTeX becomes
    Unicode only on a TTY and never with `raw`; NO_COLOR turns styles off."""
    out, err = out or sys.stdout, err or sys.stderr
    env = os.environ if environ is None else environ
    out_tty, err_tty = _isatty(out), _isatty(err)
    no_color = bool(env.get("NO_COLOR")) or env.get("TERM") == "dumb"
    thinking_text = not hide_thinking and (err_tty or show_thinking)
    return RenderOptions(
        thinking_text=thinking_text,
        live_counter=err_tty and not thinking_text,
        answer=answer,
        unicode_answer=out_tty and not raw,
        unicode_thinking=err_tty and not raw,
        color_out=out_tty and not no_color,
        color_err=err_tty and not no_color,
        summary=err_tty,
    )


def format_count(n: int | None) -> str:
    return "∞" if n is None else f"{n:,}"


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def counter_line(
    tokens: int, budget: int | None, rate: float | None, elapsed: float, time_budget: float | None
) -> str:
    """`thinking 1,234/8,192 tok · 25.3 tok/s · ETA 4m47s` (a time budget shows the time left instead)."""
    parts = [
        f"thinking {format_count(tokens)}/{format_count(budget)} tok"
        if budget
        else f"thinking {tokens:,} tok"
    ]
    if rate:
        parts.append(f"{rate:.1f} tok/s")
    if time_budget:
        parts.append(f"{format_duration(max(0.0, time_budget - elapsed))} left")
    elif budget and rate:
        parts.append(f"ETA {format_duration(max(0, budget - tokens) / rate)}")
    return " · ".join(parts)


def notice_text(event: StreamEvent) -> str | None:
    """The short stderr line for a budget, loop or status event."""
    if event.kind == "loop":
        return f"loop detected{f' ({event.text})' if event.text else ''}: nudging the model to wrap up"
    if event.kind == "status":
        return event.text or None
    if event.kind != "budget":
        return None
    used, budget = format_count(event.thinking_tokens), format_count(event.budget_tokens)
    return {
        "warning": f"thinking at {used}/{budget} tokens",
        "wrap_up": f"thinking budget reached ({used}/{budget} tokens): wrapping up"
        if event.budget_tokens != 0
        else f"thinking is off (budget 0): closed after {used} tokens, answering",
        "extended": f"thinking budget extended to {budget} tokens",
        "forced_answer": "answer budget reached: forcing a final answer",
        "min_thinking": f"keeps thinking: only {used} tokens so far",
    }.get(event.note or "")


class StreamRenderer:
    """Turns one turn's events into terminal output. Call `handle` per event, then `finish` once."""

    def __init__(
        self,
        options: RenderOptions,
        *,
        out: TextIO | None = None,
        err: TextIO | None = None,
        time_budget_s: float | None = None,
    ) -> None:
        self.options = options
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self._time_budget = time_budget_s
        self._answer_stream = UnicodeStream() if options.unicode_answer else None
        self._thinking_stream = UnicodeStream() if options.unicode_thinking else None
        self._started = time.monotonic()
        self._first_thinking: float | None = None
        self._thinking_tokens = 0
        self._budget: int | None = None
        self._counter_shown = False
        self._counter_at = 0.0
        self._err_col = 0  # characters written on the current stderr line by the thinking stream
        self._err_tail = "\n"  # the last character of thinking written
        self._held_notes: list[str] = []  # notices waiting for the thinking to reach a sentence or line end
        self._answer_started = False
        self._answer_tail = ""
        self.stats: TurnStats | None = None
        self.stop_reason: str | None = None
        self._holding = False  # inside handle_batch: what goes to stderr is written once, at its end
        self._err_held: list[str] = []

    # ------------------------------------------------------------------ events

    def handle_batch(self, events: list[StreamEvent]) -> None:
        """Render a batch of events and flush once: one write to the terminal (and one wake-up of whatever
        reads it) per batch, not per token."""
        self._holding = True
        try:
            for event in events:
                self.handle(event)
        finally:
            self._holding = False
            self._flush_err()
            self._flush_out()

    def _err_write(self, text: str) -> None:
        """stderr writes straight through to its file: inside a batch the text is held and written once."""
        if self._holding:
            self._err_held.append(text)
        else:
            self.err.write(text)

    def _flush_err(self) -> None:
        if self._holding:
            return
        if self._err_held:
            held, self._err_held = "".join(self._err_held), []
            self.err.write(held)
        self.err.flush()

    def _flush_out(self) -> None:
        if not self._holding:
            self.out.flush()

    def handle(self, event: StreamEvent) -> None:
        if event.kind == "thinking":
            self._thinking(event)
        elif event.kind == "answer":
            self._answer(event.text)
        elif event.kind in ("budget", "loop", "status"):
            if event.budget_tokens is not None:
                self._budget = event.budget_tokens
            text = notice_text(event)
            if text and self.options.notices:
                self.notice(text)
        elif event.kind == "stats" and event.stats is not None:
            self.stats = event.stats
        elif event.kind == "done":
            self.stats = event.stats or self.stats
            self.stop_reason = event.stop_reason

    def _thinking(self, event: StreamEvent) -> None:
        now = time.monotonic()
        if self._first_thinking is None:
            self._first_thinking = now
        self._thinking_tokens = event.thinking_tokens or self._thinking_tokens + 1
        if event.budget_tokens is not None:
            self._budget = event.budget_tokens
        if self.options.thinking_text:
            if self._thinking_stream is None:
                self._write_thinking([Span(event.text)])
            else:
                self._write_thinking(self._thinking_stream.feed(event.text))
        elif self.options.live_counter and (now - self._counter_at >= COUNTER_INTERVAL_S):
            self._counter_at = now
            self._show_counter(now)

    def _show_counter(self, now: float) -> None:
        elapsed = now - (self._first_thinking or now)
        rate = self._thinking_tokens / elapsed if elapsed > 0.2 else None
        line = counter_line(self._thinking_tokens, self._budget, rate, now - self._started, self._time_budget)
        self._err_write(CLEAR_LINE + self._style_err(line, DIM))
        self._flush_err()
        self._counter_shown = True

    def _write_thinking(self, spans: list[Span]) -> None:
        text = "".join(s.text for s in spans)
        if not text:
            return
        while self._held_notes and (cut := line_boundary(text, self._err_tail)) is not None:
            head, text = text[:cut], text[cut:]  # the sentence or line ends here: the notes go in between
            self._write_err_text(head)
            if self._err_col:
                self._write_err_text("\n")
                text = text.lstrip(" \t")
            self._print_held_notes()
        self._write_err_text(text)

    def _write_err_text(self, text: str) -> None:
        if not text:
            return
        self._err_write(self._style_err(text, DIM))
        self._flush_err()
        last_nl = text.rfind("\n")
        self._err_col = len(text) - last_nl - 1 if last_nl >= 0 else self._err_col + len(text)
        self._err_tail = text[-1]

    def _end_thinking(self) -> None:
        if self._thinking_stream is not None:
            self._write_thinking(self._thinking_stream.flush())
        self._clear_err_line()
        self._print_held_notes()

    def _clear_err_line(self) -> None:
        if self._counter_shown:
            self._err_write(CLEAR_LINE)
            self._counter_shown = False
        elif self._err_col:
            self._err_write("\n")
        self._err_col = 0
        self._flush_err()

    def _answer(self, text: str) -> None:
        if not self._answer_started:
            text = text.lstrip()
            if not text:
                return
            self._answer_started = True
            self._end_thinking()
        if not self.options.answer or not text:
            return
        self._write_answer(self._answer_stream.feed(text) if self._answer_stream else [Span(text)])

    def _write_answer(self, spans: list[Span]) -> None:
        for span in spans:
            text = span.text
            if span.kind == "boxed":
                text = f"{BOLD_GREEN}{text}{RESET}" if self.options.color_out else f"[{text}]"
            self.out.write(text)
            if span.text:
                self._answer_tail = span.text[-1]
        self._flush_out()

    # ------------------------------------------------------------------ notices and the end

    def notice(self, text: str) -> None:
        """One short stderr line, not tangled with the thinking text or the counter: while the thinking is shown
        mid-line, the note waits for the sentence or the line to end, so that it never splits a sentence."""
        if self.options.thinking_text and self._err_col and not self._answer_started:
            self._held_notes.append(text)
            return
        self._clear_err_line()
        self._print_note(text)

    def _print_note(self, text: str) -> None:
        self._err_write(self._style_err(f"note: {text}", YELLOW) + "\n")
        self._flush_err()

    def _print_held_notes(self) -> None:
        notes, self._held_notes = self._held_notes, []
        for text in notes:
            self._print_note(text)

    def finish(self) -> None:
        """Flush held text, end stdout with a newline, and print the summary line when asked."""
        if not self._answer_started:
            self._end_thinking()
        if self.options.answer:
            if self._answer_stream is not None:
                self._write_answer(self._answer_stream.flush())
            if self._answer_started and self._answer_tail != "\n":
                self.out.write("\n")
                self._flush_out()
        if self.options.summary and self.stats is not None:
            self._err_write(self._style_err(summary_line(self.stats), DIM) + "\n")
            self._flush_err()

    def _style_err(self, text: str, style: str) -> str:
        return f"{style}{text}{RESET}" if self.options.color_err else text


_SENTENCE_END = re.compile(r"[.!?:;](?=\s)|\n")


def line_boundary(text: str, before: str) -> int | None:
    """Where in `text` (written after the character `before`) a sentence or a line ends: the index just after
    the newline, or after the sentence's last mark (a space after it follows); None when neither comes."""
    if before in ".!?:;" and text[:1] in (" ", "\t"):
        return 0
    m = _SENTENCE_END.search(text)
    return None if m is None else m.end()


def summary_line(stats: TurnStats) -> str:
    """`thought 1,234 tok · answered 56 tok · 25.3 tok/s · 48.2s`."""
    parts = [f"thought {stats.thinking_tokens:,} tok", f"answered {stats.answer_tokens:,} tok"]
    if stats.decode_tok_s:
        parts.append(f"{stats.decode_tok_s:.1f} tok/s")
    parts.append(f"{stats.total_s:.1f}s")
    return " · ".join(parts)
