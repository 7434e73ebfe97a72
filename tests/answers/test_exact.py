"""Exact arithmetic: plain-number answers as Fractions, big powers and factorials, refusals past the bound."""

from __future__ import annotations

from fractions import Fraction

import pytest

from vibelocal.answers.exact import MAX_DIGITS, TooLarge, digits, value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("42", Fraction(42)),
        ("-0", Fraction(0)),
        ("0.25", Fraction(1, 4)),
        (".5", Fraction(1, 2)),
        (r"\frac{3}{4}", Fraction(3, 4)),
        (r"\dfrac12", Fraction(1, 2)),
        (r"6 \times 7", Fraction(42)),
        (r"84 \div 2", Fraction(42)),
        ("2^{10}", Fraction(1024)),
        ("2^{-2}", Fraction(1, 4)),
        ("-2^2", Fraction(-4)),
        ("(1+2)*3", Fraction(9)),
        (r"\left(\frac{1}{2}\right)", Fraction(1, 2)),
        ("3!", Fraction(6)),
        (r"\binom{5}{2}", Fraction(10)),
        (r"1.2\times 10^{3}", Fraction(1200)),
    ],
)
def test_plain_arithmetic_is_exact(text, expected):
    assert value(text) == expected


@pytest.mark.parametrize("text", ["x", r"\sqrt{2}", r"\pi", "2 3", "1/0", "(1, 2)", "4^{1/2}", "2.5!", ""])
def test_anything_else_is_not_read(text):
    assert value(text) is None


def test_big_numbers_are_exact():
    assert value("2^{2025}") == 2**2025
    assert value("2024^{4046}") == Fraction(2024**4046)
    assert 13_370 <= digits(Fraction(2024**4046)) <= 13_380  # 4046 * log10(2024) = 13,376.9
    big = value("1/2004!")
    assert big is not None and big.numerator == 1 and digits(big) > 5000


@pytest.mark.parametrize("text", ["10^{10^{10}}", "100000!", "2^{400000}", "(10^{60000})^2"])
def test_past_the_digit_bound_is_refused_before_computing(text):
    with pytest.raises(TooLarge):
        value(text)
    assert MAX_DIGITS == 100_000
