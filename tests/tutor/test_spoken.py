"""Arithmetic said in words, read into LaTeX the checker understands; spans of every part of a run."""

from __future__ import annotations

import pytest

from vibelocal.tutor.spoken import spans, to_latex


@pytest.mark.parametrize(
    ("words", "latex"),
    [
        ("40 plus 2", "40 + 2"),
        ("84 halved", "84 /2"),
        ("one half", r"\frac{1}{2}"),
        ("one over two", "1 / 2"),
        ("two thirds", r"\frac{2}{3}"),
        ("2 to the power 10", "2 ^ 10"),
        ("root two", r"\sqrt{2}"),
        ("forty-two", "42"),
        ("six times seven", r"6 \times 7"),
        ("5 divided by 2", "5 / 2"),
    ],
)
def test_to_latex(words, latex):
    assert to_latex(words) == latex


@pytest.mark.parametrize("words", ["eggs", "plus 2", "40 plus", "halved", "the", "a", "root"])
def test_not_arithmetic(words):
    assert to_latex(words) is None


def test_spans_cover_every_part_of_a_run():
    text = "Try 40 plus 2, or 4 2."
    found = {(text[s:e], latex) for s, e, latex in spans(text)}
    assert ("40 plus 2", "40 + 2") in found
    assert ("4 2", "42") in found
    assert not any(t.startswith("Try") for t, _ in found)
