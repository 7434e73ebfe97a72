"""ThinkSplitter: a pure streaming state machine separating `<think>…</think>` reasoning from the answer.

Fed decoded text one chunk at a time (any split: a tag may arrive one character per chunk), it returns
`Piece`s: thinking text, answer text, and `open` / `close` markers where a tag was consumed. Tags never
appear in the text it returns.

Rules (modelled on ollama's thinking parser, with one deliberate difference noted below):
- Before anything is decided, whitespace is held; `<think>` first means thinking, anything else means the
  whole output is answer (no thinking at all).
- Whitespace right after `<think>` and right after `</think>` is dropped (blocks start clean).
- A `<think>` inside thinking is dropped (no nesting), and the whitespace after it too (a model that repeats a
  prefilled `<think>` starts its block as clean as the first). A `</think>` in the answer is dropped: it never leaks.
- A bare `</think>` (no `<think>` before it, as llama.cpp and vLLM read it): the answer so far was reasoning. The
  splitter says so with a `bare_close` marker; what follows is the answer.
- A second `<think>` after the answer began reopens thinking (ollama would print it as content); the engine
  counts that block against the same per-turn budget, so reasoning never pollutes the answer.
- The end of a chunk that may be the start of a tag is held until the next chunk disambiguates it;
  `finish()` releases it as plain text.
- `tag(kind)` takes a tag that came as its own token (detected by id): held text before it is plain text.
"""

from __future__ import annotations

from enum import Enum
from typing import Literal, NamedTuple

PieceKind = Literal["thinking", "answer", "open", "close", "bare_close"]


class Piece(NamedTuple):
    """One output of the splitter: text of a channel, or a tag marker (`open` / `close` / `bare_close`, empty
    text; `bare_close`: a `</think>` with no `<think>` before it, so the answer so far was reasoning)."""

    kind: PieceKind
    text: str = ""


class ThinkState(Enum):
    """Where the splitter is in the output."""

    START = "start"
    """Nothing but whitespace (or part of `<think>`) seen yet."""
    THINKING = "thinking"
    ANSWER = "answer"


class ThinkSplitter:
    """Split streamed text into thinking and answer. `start` lets a turn begin inside thinking (prefill)
    or directly in the answer (an empty think block was prefilled)."""

    def __init__(
        self,
        *,
        open_tag: str = "<think>",
        close_tag: str = "</think>",
        start: ThinkState = ThinkState.START,
    ) -> None:
        self.open_tag = open_tag
        self.close_tag = close_tag
        self.state = start
        self.opened = 1 if start is ThinkState.THINKING else 0
        """Think blocks entered (a prefilled `<think>` counts)."""
        self.closed = 0
        """`</think>` tags consumed while thinking (or bare)."""
        self.bare_close = False
        """A `</think>` came with no `<think>` before it: the answer before it was reasoning."""
        self._held = ""
        self._eat_ws = True
        self._tail = max(len(open_tag), len(close_tag)) - 1
        self._tag_chars = set(open_tag[0] + close_tag[0])

    @property
    def thinking(self) -> bool:
        return self.state is ThinkState.THINKING

    @property
    def truncated(self) -> bool:
        """Reasoning began and `</think>` never came."""
        return self.state is ThinkState.THINKING

    def feed(self, chunk: str) -> list[Piece]:
        """Consume one chunk of text; return what can be decided now."""
        if self._held:
            chunk = self._held + chunk
            self._held = ""
        out: list[Piece] = []
        while chunk:
            if self._eat_ws:
                chunk = chunk.lstrip()
                if not chunk:
                    break
                self._eat_ws = False
            if self.state is ThinkState.START:
                chunk = self._feed_start(chunk, out)
            else:
                chunk = self._feed_block(chunk, out)
        return out

    def finish(self) -> list[Piece]:
        """End of output: release held text (a partial tag is just text)."""
        held, self._held = self._held, ""
        if not held or self._eat_ws and not held.strip():
            return []
        if self.state is ThinkState.START:
            self.state = ThinkState.ANSWER
        kind: PieceKind = "thinking" if self.state is ThinkState.THINKING else "answer"
        return [Piece(kind, held)]

    def tag(self, kind: Literal["open", "close"]) -> list[Piece]:
        """A tag that came as a token of its own: what was held before it is text, then the tag applies."""
        return self.finish() + self.feed(self.open_tag if kind == "open" else self.close_tag)

    def revert_close(self) -> None:
        """Undo the last `</think>` (the engine replaced it with more thinking): back inside thinking."""
        if self.state is ThinkState.ANSWER and self.closed:
            self.closed -= 1
        self.state = ThinkState.THINKING
        self._held = ""
        self._eat_ws = False

    # ------------------------------------------------------------------ internals

    def _feed_start(self, chunk: str, out: list[Piece]) -> str:
        if chunk.startswith(self.open_tag):
            self._enter_thinking(out)
            return chunk[len(self.open_tag) :]
        if self.open_tag.startswith(chunk):
            self._held = chunk
            return ""
        self.state = ThinkState.ANSWER
        return chunk

    def _enter_thinking(self, out: list[Piece]) -> None:
        self.state = ThinkState.THINKING
        self.opened += 1
        self._eat_ws = True
        out.append(Piece("open"))

    def _feed_block(self, chunk: str, out: list[Piece]) -> str:
        kind: PieceKind = "thinking" if self.state is ThinkState.THINKING else "answer"
        i_open = chunk.find(self.open_tag)
        i_close = chunk.find(self.close_tag)
        if i_open < 0 and i_close < 0:
            hold = self._partial_tag_suffix(chunk)
            text = chunk[: len(chunk) - hold] if hold else chunk
            if hold:
                self._held = chunk[len(chunk) - hold :]
            if text:
                out.append(Piece(kind, text))
            return ""
        is_close = i_open < 0 or (0 <= i_close < i_open)
        at = i_close if is_close else i_open
        if at:
            out.append(Piece(kind, chunk[:at]))
        rest = chunk[at + len(self.close_tag if is_close else self.open_tag) :]
        if is_close and self.state is ThinkState.THINKING:
            self.state = ThinkState.ANSWER
            self.closed += 1
            self._eat_ws = True
            out.append(Piece("close"))
        elif is_close and not self.opened and not self.closed:
            self._bare_close(out)
        elif not is_close and self.state is ThinkState.ANSWER:
            self._enter_thinking(out)
        elif not is_close:  # a repeated `<think>` inside thinking: dropped with the whitespace after it
            self._eat_ws = True
        return rest

    def _bare_close(self, out: list[Piece]) -> None:
        self.closed += 1
        self.bare_close = True
        self._eat_ws = True
        out.append(Piece("bare_close"))

    def _partial_tag_suffix(self, chunk: str) -> int:
        """Length of the longest end of `chunk` that is a proper beginning of a tag (0 if none)."""
        window = chunk[-self._tail :]
        if not any(c in window for c in self._tag_chars):
            return 0
        for k in range(min(len(chunk), self._tail), 0, -1):
            end = chunk[-k:]
            if self.close_tag.startswith(end) or self.open_tag.startswith(end):
                return k
        return 0
