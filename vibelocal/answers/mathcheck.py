"""Answer equivalence: is an answer the same mathematical object as the key? (exact arithmetic, math-verify, sympy).

`check(answer, key)` normalises both sides (answers/normalize.py: currency, units, degrees, thousands separators,
mixed numbers, unicode, choice letters, percents, plain-text spellings), refuses numbers written side by side
(`4 2`), reads each side's shape (answers/sides.py: a list, `\\pm` expanded, `x = ` names, chains whose every
link must hold), and compares value by value: plain arithmetic exactly with Python integers and Fractions
(answers/exact.py, up to 100,000 digits), anything else with math-verify's sympy comparison in both directions,
every decimal made the exact rational it spells (so `0.5` equals `1/2` but `3.14` is not `\\pi`). Every verdict
carries a short `reason`.

math-verify's own time limits use SIGALRM, which raises off the main thread; this module always passes
`parsing_timeout=None` / `timeout_seconds=None` and bounds the time itself (see answers/deadline.py).
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any

from vibelocal.answers.exact import MAX_DIGITS, TooLarge, digits
from vibelocal.answers.exact import value as exact_value
from vibelocal.answers.normalize import NUMBER_WORD, Normalized, normalize, words_to_number
from vibelocal.answers.sides import Side, Value, read_side, tuple_elements

__all__ = ["NUMBER_WORD", "CheckResult", "check", "compare", "equivalent", "normalize", "words_to_number"]

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
        return CheckResult(
            False, error=f"the check failed: {type(exc).__name__}: {exc}"[:200], reason="error"
        )


def _compare(answer: str, key: str) -> CheckResult:
    for side, text in (("answer", answer), ("key", key)):
        if not text or not text.strip():
            return CheckResult(False, error=f"the {side} is empty", reason="empty")
        if len(text) > MAX_INPUT_CHARS:
            return CheckResult(
                False, error=f"the {side} is longer than {MAX_INPUT_CHARS} characters", reason="too long"
            )
    a, k = normalize(answer), normalize(key)
    if a.choice or k.choice:
        same = a.choice is not None and a.choice == k.choice
        why = "same choice letter" if same else "choice letters differ" if a.choice and k.choice else ""
        return CheckResult(same, None, a.describe(), k.describe(), why or "a choice letter against a value")
    if a.units and k.units and "?" not in a.units + k.units and a.units != k.units:
        return CheckResult(False, None, f"{a.text} {a.units}", f"{k.text} {k.units}", "the units differ")
    for side, norm in (("answer", a), ("key", k)):
        if norm.side_by_side:
            error = (
                f"the {side} has two numbers side by side ({norm.side_by_side!r}): write one number, "
                "a mixed number like 2 1/2, or an operator"
            )
            return CheckResult(False, error, a.describe(), k.describe(), "numbers side by side")
    try:
        return _compare_sides(a, k, _Reader())
    except _Unreadable as exc:
        return CheckResult(
            False, f"could not read the {exc} as mathematics", a.describe(), k.describe(), "unreadable"
        )
    except (_Huge, TooLarge) as exc:
        error = f"the {exc} has numbers too large to check exactly (over {MAX_DIGITS:,} digits)"
        return CheckResult(False, error, a.text, k.text, "too large to check")
    except ValueError as exc:  # read_side: too many values
        return CheckResult(
            False, f"too many values to compare ({exc})", a.describe(), k.describe(), "too many values"
        )


def _compare_sides(a: Normalized, k: Normalized, reader: _Reader) -> CheckResult:
    """Chains first (every link must hold), then list against list, or one value against one value."""
    sides: list[Side] = []
    for side, norm in (("answer", a), ("key", k)):
        shape = read_side(norm.text)
        for left, right in shape.links:
            if not reader.same(left, right, side, side):
                why = f"inconsistent chain ({left} = {right} is false)"
                return CheckResult(False, None, a.describe(), k.describe(), why)
        sides.append(shape)
    sa, sk = sides
    if sa.is_list != sk.is_list:
        listed, single = (sa, sk) if sa.is_list else (sk, sa)
        entries = tuple_elements(single.values[0].text)
        if entries is None or len(entries) != len(listed.values):
            return CheckResult(False, None, a.describe(), k.describe(), "list vs single value")
        # `1, 2` and `x = 1, y = 2` against the tuple `(1, 2)`: entry by entry, in order
        same = all(
            reader.same(v.text, e, "answer", "key") for v, e in zip(listed.values, entries, strict=True)
        )
        return CheckResult(
            same, None, a.describe(), k.describe(), "same values" if same else "the tuple differs"
        )
    if sa.is_list:
        same = _same_lists(sa, sk, reader)
        return CheckResult(
            same, None, a.describe(), k.describe(), "same values" if same else "the lists differ"
        )
    va, vk = sa.values[0], sk.values[0]
    if va.name and vk.name and va.name != vk.name:
        return CheckResult(False, None, a.describe(), k.describe(), "different variables")
    forms_a, forms_k = [va.text], [vk.text]
    if a.percent != k.percent:  # 50% is both 50 and 1/2
        pct = forms_a if a.percent else forms_k
        pct.append(rf"\frac{{{pct[0]}}}{{100}}")
    shown_a = reader.shown(va.text, "answer") + ("%" if a.percent else "")
    shown_k = reader.shown(vk.text, "key") + ("%" if k.percent else "")
    for fa in forms_a:
        for fk in forms_k:
            if reader.same(fa, fk, "answer", "key"):
                return CheckResult(True, None, shown_a, shown_k, "mathematically equal")
    return CheckResult(False, None, shown_a, shown_k, reader.why_not(va.text, vk.text))


def _same_lists(sa: Side, sk: Side, reader: _Reader) -> bool:
    """Equal as sets: every value of each side equals some value of the other (names must agree where given)."""

    def match(x: Value, y: Value) -> bool:
        named_apart = bool(x.name and y.name and x.name != y.name)
        return not named_apart and reader.same(x.text, y.text, "answer", "key")

    return all(any(match(x, y) for y in sk.values) for x in sa.values) and all(
        any(match(x, y) for x in sa.values) for y in sk.values
    )


class _Unreadable(Exception):
    """A side (its name is the message) that math-verify could not parse."""


class _Huge(Exception):
    """A side (its name is the message) too large to hand to sympy."""


_HUGE = re.compile(r"\^\s*\{?\s*[-+]?\d{4,}|\^\s*\{[^{}]*\^|\d{4,}\s*!|!\s*!")
"""Powers and factorials sympy would expand without end: only exact arithmetic (answers/exact.py) may take them."""
_SYMPY_DIGITS = 1000
"""An exact number compared with a symbolic one is handed to sympy only up to this many digits."""
_DECIMAL = re.compile(r"\d*\.\d")


class _Reader:
    """Reads each value once: an exact Fraction when it is plain arithmetic, else math-verify's sympy parse."""

    def __init__(self) -> None:
        self._memo: dict[str, Fraction | list[Any]] = {}

    def read(self, text: str, side: str) -> Fraction | list[Any]:
        if text not in self._memo:
            try:
                number = exact_value(text)
            except TooLarge:
                raise _Huge(side) from None
            if number is not None:
                self._memo[text] = number
            elif _HUGE.search(text):
                raise _Huge(side)
            elif not (parsed := _parse(text)):
                raise _Unreadable(side)
            else:
                self._memo[text] = parsed
        return self._memo[text]

    def _sympy(self, reading: Fraction | list[Any], side: str) -> list[Any]:
        if not isinstance(reading, Fraction):
            return reading
        if digits(reading) > _SYMPY_DIGITS:
            raise _Huge(side)
        from sympy import Rational

        return [Rational(reading.numerator, reading.denominator)]

    def same(self, x: str, y: str, side_x: str, side_y: str) -> bool:
        rx, ry = self.read(x, side_x), self.read(y, side_y)
        if isinstance(rx, Fraction) and isinstance(ry, Fraction):
            return rx == ry
        px, py = self._sympy(rx, side_x), self._sympy(ry, side_y)
        # math-verify's comparison is asymmetric (gold vs prediction); equivalence must not be.
        return _verify(py, px) and _verify(px, py)

    def shown(self, text: str, side: str) -> str:
        reading = self.read(text, side)
        return text if isinstance(reading, Fraction) else _shown(reading, text)

    def number(self, text: str) -> float | None:
        reading = self._memo.get(text)
        try:
            if isinstance(reading, Fraction):
                return float(reading)
            if reading and not isinstance(reading[0], str):
                value = complex(reading[0].evalf())
                return value.real if value.imag == 0 else None
        except (TypeError, ValueError, OverflowError, AttributeError):
            return None
        return None

    def why_not(self, x: str, y: str) -> str:
        """`approximation of an exact value` when one side is a decimal within 1% of the other, else `not equal`."""
        if bool(_DECIMAL.search(x)) != bool(_DECIMAL.search(y)):
            fx, fy = self.number(x), self.number(y)
            if (
                fx is not None
                and fy is not None
                and abs(fx - fy) <= 0.01 * max(abs(fx), abs(fy))
                and fx != fy
            ):
                return "approximation of an exact value"
        return "not equal"


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
