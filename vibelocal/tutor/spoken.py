"""Arithmetic said in words, as the answer checker reads it: `40 plus 2` -> `40 + 2`, `root two` -> `\\sqrt{2}`.

The hint filter uses this to propose candidate spans: every run of numbers, number words and operator words in a
hint (and every part of such a run) is turned into LaTeX, and the checker decides whether it equals the answer.
Only words with one plain meaning are read: `plus`, `minus`, `times`, `multiplied by`, `divided by`, `over`,
`to the power (of)`, `squared`, `cubed`, `halved`, `doubled`, `tripled`, `half of`, `square root of`, `root`,
`sqrt`, and fractions in words (`one half`, `two thirds`, `a quarter`; a bare `half` is left alone).
"""

from __future__ import annotations

import re

from vibelocal.answers.normalize import NUMBER_WORD, words_to_number

MAX_WORDS = 10
"""Longer runs are cut into pieces of this many words (it bounds the spans a hint can propose)."""

_DENOMINATORS = {
    "half": 2, "halves": 2, "third": 3, "thirds": 3, "quarter": 4, "quarters": 4, "fourth": 4, "fourths": 4,
    "fifth": 5, "fifths": 5, "sixth": 6, "sixths": 6, "seventh": 7, "sevenths": 7, "eighth": 8, "eighths": 8,
    "ninth": 9, "ninths": 9, "tenth": 10, "tenths": 10,
}  # fmt: skip
_OPERATORS = (
    (r"(?:the\s+)?square\s+root\s+of|root|sqrt", r"\\sqrt "),
    (r"(?:raised\s+)?to\s+the\s+power(?:\s+of)?|to\s+the", "^"),
    (r"squared", "^2"),
    (r"cubed", "^3"),
    (r"multiplied\s+by|times", r"\\times "),
    (r"divided\s+by|over", "/"),
    (r"plus", "+"),
    (r"minus", "-"),
    (r"halved", "/2"),
    (r"doubled", r"\\times 2"),
    (r"tripled", r"\\times 3"),
    (r"half\s+of", r"\\frac{1}{2} \\times "),
)
_OPERATOR_WORDS = "|".join(f"(?:{w})" for w, _ in _OPERATORS)
_FRACTION_WORD = "|".join(sorted(_DENOMINATORS, key=len, reverse=True))
_NUMBER = r"\d+(?:\.\d+)?"
_WORD = rf"(?:{_NUMBER}|{_OPERATOR_WORDS}|{NUMBER_WORD}|{_FRACTION_WORD}|a)"
_RUN = re.compile(rf"(?<!\w)(?<!\d\.){_WORD}(?:[ \t-]+{_WORD})*(?!\w|\.\d)", re.IGNORECASE)
_PIECE = re.compile(rf"{_NUMBER}|[A-Za-z]+")  # single words: a span may start or end inside `half of`
_SPOKEN_FRACTION = re.compile(rf"\b(a|an|{NUMBER_WORD}|\d+)[\s-]+({_FRACTION_WORD})\b", re.IGNORECASE)
_NUMBER_WORDS = re.compile(rf"\b(?:{NUMBER_WORD})(?:[\s-]+(?:and[\s-]+)?(?:{NUMBER_WORD}))*\b", re.IGNORECASE)
_DIGIT_GROUPS = re.compile(r"(?<![\w.,])\d+(?: \d+)+(?!\w|[.,]\d)")
_DIGIT_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
_DIGIT_WORDS = re.compile(
    rf"\b(?:{'|'.join(_DIGIT_NAMES)})(?:[ -]+(?:{'|'.join(_DIGIT_NAMES)}))+\b", re.IGNORECASE
)


def _fraction(m: re.Match[str]) -> str:
    count = m.group(1).lower()
    numerator = 1 if count in ("a", "an") else (words_to_number(count) if not count.isdigit() else int(count))
    return rf"\frac{{{numerator}}}{{{_DENOMINATORS[m.group(2).lower()]}}}"


def to_latex(words: str) -> str | None:
    """The arithmetic a phrase says, as LaTeX; None when it is not all numbers and operator words."""
    text = _SPOKEN_FRACTION.sub(_fraction, words.strip())
    text = _NUMBER_WORDS.sub(lambda m: str(words_to_number(m.group(0))), text)
    for pattern, latex in _OPERATORS:
        text = re.sub(rf"\b(?:{pattern})\b", latex, text, flags=re.IGNORECASE)
    text = re.sub(rf"\\sqrt\s*({_NUMBER})", r"\\sqrt{\1}", text)
    text = re.sub(r"\s+", " ", text).strip()
    bare = re.sub(r"\\(?:sqrt|times|frac)\b", "", text)
    if (
        not text
        or re.search(r"[A-Za-z]", bare)
        or not re.search(r"\d", text)
        or re.search(r"[-+^/]\s*$|^(?:[+*/^]|\\times)", text)
    ):
        return None
    return text


def spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, LaTeX) for every run of spoken arithmetic in `text` and every contiguous part of it."""
    found: list[tuple[int, int, str]] = []
    for run in _RUN.finditer(text):
        pieces = [m.span() for m in _PIECE.finditer(text, run.start(), run.end())]
        for i in range(len(pieces)):
            for j in range(i, min(len(pieces), i + MAX_WORDS)):
                start, end = pieces[i][0], pieces[j][1]
                latex = to_latex(text[start:end])
                if latex is not None and latex != text[start:end]:
                    found.append((start, end, latex))
    for m in _DIGIT_GROUPS.finditer(text):  # `4 2` spells 42 to a reader
        found.append((m.start(), m.end(), m.group(0).replace(" ", "")))
    for m in _DIGIT_WORDS.finditer(text):  # and so does `four two`
        digits = "".join(str(_DIGIT_NAMES.index(w.lower())) for w in re.split(r"[ -]+", m.group(0)))
        found.append((m.start(), m.end(), digits))
    return found
