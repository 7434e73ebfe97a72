"""The shape of one side of an answer check: one value or a list of values, their variable names, and chains.

- A list is split at top-level commas, semicolons, `or`, `and` and `\\quad` (never inside brackets, so `(1, 2)`
  and `[1, 2)` stay one value); a set `\\{1, 2\\}` is the list of its elements.
- `x = 3` is the value 3 named x. `\\pm` (and `\\mp`) expands to both values: `1 \\pm \\sqrt{2}` is a list of two.
- A chain `6 \\times 7 = 42` (parts joined by `=`, every part a constant) holds only if every link is true; its
  value is the last part. A part with a letter in it makes an equation (`x + y = 5`), which is left whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_VALUES = 32
"""A side with more values than this is refused (it bounds the pairwise comparisons)."""


@dataclass(frozen=True)
class Value:
    """One value of a side: its LaTeX, and the variable it was given to (`x` in `x = 3`), if any."""

    text: str
    name: str = ""


@dataclass(frozen=True)
class Side:
    """What one side states: its values, and the chain links (left, right) that must hold for it to mean anything."""

    values: tuple[Value, ...]
    links: tuple[tuple[str, str], ...] = ()

    @property
    def is_list(self) -> bool:
        return len(self.values) > 1


_WORD_SEPARATOR = re.compile(
    r"\\text\s*\{\s*(?:or|and|,)\s*\}|\\(?:q?quad)\b|(?<![\\A-Za-z])(?:or|and)(?![A-Za-z])|\\(?:lor|vee)\b"
)
_OPENERS, _CLOSERS = "([{", ")]}"
_NAME = re.compile(r"^\s*([A-Za-z](?:_\{?[A-Za-z0-9]+\}?)?)\s*=(?!=)")
_SET = re.compile(r"^\s*(?:\\left)?\s*\\\{(.*?)\s*(?:\\right)?\s*\\\}\s*$", re.DOTALL)
_CHAIN_EQUALS = re.compile(r"(?<![<>!:=\\])=(?!=)")
_RELATION = re.compile(r"<|>|\\[lg]eq?\b|\\ne(?:q)?\b|\\approx\b|\\sim\b|\\equiv\b|\\in\b|\\mid\b|\|")


def split_top_level(text: str, separators: str = ",;") -> list[str]:
    """Split at separator characters outside every bracket (`(`, `[`, `{` open; `)`, `]`, `}` close any kind)."""
    parts: list[str] = []
    depth, start = 0, 0
    for i, ch in enumerate(text):
        if ch in _OPENERS:
            depth += 1
        elif ch in _CLOSERS:
            depth = max(0, depth - 1)
        elif ch in separators and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _elements(text: str) -> list[str]:
    parts = [p.strip() for p in split_top_level(_WORD_SEPARATOR.sub(",", text))]
    parts = [p for p in parts if p]
    m = _SET.match(parts[0]) if len(parts) == 1 else None
    if m and "\\}" not in m.group(1) and not _RELATION.search(m.group(1)):
        inner = [p.strip() for p in split_top_level(m.group(1))]
        return [p for p in inner if p]
    return parts


def constant(text: str) -> bool:
    """No variable in it: only numbers, operators and LaTeX commands (`\\pi` and `\\sqrt` are constants)."""
    return bool(text.strip()) and not re.search(r"[A-Za-z]", re.sub(r"\\[A-Za-z]+", "", text))


def _expand_pm(text: str) -> list[str]:
    if not re.search(r"\\(?:pm|mp)\b", text):
        return [text]
    plus = re.sub(r"\\pm\b", "+", re.sub(r"\\mp\b", "-", text))
    minus = re.sub(r"\\pm\b", "-", re.sub(r"\\mp\b", "+", text))
    return [plus, minus]


def tuple_elements(text: str) -> list[str] | None:
    """The entries of a parenthesised tuple `(1, 2)` / `\\left(1, 2\\right)`, or None when `text` is not one."""
    inner = (
        re.sub(r"^\s*(?:\\left\s*)?\(|(?:\\right\s*)?\)\s*$", "", text)
        if text.strip().endswith(")")
        else text
    )
    if inner == text or not re.match(r"^\s*(?:\\left\s*)?\(", text):
        return None
    depth = 0
    for ch in inner:  # the opening parenthesis must close at the very end, not before
        depth += (ch in _OPENERS) - (ch in _CLOSERS)
        if depth < 0:
            return None
    parts = [p.strip() for p in split_top_level(inner)]
    return parts if len(parts) > 1 and all(parts) else None


def read_side(text: str) -> Side:
    """Split one normalised side into its values and chain links. ValueError when it has too many values."""
    values: list[Value] = []
    links: list[tuple[str, str]] = []
    for element in _elements(text) or [text]:
        name = ""
        if m := _NAME.match(element):
            name, element = m.group(1).replace("{", "").replace("}", ""), element[m.end() :].strip()
        for form in _expand_pm(element):
            parts = [p.strip() for p in _CHAIN_EQUALS.split(form)]
            if len(parts) > 1 and all(constant(p) for p in parts):
                links.extend(zip(parts, parts[1:], strict=False))
                form = parts[-1]
            if (value := Value(form.strip(), name)) not in values:  # `x = 2, x = 2` states one value
                values.append(value)
    if len(values) > MAX_VALUES:
        raise ValueError(f"more than {MAX_VALUES} values")
    return Side(tuple(values), tuple(dict.fromkeys(links)))
