"""Balanced brackets in LaTeX text: where a `{…}`, `(…)` or `[…]` group closes, how many `{` stay open."""

from __future__ import annotations

import re

_CLOSER = {"{": "}", "(": ")", "[": "]"}
# An escape (a backslash and the character after it) or a bracket of one kind, scanned left to right.
_SCAN = {
    opener: re.compile(rf"\\.|[{re.escape(opener + closer)}]", re.DOTALL)
    for opener, closer in _CLOSER.items()
}


def closing_bracket(text: str, open_at: int) -> int | None:
    """Index of the bracket closing the `{`, `(` or `[` at `open_at`, or None when the text ends first.

    Only brackets of the same kind nest. A backslash escapes the character after it: `\\{` and `\\}` (as in
    `\\left\\{ … \\right.`) and the `\\(` / `\\[` math delimiters neither open nor close, while `\\\\}` closes.
    """
    opener = text[open_at]
    closer = _CLOSER[opener]
    depth = 0
    for m in _SCAN[opener].finditer(text, open_at):
        if m.group() == opener:
            depth += 1
        elif m.group() == closer:
            depth -= 1
            if depth == 0:
                return m.start()
    return None


def open_braces(text: str) -> int:
    """How many `{` are still open at the end of `text`: escaped ones do not count, a stray `}` closes none."""
    depth = 0
    for m in _SCAN["{"].finditer(text):
        if m.group() == "{":
            depth += 1
        elif m.group() == "}":
            depth = max(0, depth - 1)
    return depth
