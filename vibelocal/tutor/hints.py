"""Hint safety: find every number and expression in a hint that gives the reference answer away, and redact it.

A span leaks when it is literally the reference, or when the answer checker (`mathcheck`, never the model) says
it is equivalent: `42`, `\\frac{84}{2}`, `$x = 42$`, `forty-two`, `42.0`, `4.2 \\times 10^1`. Candidates come
from math in the hint, numbers, number words, plain functions (`sqrt(2)`), and arithmetic said in words
(`40 plus 2`, `84 halved`, `one over two`, `2 to the power 10`, `root two`, and `4 2`, which spells 42; see
tutor/spoken.py), each read into LaTeX the checker understands. Expressions copied from the problem text itself
(`6 \\times 7` in "what is 6 x 7?") give nothing away and are kept; bare values equal to the answer are always
hidden.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from vibelocal.answers.braces import closing_bracket
from vibelocal.answers.mathcheck import NUMBER_WORD, normalize
from vibelocal.tutor import spoken

REDACTED = "[…]"
"""What a leaking span is replaced with."""

_DELIMITED = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", re.DOTALL)
_COMMAND = re.compile(r"[-+]?\d*\s*\\(?:d|t)?(?:frac|sqrt|binom|boxed|fbox|pi|infty)\b")
_NUMBER = re.compile(
    r"(?<![\w.\\])[-−]?\d+(?:,\d{3})*(?:\.\d+)?(?:\s*[/:]\s*\d+(?:\.\d+)?)?(?:\s*(?:%|percent\b|°))?"
)
_OPERATOR = r"(?:[-+*/×÷^]|\\times|\\cdot|\\div)"
_ARITHMETIC = re.compile(rf"(?<![\w.])[-(]*\d[\d\s.(){{}}]*(?:{_OPERATOR}\s*[-({{]*\d[\d.(){{}}]*\s*)+")
_GROUP = re.compile(r"\\\{[^{}]*\\\}|\([^()]*,[^()]*\)|\[[^\[\]]*,[^\[\]]*[\])]")
_LIST = re.compile(r"(?<![\w.])[-−]?\d+(?:\.\d+)?(?:\s*(?:,|\band\b|\bor\b)\s*[-−]?\d+(?:\.\d+)?)+")
_ASSIGNMENT = re.compile(r"(?<![\w\\])[A-Za-z]\s*=\s*([^,;\n]+?)(?=[,;\n]|\.\s|\.$|$)")
_PLAIN_CALL = re.compile(r"(?<![\\A-Za-z])(?:sqrt|cbrt|sin|cos|tan|log|ln|exp)\s*\([^()]*\)", re.I)
_WORDS = re.compile(
    rf"\b(?:minus\s+|negative\s+)?(?:{NUMBER_WORD})(?:[\s-]+(?:and\s+)?(?:{NUMBER_WORD}))*\b", re.I
)

Judge = Callable[[str, str], bool]
"""(candidate, reference) -> equivalent? Defaults to mathcheck.equivalent."""


@dataclass(frozen=True)
class FilteredHint:
    """A hint after filtering: the text to show, and the spans that were hidden."""

    text: str
    leaks: tuple[str, ...] = ()

    @property
    def leaked(self) -> bool:
        return bool(self.leaks)


def _braced_end(text: str, start: int) -> int:
    """End of a LaTeX command starting at `start`: past its `{...}` / `[...]` groups (balanced)."""
    i = text.find("\\", start)
    i = start if i < 0 else i + 1
    while i < len(text) and text[i].isalpha():
        i += 1
    while i < len(text) and text[i] in "{[":
        close = closing_bracket(text, i)
        if close is None:
            return len(text)
        i = close + 1
        while i < len(text) and text[i] == " " and i + 1 < len(text) and text[i + 1] in "{[":
            i += 1
    return i


def candidates(hint: str) -> list[tuple[int, int]]:
    """Spans (start, end) of everything in `hint` that could state a value: math, numbers, number words."""
    spans: list[tuple[int, int]] = []
    for m in _DELIMITED.finditer(hint):
        spans.append(m.span())
        group = next(g for g in range(1, 5) if m.group(g) is not None)
        inner_start = m.start(group)
        inner = m.group(group)
        for part in re.finditer(r"[^=,;]+", inner):  # each side of `=` and each list element
            if part.group(0).strip():
                spans.append((inner_start + part.start(), inner_start + part.end()))
    for m in _COMMAND.finditer(hint):
        spans.append((m.start(), _braced_end(hint, m.start())))
    for pattern in (_NUMBER, _ARITHMETIC, _WORDS, _GROUP, _LIST, _PLAIN_CALL):
        spans.extend(m.span() for m in pattern.finditer(hint))
    spans.extend(m.span(1) for m in _ASSIGNMENT.finditer(hint))
    return sorted({_trim(hint, s, e) for s, e in spans if hint[s:e].strip(_TRIM)})


_TRIM = " \t\n.,;:!?"


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """Shrink a span past surrounding spaces and sentence punctuation (a decimal point inside stays)."""
    while start < end and text[start] in _TRIM:
        start += 1
    while end > start and text[end - 1] in _TRIM:
        end -= 1
    return start, end


def _choice_pattern(letter: str) -> re.Pattern[str]:
    return re.compile(
        rf"\(\s*{letter}\s*\)|\b(?:option|choice|answer|letter)\s+{letter}\b|\b{letter}\)", re.I
    )


def find_leaks(
    hint: str, reference: str, problem: str = "", *, judge: Judge | None = None
) -> list[tuple[int, int]]:
    """Spans of `hint` that state the reference answer or an equivalent of it."""
    if judge is None:
        from vibelocal.answers.mathcheck import equivalent

        def judge(a: str, b: str) -> bool:
            return equivalent(a, b)

    ref = normalize(reference)
    leaks: list[tuple[int, int]] = []
    if ref.choice:
        leaks.extend(m.span() for m in _choice_pattern(ref.choice).finditer(hint))
        return leaks
    literal = reference.strip()
    if literal and (len(literal) > 1 or not literal.isalnum()):
        leaks.extend(m.span() for m in re.finditer(re.escape(literal), hint))
    problem_flat = re.sub(r"\s+", "", problem).lower()
    proposals = [(s, e, hint[s:e].strip().strip("$").strip()) for s, e in candidates(hint)]
    proposals += [(s, e, latex) for s, e, latex in spoken.spans(hint)]
    seen: dict[str, bool] = {}
    for start, end, text in proposals:
        if not text or any(s <= start and end <= e for s, e in leaks):
            continue
        if _copied(hint[start:end], text, problem_flat):
            continue  # restating the problem gives nothing away
        if text not in seen:
            seen[text] = judge(text, reference)
        if seen[text]:
            leaks.append((start, end))
    return leaks


def _copied(span: str, text: str, problem_flat: str) -> bool:
    """An expression (not a bare value) that the problem itself states, as typed or as read."""
    if not re.search(r"[-+*/×÷^=]|\\(?:frac|times|cdot|sqrt)", text.lstrip("-")):
        return False
    return any(re.sub(r"\s+", "", t).lower() in problem_flat for t in (span, text))


def redact(hint: str, spans: list[tuple[int, int]]) -> str:
    """Replace the (possibly overlapping) spans with REDACTED."""
    merged: list[list[int]] = []
    for s, e in sorted(spans):
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    out, last = [], 0
    for s, e in merged:
        out.append(hint[last:s])
        out.append(REDACTED)
        last = e
    out.append(hint[last:])
    return "".join(out)


def filter_hint(hint: str, reference: str, problem: str = "", *, judge: Judge | None = None) -> FilteredHint:
    """The hint with every leak of the reference answer redacted."""
    spans = find_leaks(hint, reference, problem, judge=judge)
    if not spans:
        return FilteredHint(hint.strip())
    return FilteredHint(redact(hint, spans).strip(), tuple(hint[s:e] for s, e in sorted(spans)))
