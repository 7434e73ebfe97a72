"""Answer equivalence: is an answer the same mathematical object as the key? (math-verify + sympy, exact).

`check(answer, key)` normalises both sides (currency, units, degrees, thousands separators, unicode, choice
letters, percents, plain-text spellings like `sqrt(2)`, `pi`, `oo`, `x**2`), parses them with math-verify's
LaTeX extraction, turns every decimal into the exact rational it spells (so `0.5` equals `1/2` but `0.333` is not
`1/3` and `3.14` is not `\\pi`), and compares with math-verify's sympy comparison in both directions.

math-verify's own time limits use SIGALRM, which raises off the main thread; this module always passes
`parsing_timeout=None` / `timeout_seconds=None` and bounds the time itself (see `mathcheck_deadline`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass
from typing import Any

from vibelocal.answers.braces import closing_bracket

MAX_INPUT_CHARS = 2000
"""Longer answers are refused (no student types that much; it bounds parsing time too)."""

DEFAULT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class CheckResult:
    """The verdict on one (answer, key) pair. `error` is set when a side could not be read or timed out."""

    equivalent: bool
    error: str | None = None
    answer_normalized: str = ""
    key_normalized: str = ""
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class CheckTimeout(BaseException):
    """Raised inside a check when its deadline passes (a BaseException so library `except Exception` misses it)."""


@dataclass(frozen=True)
class Normalized:
    """One side after text normalisation: the LaTeX to parse, or a choice letter; `percent` if it ended in %."""

    text: str
    choice: str | None = None
    percent: bool = False
    units: str = ""
    """The unit words stripped from the end (`cm`, `dollars`), lower case, singular."""

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
_WHOLE_COMMAND = re.compile(r"^\\(?:boxed|fbox|text|textbf|textrm|textit|mathrm|mathbf|mbox)\s*\{")
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
_HUGE = re.compile(r"\^\s*\{?\s*[-+]?\d{4,}|\^\s*\{[^{}]*\^|\d{4,}\s*!|!\s*!")


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
        if w in _SMALL_NUMBERS:
            current += _SMALL_NUMBERS[w]
        elif w in _TENS:
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
    """Strip math delimiters and whole-string \\boxed{...} / \\text{...} wrappers, repeatedly."""
    while True:
        before = text
        text = text.strip()
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


def normalize(text: str) -> Normalized:
    """Text-level normalisation of one side; parsing happens later."""
    s = _UNICODE_RE.sub(lambda m: _UNICODE[m.group(0)], text).strip()
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
    return Normalized(text=s, percent=percent, units=units)


# --------------------------------------------------------------------------- parsing and comparison


def _quiet_math_verify() -> None:
    # math-verify warns once that its timeouts are off; we bound time ourselves (mathcheck_deadline).
    for name in ("math_verify", "math_verify.parser", "math_verify.grader", "latex2sympy2_extended"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _parse(text: str) -> list[Any]:
    """math-verify's LaTeX extraction with its signal-based timeout off; decimals made exact."""
    from latex2sympy2_extended.latex2sympy2 import NormalizationConfig
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

    _quiet_math_verify()
    config = LatexExtractionConfig(
        boxed_match_priority=0,
        # units=False: math-verify's unit list strips letters like `c`, `d`, `h` from `x + c`; we strip units above.
        normalization_config=NormalizationConfig(
            basic_latex=True, units=False, malformed_operators=True, nits=True, boxed="all", equations=False
        ),
    )
    found = parse(f"${text}$", extraction_config=[config], parsing_timeout=None)  # type: ignore[arg-type]
    if not found or isinstance(found[0], str):
        found = parse(text, extraction_config=[ExprExtractionConfig()], parsing_timeout=None)  # type: ignore[arg-type]
    return [_exact(x) for x in found]


def _exact(value: Any) -> Any:
    """Replace every Float by the exact rational its decimal digits spell: math-verify's float tolerance is off."""
    from sympy import Basic, Float, Rational

    if not isinstance(value, Basic):
        return value
    floats = value.atoms(Float)
    if not floats:
        return value
    try:
        return value.xreplace({f: Rational(str(f)) for f in floats})
    except Exception:
        return value


