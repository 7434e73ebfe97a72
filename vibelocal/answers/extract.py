"""Final answers: the last `\\boxed{…}` (math) or fenced code block (code); a turn's collected output."""

from __future__ import annotations

import re

from vibelocal.answers.braces import closing_bracket
from vibelocal.types import StreamEvent, TurnStats

_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
_FENCE_OPEN = re.compile(r"^[ \t]{0,3}(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)$")


def extract_final_answer(text: str, kind: str = "math") -> str | None:
    """The final answer in `text` (the answer part of a turn, without thinking), or None when there is none.

    - math / other: the content of the last complete `\\boxed{…}` or `\\fbox{…}` (nested braces allowed).
    - code: the body of the last closed fenced block (```` ``` ```` or `~~~`), without the fences.
    """
    if kind == "code":
        return last_code_block(text)
    return last_boxed(text)


def boxed_contents(text: str) -> list[str]:
    """Every complete `\\boxed{…}` / `\\fbox{…}` content, in order; an unclosed one at the end is skipped."""
    found: list[str] = []
    pos = 0
    while m := _BOX.search(text, pos):
        end = closing_bracket(text, m.end() - 1)
        if end is None:
            break
        found.append(text[m.end() : end].strip())
        pos = end + 1
    return found


def last_boxed(text: str) -> str | None:
    boxes = [b for b in boxed_contents(text) if b]
    return boxes[-1] if boxes else None


def code_blocks(text: str) -> list[tuple[str, str]]:
    """Every closed fenced block as (info string, body), in order."""
    blocks: list[tuple[str, str]] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        m = _FENCE_OPEN.match(lines[i])
        if m is None:
            i += 1
            continue
        fence = m["fence"]
        close = re.compile(rf"^[ \t]{{0,3}}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        for j in range(i + 1, len(lines)):
            if close.match(lines[j]):
                blocks.append((m["info"].strip(), "\n".join(lines[i + 1 : j])))
                i = j + 1
                break
        else:
            break  # unclosed: the answer was cut off
    return blocks


def last_code_block(text: str) -> str | None:
    blocks = [body for _, body in code_blocks(text) if body.strip()]
    return blocks[-1] if blocks else None


class TextPieces:
    """Text that arrives in pieces: appending is O(1), reading joins once (and keeps the join)."""

    __slots__ = ("_pieces",)

    def __init__(self, text: str = "") -> None:
        self._pieces = [text] if text else []

    def append(self, text: str) -> None:
        if text:
            self._pieces.append(text)

    def text(self) -> str:
        if len(self._pieces) > 1:
            self._pieces = ["".join(self._pieces)]
        return self._pieces[0] if self._pieces else ""


class CollectedText:
    """`thinking` and `answer` of a turn, read from the pieces collected in `_thinking` and `_answer`."""

    _thinking: TextPieces
    _answer: TextPieces

    @property
    def thinking(self) -> str:
        return self._thinking.text()

    @property
    def answer(self) -> str:
        return self._answer.text()


class TurnRecord(CollectedText):
    """Everything one streamed turn produced, collected from its events (for --json, votes and exit codes).

    Thinking and answer text are collected as pieces and joined when read, so a long turn costs linear time.
    """

    def __init__(
        self,
        thinking: str = "",
        answer: str = "",
        stop_reason: str | None = None,
        stats: TurnStats | None = None,
        truncated_thinking: bool = False,
        notices: list[str] | None = None,
    ) -> None:
        self._thinking = TextPieces(thinking)
        self._answer = TextPieces(answer)
        self.stop_reason = stop_reason
        self.stats = stats if stats is not None else TurnStats()
        self.truncated_thinking = truncated_thinking
        self.notices = notices if notices is not None else []

    def __repr__(self) -> str:
        return f"TurnRecord(stop_reason={self.stop_reason!r}, answer={self.answer[:40]!r}…)"

    def add(self, event: StreamEvent) -> None:
        if event.kind == "thinking":
            self._thinking.append(event.text)
        elif event.kind == "answer":
            self._answer.append(event.text)
        elif event.kind == "reclassify":  # a bare </think>: the answer so far was reasoning
            self._thinking.append(self._answer.text())
            self._answer = TextPieces("")
        elif event.kind in ("budget", "loop", "status"):
            self.notices.append(event.note or event.text)
        elif event.kind == "stats" and event.stats is not None:
            self.stats = event.stats
        elif event.kind == "done":
            self.stop_reason = event.stop_reason
            self.truncated_thinking = event.truncated_thinking
            if event.stats is not None:
                self.stats = event.stats

    @property
    def budget_hit(self) -> bool:
        return self.stats.budget_hit

    def final_answer(self, kind: str) -> str | None:
        return extract_final_answer(self.answer, kind)
