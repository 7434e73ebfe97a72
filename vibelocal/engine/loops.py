"""LoopDetector: a pure streaming check for degenerate or looping reasoning, fed one chunk (token) at a time.

Five shapes, each cheap per chunk (bounded windows, no scan of the whole text):
- `character`: one character repeated (`@@@@…`, the broken-GPU symptom), whitespace aside;
- `token` / `sequence`: the same chunk, or the same run of 2 to `max_period` (256) chunks, repeating back to
  back `min_repeats` times (a 63-token sentence repeated on one line), checked every `check_every` (16) chunks
  over a window of `max_period * min_repeats` chunks: a cheap probe of a few positions per candidate period,
  then one slice comparison for the periods that pass it, so the per-chunk cost stays flat;
- `line`: the same long line coming back again and again within the last `line_window` lines;
- `block`: a block of up to `max_block_lines` lines (short ones too) repeating back to back `min_repeats` times.
"""

from __future__ import annotations

from collections import deque

SHAPES = ("character", "token", "sequence", "line", "block")
"""The names `LoopDetector.shape` takes (also `TurnStats.loop_shape`)."""


class LoopDetector:
    """Feed chunks with `feed`; it returns a description of the loop once one is found, else None (then
    `shape` says which of SHAPES fired)."""

    def __init__(
        self,
        *,
        char_run: int = 64,
        max_period: int = 256,
        min_repeated_tokens: int = 48,
        min_repeats: int = 4,
        line_min_chars: int = 24,
        line_repeats: int = 4,
        line_window: int = 64,
        max_block_lines: int = 32,
        block_min_chars: int = 40,
        check_every: int = 16,
    ) -> None:
        self.char_run = char_run
        self.max_period = max_period
        self.min_repeated_tokens = min_repeated_tokens
        self.min_repeats = min_repeats
        self.line_min_chars = line_min_chars
        self.line_repeats = line_repeats
        self.max_block_lines = max_block_lines
        self.block_min_chars = block_min_chars
        self._last_char = ""
        self._char_count = 0
        self.check_every = check_every
        self._recent: list[str] = []
        self._keep = max(min_repeated_tokens, max_period * (min_repeats - 1)) + max_period + check_every
        self._unchecked = 0
        self._line: list[str] = []
        self._line_len = 0
        self._lines: deque[str] = deque(maxlen=line_window)
        self._line_counts: dict[str, int] = {}
        self._block: list[str] = []
        """Recent non-empty lines, for the block check (bounded like `_recent`)."""
        self.found: str | None = None
        self.shape: str | None = None

    def feed(self, chunk: str) -> str | None:
        if not chunk or self.found:
            return self.found
        found = self._chars(chunk) or self._period(chunk) or self._lines_of(chunk)
        if found:
            self.shape, self.found = found
            return self.found
        return None

    # ------------------------------------------------------------------ signals

    def _chars(self, chunk: str) -> tuple[str, str] | None:
        for ch in chunk:
            if ch.isspace():
                continue
            if ch == self._last_char:
                self._char_count += 1
                if self._char_count >= self.char_run:
                    return "character", f"the character {ch!r} repeated {self._char_count} times"
            else:
                self._last_char = ch
                self._char_count = 1
        return None

    def _period(self, chunk: str) -> tuple[str, str] | None:
        recent = self._recent
        recent.append(chunk)
        if len(recent) > 2 * self._keep:
            del recent[: -self._keep]
        self._unchecked += 1
        if self._unchecked < self.check_every:
            return None
        self._unchecked = 0
        p = repeat_period(recent, self.max_period, self.min_repeats, self.min_repeated_tokens)
        if p is None:
            return None
        span = max(self.min_repeated_tokens, p * (self.min_repeats - 1))
        text = "".join(recent[len(recent) - p :]).strip()
        if p == 1:
            return "token", f"the token {text!r} repeated {span + 1} times"
        return "sequence", f"a {p}-token sequence repeated {span // p + 1} times: {text[:60]!r}"

    def _lines_of(self, chunk: str) -> tuple[str, str] | None:
        if "\n" not in chunk:
            if self._line_len < 400:
                self._line.append(chunk)
                self._line_len += len(chunk)
            return None
        head, *rest = chunk.split("\n")
        done = ["".join(self._line) + head, *rest[:-1]]
        self._line, self._line_len = [rest[-1]], len(rest[-1])
        for line in done:
            line = line.strip()
            if line and (found := self._block_of(line) or self._repeated_line(line)):
                return found
        return None

    def _repeated_line(self, line: str) -> tuple[str, str] | None:
        if len(line) < self.line_min_chars:
            return None
        if len(self._lines) == self._lines.maxlen:
            old = self._lines[0]
            left = self._line_counts[old] - 1
            if left:
                self._line_counts[old] = left
            else:
                del self._line_counts[old]
        self._lines.append(line)
        count = self._line_counts.get(line, 0) + 1
        self._line_counts[line] = count
        if count >= self.line_repeats:
            return "line", f"the line {line[:60]!r} repeated {count} times"
        return None

    def _block_of(self, line: str) -> tuple[str, str] | None:
        block = self._block
        block.append(line)
        keep = self.max_block_lines * self.min_repeats
        if len(block) > 2 * keep:
            del block[:-keep]
        p = repeat_period(block, self.max_block_lines, self.min_repeats, 0)
        if p is None or sum(len(x) for x in block[-p:]) < self.block_min_chars:
            return None
        return "block", f"a block of {p} lines repeated {self.min_repeats} times: {block[-p][:60]!r}"


def repeat_period(seq: list[str], max_period: int, repeats: int, min_span: int) -> int | None:
    """The shortest period p (up to `max_period`) with which the end of `seq` repeats back to back
    `repeats` times (and over at least `min_span` items), else None.

    A few positions are probed before the one slice comparison, so a non-repeating sequence costs about one
    comparison per candidate period.
    """
    n = len(seq)
    last = seq[-1]
    for p in range(1, max_period + 1):
        span = max(min_span, p * (repeats - 1))
        if span + p > n:
            return None
        if seq[-1 - p] != last or seq[n - span] != seq[n - span - p] or seq[-2] != seq[-2 - p]:
            continue
        if seq[n - span :] == seq[n - span - p : n - p]:
            return p
    return None
