"""LoopDetector: a pure streaming check for degenerate or looping reasoning, fed one chunk (token) at a time.

Three signals, each cheap per chunk (no scan of the whole text):
- one character repeated (`@@@@…`, the broken-GPU symptom), whitespace aside;
- the same sequence of chunks repeating back to back (a period of 1 to `max_period` tokens), checked every
  `check_every` chunks (a slice comparison per candidate period, so the per-chunk cost stays flat);
- the same long line coming back again and again (a paragraph-sized loop).
"""

from __future__ import annotations

from collections import deque


class LoopDetector:
    """Feed chunks with `feed`; it returns a description of the loop once one is found, else None."""

    def __init__(
        self,
        *,
        char_run: int = 40,
        max_period: int = 48,
        min_repeated_tokens: int = 48,
        min_repeats: int = 4,
        line_min_chars: int = 24,
        line_repeats: int = 4,
        line_window: int = 64,
        check_every: int = 8,
    ) -> None:
        self.char_run = char_run
        self.max_period = max_period
        self.min_repeated_tokens = min_repeated_tokens
        self.min_repeats = min_repeats
        self.line_min_chars = line_min_chars
        self.line_repeats = line_repeats
        self._last_char = ""
        self._char_count = 0
        self.check_every = check_every
        self._recent: list[str] = []
        self._keep = max(min_repeated_tokens, max_period * (min_repeats - 1)) + max_period + check_every
        self._unchecked = 0
        self._line = ""
        self._lines: deque[str] = deque(maxlen=line_window)
        self._line_counts: dict[str, int] = {}
        self.found: str | None = None

    def feed(self, chunk: str) -> str | None:
        if not chunk or self.found:
            return self.found
        found = self._chars(chunk) or self._period(chunk) or self._lines_of(chunk)
        if found:
            self.found = found
        return found

    # ------------------------------------------------------------------ signals

    def _chars(self, chunk: str) -> str | None:
        for ch in chunk:
            if ch.isspace():
                continue
            if ch == self._last_char:
                self._char_count += 1
                if self._char_count >= self.char_run:
                    return f"the character {ch!r} repeated {self._char_count} times"
            else:
                self._last_char = ch
                self._char_count = 1
        return None

    def _period(self, chunk: str) -> str | None:
        recent = self._recent
        recent.append(chunk)
        if len(recent) > 2 * self._keep:
            del recent[: -self._keep]
        self._unchecked += 1
        if self._unchecked < self.check_every:
            return None
        self._unchecked = 0
        n = len(recent)
        last = recent[-1]
        for p in range(1, self.max_period + 1):
            span = max(self.min_repeated_tokens, p * (self.min_repeats - 1))
            if span + p > n:
                break
            if recent[-1 - p] == last and recent[n - span :] == recent[n - span - p : n - p]:
                text = "".join(recent[n - p :]).strip()
                if p == 1:
                    return f"the token {text!r} repeated {span + 1} times"
                return f"a {p}-token sequence repeated {span // p + 1} times: {text[:60]!r}"
        return None

    def _lines_of(self, chunk: str) -> str | None:
        if "\n" not in chunk:
            if len(self._line) < 400:
                self._line += chunk
            return None
        head, *rest = chunk.split("\n")
        done = [self._line + head, *rest[:-1]]
        self._line = rest[-1]
        for line in done:
            line = line.strip()
            if len(line) < self.line_min_chars:
                continue
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
                return f"the line {line[:60]!r} repeated {count} times"
        return None
