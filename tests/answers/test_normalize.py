"""Text normalisation: mixed numbers, spaced thousands, numbers side by side, font commands, trailing periods."""

from __future__ import annotations

import pytest

from vibelocal.answers.normalize import normalize, read_spaced_numbers


@pytest.mark.parametrize(
    ("text", "read", "side_by_side"),
    [
        ("2 1/2", r"\frac{5}{2}", ""),
        ("-7 3/4", r"-\frac{31}{4}", ""),
        (r"3\frac{1}{4}", r"\frac{13}{4}", ""),
        ("12 345", "12345", ""),
        ("1 000 000.5", "1000000.5", ""),
        ("12,345,678", "12345678", ""),
        ("4 2", "4 2", "4 2"),
        ("1 000 0", "1 000 0", "1 0"),
        ("2 3/2", "2 3/2", "2 3"),
        (r"\log_2 8", r"\log_2 8", ""),
        (r"2\frac{1}{2}\pi", r"2\frac{1}{2}\pi", "2\\frac{1"),
        ("(100, 200)", "(100, 200)", ""),
    ],
)
def test_spaced_numbers(text, read, side_by_side):
    assert read_spaced_numbers(text) == (read, side_by_side)


def test_presentation_is_stripped():
    assert normalize(r"\mathcal{B}").choice == "B"
    assert normalize(r"$\textbf{(B)}.$").choice == "B"
    assert normalize(r"5 \textbf{ cm}").units == "cm"
    assert normalize(r"\textnormal{12 cm}").text == "12"
    assert normalize("$7.$").text == "7"
    assert normalize("4 2").side_by_side == "4 2"