def _verify(gold: list[Any], target: list[Any]) -> bool:
    from math_verify import verify

    return bool(
        verify(gold, target, timeout_seconds=None, strict=True, allow_set_relation_comp=True)  # type: ignore[arg-type]
    )


def _shown(parsed: list[Any], text: str) -> str:
    """How a side was understood: sympy's form, or the text itself when it has decimals (shown as typed)."""
    if re.search(r"\d\.\d", text) or not parsed or isinstance(parsed[0], str):
        return text
    return str(parsed[0])


def compare(answer: str, key: str) -> CheckResult:
    """The comparison itself, with no time bound (`check` is the entry point); never raises Exception."""
    try:
        return _compare(answer, key)
    except Exception as exc:  # a library bug on odd input must not crash a grading run
        return CheckResult(False, error=f"the check failed: {type(exc).__name__}: {exc}"[:200])


def _compare(answer: str, key: str) -> CheckResult:
    for side, text in (("answer", answer), ("key", key)):
        if not text or not text.strip():
            return CheckResult(False, error=f"the {side} is empty")
        if len(text) > MAX_INPUT_CHARS:
            return CheckResult(False, error=f"the {side} is longer than {MAX_INPUT_CHARS} characters")
    a, k = normalize(answer), normalize(key)
    if a.choice or k.choice:
        same = a.choice is not None and a.choice == k.choice
        why = "same choice letter" if same else "choice letters differ" if a.choice and k.choice else ""
        return CheckResult(same, None, a.describe(), k.describe(), why or "a choice letter against a value")
    if a.units and k.units and "?" not in a.units + k.units and a.units != k.units:
        return CheckResult(False, None, f"{a.text} {a.units}", f"{k.text} {k.units}", "the units differ")
    for side, norm in (("answer", a), ("key", k)):
        if _HUGE.search(norm.text):
            return CheckResult(False, f"the {side} has numbers too large to check exactly", a.text, k.text)
    a_forms, k_forms = [a.text], [k.text]
    if a.percent != k.percent:  # 50% is both 50 and 1/2
        pct = a_forms if a.percent else k_forms
        pct.append(rf"\frac{{{pct[0]}}}{{100}}")
    parsed_a = [_parse(t) for t in a_forms]
    parsed_k = [_parse(t) for t in k_forms]
    for side, parsed in (("answer", parsed_a[0]), ("key", parsed_k[0])):
        if not parsed:
            return CheckResult(False, f"could not read the {side} as mathematics", a.describe(), k.describe())
    shown_a, shown_k = _shown(parsed_a[0], a.text), _shown(parsed_k[0], k.text)
    if a.percent:
        shown_a += "%"
    if k.percent:
        shown_k += "%"
    for pa in parsed_a:
        for pk in parsed_k:
            # math-verify's comparison is asymmetric (gold vs prediction); equivalence must not be.
            if _verify(pk, pa) and _verify(pa, pk):
                return CheckResult(True, None, shown_a, shown_k, "mathematically equal")
    return CheckResult(False, None, shown_a, shown_k, "not equal")


def check(answer: str, key: str, *, timeout_s: float | None = DEFAULT_TIMEOUT_S) -> CheckResult:
    """Is `answer` equivalent to `key`? Never raises for bad input: an unreadable side gives `error`.

    Safe from any thread. `timeout_s=None` runs unbounded in this thread; otherwise the main thread uses a
    SIGALRM timer and other threads a helper process that is killed at the deadline.
    """
    if timeout_s is None:
        return compare(answer, key)
    from vibelocal.answers.deadline import run_bounded

    return run_bounded(answer, key, timeout_s)


def equivalent(a: str, b: str, **kw: Any) -> bool:
    """True when `a` and `b` are the same mathematical answer (errors count as not equivalent)."""
    return check(a, b, **kw).equivalent
