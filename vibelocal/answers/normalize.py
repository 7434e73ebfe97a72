"""Text normalisation of one side of an answer check: presentation stripped, numbers read as typed.

Currency, units, degrees, thousands separators (`1,000`, `1\\,000`, `12 345`), unicode, choice letters, percents,
mixed numbers (`2 1/2`), font commands, and plain-text spellings like `sqrt(2)`, `pi`, `oo`, `x**2` are turned into
one LaTeX string for the parser. Nothing here decides equality.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vibelocal.answers.braces import closing_bracket


@dataclass(frozen=True)
class Normalized:
    """One side after text normalisation: the LaTeX to parse, or a choice letter; `percent` if it ended in %."""

    text: str
    choice: str | None = None
    percent: bool = False
    units: str = ""
    """The unit words stripped from the end (`cm`, `dollars`), lower case, singular."""
    side_by_side: str = ""
    """Two numbers with only a space between them that are neither a mixed number nor spaced thousands (`4 2`)."""

    def describe(self) -> str:
        if self.choice:
            return f"choice {self.choice}"
        return self.text + ("%" if self.percent else "")


# --------------------------------------------------------------------------- text normalisation

_UNICODE = {
    "\u2212": "-",
    "\u2013": "-",
    "\u2014": "-",
    "\u00d7": r"\times ",
    "\u00b7": r"\cdot ",
    "\u22c5": r"\cdot ",
    "\u00f7": r"\div ",
    "\u2264": r"\le ",
    "\u2265": r"\ge ",
    "\u2260": r"\ne ",
    "\u00b1": r"\pm ",
    "\u03c0": r"\pi ",
    "\u221e": r"\infty ",
    "\u00b0": r"^\circ",
    "\u00bd": r"\frac{1}{2}",
    "\u00bc": r"\frac{1}{4}",
    "\u00be": r"\frac{3}{4}",
    "\u2153": r"\frac{1}{3}",
    "\u2154": r"\frac{2}{3}",
    "\u00b2": "^2",
    "\u00b3": "^3",
    "\u2009": " ",
    "\u00a0": " ",
    "\u202f": " ",
}
_UNICODE_RE = re.compile("|".join(re.escape(k) for k in _UNICODE))
_LEAD_IN = re.compile(r"^\s*(?:the\s+)?(?:final\s+)?answer\s*(?:is|:)?\s*:?\s*", re.IGNORECASE)
_WRAPPERS = (("$$", "$$"), ("$", "$"), (r"\(", r"\)"), (r"\[", r"\]"))
_WHOLE_COMMAND = re.compile(r"^\\(?:boxed|fbox|text|textbf|textrm|textit|textnormal|mathrm|mathbf|mbox)\s*\{")
# Font commands change how a letter looks, not what it is: `\mathcal{B}` is B, `5 \textbf{cm}` is 5 cm.
_FONT = re.compile(
    r"\\(?:mathcal|mathscr|mathfrak|mathbf|mathit|mathsf|boldsymbol|textbf|textit|textnormal|textsf|textup)"
    r"\s*\{([^{}]*)\}"
)
_CHOICE = re.compile(r"^(?:(?:option|choice)\s+)?(?:\(([A-Ja-j])\)|([A-J])\)?)[.:]?$", re.IGNORECASE)
_DEGREES = re.compile(r"\s*(?:\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|\\degree|\s+degrees?|\s*deg)\s*$")
_CURRENCY = re.compile(r"\\\$|\$|€|£|¥|₹|\\euro\b|\\pounds\b|\\textdollar\b")
_PERCENT = re.compile(r"\s*(?:\\%|%|\s+percent(?:age)?|\s+pct)\s*$", re.IGNORECASE)
_UNIT_WORDS = (
    "mm cm dm km m nm kg mg g s sec secs min mins h hr hrs ms ft in yd mi lb lbs oz l ml mL L gal mph kph km/h "
    "m/s cm2 cm3 m2 m3 usd eur gbp dollar dollars euro euros pound pounds cent cents unit units sq cu"
)
_UNITS = sorted(set(_UNIT_WORDS.split()), key=len, reverse=True)
# Single-letter units (m, g, s, l, h, L) only count after a space: `3m` may be three times m.
_UNIT_ALT = "|".join(re.escape(u) if len(u) > 1 else rf"(?<=\s){re.escape(u)}" for u in _UNITS)
_UNIT_NAMES = {
    "mm": "millimetre millimeter",
    "cm": "centimetre centimeter",
    "m": "metre meter",
    "km": "kilometre kilometer",
    "g": "gram gramme",
    "kg": "kilogram kilo",
    "mg": "milligram",
    "s": "second sec",
    "min": "minute",
    "h": "hour hr",
    "ft": "foot feet",
    "in": "inch inche",
    "yd": "yard",
    "mi": "mile",
    "l": "litre liter",
    "ml": "millilitre milliliter",
    "lb": "pound lb",
    "oz": "ounce",
    "dollar": "usd",
    "euro": "eur",
}
_CANONICAL_UNIT = {alias: unit for unit, names in _UNIT_NAMES.items() for alias in (unit, *names.split())}
_MATH_WORDS = {
    "sin",
    "cos",
    "tan",
    "cot",
    "sec",
    "csc",
    "log",
    "exp",
    "sqrt",
    "frac",
    "pi",
    "inf",
    "infty",
    "infinity",
    "and",
    "or",
    "oo",
    "mod",
    "gcd",
    "lcm",
    "max",
    "min",
    "det",
    "arcsin",
    "arccos",
    "arctan",
    "sinh",
    "cosh",
    "tanh",
    "ln",
    "percent",
    "percentage",
    "pct",
}
# A unit tail: LaTeX text, a known unit (no space needed after a digit), or a longer plain word after a space.
_TEXT_TAIL = r"\\(?:text|mbox|mathrm|textrm|operatorname)\s*\{[^{}]*\}"
_UNIT_TAIL = re.compile(
    rf"(?<=[\d}}%)])(?P<tail>(?:\s*(?:{_TEXT_TAIL}|(?:{_UNIT_ALT})\b|(?<=\s)[A-Za-z]{{3,}}\b)\.?(?:\s*\^\s*\{{?[23]\}}?)?)+)\s*$"
)
_SCI = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)[eE]([+-]?\d+)(?![\w.])")
_THOUSANDS_LATEX = re.compile(r"(\d)(?:\{,\}|\\[,;:! ]\s*)(?=\d{3}(?!\d))")
_PLAIN_PI = re.compile(r"(?<![\\A-Za-z])pi(?![A-Za-z])")
_PLAIN_FUNCTION = re.compile(r"(?<![\\A-Za-z])(sin|cos|tan|cot|sec|csc|log|ln|exp)(?![A-Za-z])")
_PLAIN_OO = re.compile(r"(?<![\\A-Za-z])oo(?![A-Za-z])")
_PLAIN_SQRT = re.compile(r"(?:(?<![\\A-Za-z])sqrt|\\sqrt|√)\s*\(")
_RADICAL = re.compile(r"√\s*")
# A whole number and a proper fraction after it: `2 1/2`, `2\frac{1}{2}`, `2 \tfrac12` (read as 2 + 1/2).
_MIXED = re.compile(
    r"(?<![\w.^_{}/\\])(\d+)(?:\s+(\d+)\s*/\s*(\d+)|\s*\\[dt]?frac\s*(?:\{\s*(\d+)\s*\}|(\d))\s*(?:\{\s*(\d+)\s*\}|(\d)))"
    r"(?![\w.{\\]|\s*[/^])"
)
# Digit groups of three after a space (`12 345`, `1 000 000.5`); another digit or a fraction after it is not one.
_SPACED_THOUSANDS = re.compile(r"(?<![\w.,^_{/\\])(\d{1,3})((?: \d{3})+)(?!\d| \d|\s*/|\s*\\[dt]?frac)")
_COMMA_THOUSANDS = re.compile(r"^((?:[A-Za-z]\s*=\s*)?[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?)$")
# (`\log_2 8` and `x^2 3` are a subscript or a power, then a number.)
_SIDE_BY_SIDE = re.compile(r"(?<![\w.^_])\d+(?:\.\d+)?(?:\s+\.?\d|\s*\\[dt]?frac\s*\{?\s*\d)")


_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen"
)
_SMALL_NUMBERS = {w: i for i, w in enumerate(f"{_ONES} seventeen eighteen nineteen".split(" "))}
_TENS_WORDS = "twenty thirty forty fifty sixty seventy eighty ninety"
_TENS = {w: 10 * i for i, w in enumerate(_TENS_WORDS.split(" "), 2)}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9}
NUMBER_WORD = "|".join([*_SMALL_NUMBERS, *_TENS, *_SCALES])
"""Alternation of English number words (for finding spelled-out numbers in text)."""


def words_to_number(text: str) -> int | None:
    """`forty-two` -> 42, `minus one hundred and five` -> -105; None unless the whole text is number words."""
    words = re.split(r"[\s-]+", text.strip().lower())
    sign = 1
    if words and words[0] in ("minus", "negative"):
        sign, words = -1, words[1:]
    words = [w for w in words if w != "and"]
    if not words:
        return None
    total = current = 0
    for w in words:
        # Number words side by side are refused like digits: `four two` is neither 6 nor 42.
        if w in _SMALL_NUMBERS:
            if current % 100 and (current % 100 >= 20 and _SMALL_NUMBERS[w] >= 10 or current % 100 < 20):
                return None
            current += _SMALL_NUMBERS[w]
        elif w in _TENS:
            if current % 100:
                return None
            current += _TENS[w]
        elif w == "hundred":
            current = max(current, 1) * 100
        elif w in _SCALES:
            total += max(current, 1) * _SCALES[w]
            current = 0
        else:
            return None
    return sign * (total + current)


def _unwrap(text: str) -> str:
    """Strip math delimiters, whole-string \\boxed{...} / \\text{...} wrappers and a trailing period, repeatedly."""
    while True:
        before = text
        text = text.strip()
        if text.endswith(".") and not text.endswith("..") and not text.endswith("\\right."):
            text = text.rstrip(" .")
        for open_, close in _WRAPPERS:
            inner = text[len(open_) : -len(close)]
            wrapped = len(text) > len(open_) + len(close) and text.startswith(open_) and text.endswith(close)
            if wrapped and (open_ != "$" or "$" not in inner):
                text = inner
                break
        m = _WHOLE_COMMAND.match(text)
        if m and closing_bracket(text, m.end() - 1) == len(text) - 1:
            text = text[m.end() : -1]
        if text == before:
            return text


def _sqrt_parens(text: str) -> str:
    """`sqrt(x+1)` / `√(x+1)` -> `\\sqrt{x+1}` with balanced parentheses; `√2` -> `\\sqrt2`."""
    while m := _PLAIN_SQRT.search(text):
        end = closing_bracket(text, m.end() - 1)
        if end is None:
            break
        text = text[: m.start()] + r"\sqrt{" + text[m.end() : end] + "}" + text[end + 1 :]
    return _RADICAL.sub(r"\\sqrt ", text)


def _canonical_unit(word: str) -> str:
    word = word.lower()
    word = word[:-1] if len(word) > 3 and word.endswith("s") else word
    return _CANONICAL_UNIT.get(word, "?")


def _strip_units(text: str) -> tuple[str, str]:
    """Remove a unit tail; return (text, the unit words found, lower case, singular)."""
    found: list[str] = []
    for _ in range(3):
        m = _UNIT_TAIL.search(text)
        if not m:
            break
        words = re.findall(r"[A-Za-z]+", re.sub(r"\\[A-Za-z]+", "", m.group("tail")))
        if any(w.lower() in _MATH_WORDS for w in words) or not text[: m.start()].strip():
            break
        found = [_canonical_unit(w) for w in words] + found
        text = text[: m.start()].rstrip()
    return text, " ".join(found)


def _mixed(m: re.Match[str]) -> str:
    whole, num, den = (
        int(m.group(1)),
        int(m.group(2) or m.group(4) or m.group(5)),
        int(m.group(3) or m.group(6) or m.group(7)),
    )
    if not 0 < num < den:
        return m.group(0)  # not a proper fraction: left alone (and refused as two numbers side by side)
    return rf"\frac{{{whole * den + num}}}{{{den}}}"


def read_spaced_numbers(text: str) -> tuple[str, str]:
    """Mixed numbers and spaced thousands read as one number each; also any other `4 2` left (else "")."""
    text = _MIXED.sub(_mixed, text)
    text = _SPACED_THOUSANDS.sub(lambda m: m.group(1) + m.group(2).replace(" ", ""), text)
    text = _COMMA_THOUSANDS.sub(lambda m: m.group(1).replace(",", ""), text)
    found = _SIDE_BY_SIDE.search(text)
    return text, found.group(0) if found else ""


def normalize(text: str) -> Normalized:
    """Text-level normalisation of one side; parsing happens later."""
    s = _UNICODE_RE.sub(lambda m: _UNICODE[m.group(0)], text).strip()
    while (font := _FONT.sub(r"\1", s)) != s:
        s = font
    s = _LEAD_IN.sub("", s, count=1) if _LEAD_IN.match(s) and not _CHOICE.match(s) else s
    s = _unwrap(s.rstrip(" .") if not s.endswith("..") else s)
    m = _CHOICE.match(s)
    if m:
        return Normalized(text=s, choice=(m.group(1) or m.group(2)).upper())
    if (number := words_to_number(s)) is not None:
        s = str(number)
    s = _CURRENCY.sub("", s).strip()
    s = _DEGREES.sub("", s)
    s, units = _strip_units(s)
    s = _DEGREES.sub("", s)
    percent = bool(_PERCENT.search(s))
    if percent:
        s = _PERCENT.sub("", s)
    s, more_units = _strip_units(s)
    units = " ".join(u for u in (more_units, units) if u)
    s = _THOUSANDS_LATEX.sub(r"\1", s)
    s = _SCI.sub(r"\1\\times 10^{\2}", s)
    s = s.replace("**", "^")
    s = _sqrt_parens(s)
    s = _PLAIN_FUNCTION.sub(r"\\\1 ", s)
    s = _PLAIN_PI.sub(r"\\pi ", s)
    s = _PLAIN_OO.sub(r"\\infty ", s)
    s = re.sub(r"\s+", " ", s).strip()
    s, side_by_side = read_spaced_numbers(s)
    return Normalized(text=s, percent=percent, units=units, side_by_side=side_by_side)
