"""Exact arithmetic on answers that are plain numbers: `2^{2025}`, `1/2004!`, `\\frac{7}{4}`, `6 \\times 7` as Fractions.

Integers and rationals are compared exactly with Python's own big numbers, up to MAX_DIGITS digits, so a key like
`2024^{4046}` (13,374 digits) can be checked instead of refused. Anything that is not pure arithmetic on numbers
(a letter, a root, `\\pi`, a list) is not read here: `value` returns None and the caller parses it with sympy.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

MAX_DIGITS = 100_000
"""Larger numbers (in decimal digits, numerator or denominator) are refused as too large to check exactly."""

_LOG10_2 = math.log10(2)


class TooLarge(ValueError):
    """A number in the answer would have more than MAX_DIGITS digits."""


_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d*)?|\.\d+)|(\\[A-Za-z]+)|([-+*/^!(){}]))")
_PREPARE = (
    (re.compile(r"\\left(?![A-Za-z])|\\right(?![A-Za-z])|\\[,;:! ]|~"), " "),
    (re.compile(r"\\(?:times|cdot|ast)(?![A-Za-z])"), "*"),
    (re.compile(r"\\div(?![A-Za-z])"), "/"),
    (re.compile(r"\\[dt]frac(?![A-Za-z])"), r"\\frac"),
    (re.compile(r"\\frac\s*(\d)\s*(\d)"), r"\\frac{\1}{\2}"),
    (re.compile(r"\\frac\s*(\{[^{}]*\})\s*(\d)"), r"\\frac\1{\2}"),
)


def digits(x: Fraction) -> int:
    """About how many decimal digits the larger of numerator and denominator has."""
    return int(max(abs(x.numerator).bit_length(), x.denominator.bit_length()) * _LOG10_2) + 1


def _bounded(x: Fraction) -> Fraction:
    if digits(x) > MAX_DIGITS:
        raise TooLarge(f"a number here has more than {MAX_DIGITS:,} digits")
    return x


def _tokens(text: str) -> list[str] | None:
    for pattern, repl in _PREPARE:
        text = pattern.sub(repl, text)
    out: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            return None
        out.append(m.group(0).strip())
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def value(text: str) -> Fraction | None:
    """The exact value of a pure arithmetic expression, or None when `text` is anything else.

    Raises TooLarge when a number on the way would pass MAX_DIGITS digits (checked before computing it).
    """
    tokens = _tokens(text)
    if not tokens:
        return None
    parser = _Parser(tokens)
    try:
        result = parser.expr()
    except (_NotArithmetic, ZeroDivisionError):
        return None
    return result if parser.done() else None


class _NotArithmetic(Exception):
    pass


class _Parser:
    """Recursive descent: sums of products of signed powers of factorials of atoms."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.i = 0

    def done(self) -> bool:
        return self.i == len(self.tokens)

    def peek(self) -> str:
        return self.tokens[self.i] if self.i < len(self.tokens) else ""

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if not token or (expected is not None and token != expected):
            raise _NotArithmetic(token)
        self.i += 1
        return token

    def expr(self) -> Fraction:
        total = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()
            right = self.term()
            total = _bounded(total + right if op == "+" else total - right)
        return total

    def term(self) -> Fraction:
        product = self.unary()
        while self.peek() in ("*", "/"):
            op = self.take()
            right = self.unary()
            if digits(product) + digits(right) > MAX_DIGITS + 2:
                raise TooLarge(f"a number here has more than {MAX_DIGITS:,} digits")
            product = _bounded(product * right if op == "*" else product / right)
        return product

    def unary(self) -> Fraction:
        if self.peek() in ("+", "-"):
            sign = -1 if self.take() == "-" else 1
            return sign * self.unary()
        return self.power()

    def power(self) -> Fraction:
        base = self.postfix()
        if self.peek() != "^":
            return base
        self.take("^")
        exponent = self.unary()
        return _power(base, exponent)

    def postfix(self) -> Fraction:
        x = self.atom()
        while self.peek() == "!":
            self.take("!")
            x = _factorial(x)
        return x

    def atom(self) -> Fraction:
        token = self.take()
        if token[0].isdigit() or token[0] == ".":
            return Fraction(token)
        if token in ("(", "{"):
            inner = self.expr()
            self.take(")" if token == "(" else "}")
            return inner
        if token == r"\frac":
            return self.group() / self.group()
        if token == r"\binom":
            n, k = self.group(), self.group()
            if n.denominator != 1 or k.denominator != 1 or n < 0:
                raise _NotArithmetic(token)
            return _bounded(Fraction(math.comb(int(n), int(k))))
        raise _NotArithmetic(token)

    def group(self) -> Fraction:
        self.take("{")
        inner = self.expr()
        self.take("}")
        return inner


def _power(base: Fraction, exponent: Fraction) -> Fraction:
    if exponent.denominator != 1:
        raise _NotArithmetic("a fractional power")  # roots are sympy's job
    n = exponent.numerator
    if base == 0:
        if n < 0:
            raise _NotArithmetic("0 to a negative power")
        return Fraction(0 if n else 1)
    if abs(base) == 1:
        return base**n
    bits = max(abs(base.numerator).bit_length(), base.denominator.bit_length()) - 1
    if abs(n) * bits * _LOG10_2 > MAX_DIGITS:
        raise TooLarge(f"a power here has more than {MAX_DIGITS:,} digits")
    return _bounded(base**n)


def _factorial(x: Fraction) -> Fraction:
    if x.denominator != 1 or x < 0:
        raise _NotArithmetic("a factorial of a non-integer")
    n = int(x)
    if n > 2 and math.lgamma(n + 1) / math.log(10) > MAX_DIGITS:
        raise TooLarge(f"{n}! has more than {MAX_DIGITS:,} digits")
    return Fraction(math.factorial(n))
