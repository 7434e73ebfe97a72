"""The hint filter: every trivial rewrite of the answer is caught by the checker; harmless hints pass untouched."""

from __future__ import annotations

import pytest

from vibelocal.tutor.hints import REDACTED, filter_hint

EGGS = "A box holds 6 rows of 7 eggs. How many eggs are in the box?"


@pytest.mark.parametrize(
    ("hint", "key", "leak"),
    [
        ("Try 40 plus 2.", "42", "40 plus 2"),
        ("It is 4 2, isn't it?", "42", "4 2"),
        ("Say four two out loud.", "42", "four two"),
        ("Think of 84 halved.", "42", "84 halved"),
        ("Forty two eggs.", "42", "Forty two"),
        ("Half of 84 is what you need.", "42", "Half of 84"),
        ("Start from 21 doubled.", "42", "21 doubled"),
        ("It comes to 50 minus 8.", "42", "50 minus 8"),
        ("Picture 2 times 21 eggs.", "42", "2 times 21"),
        ("The answer is one half.", r"\frac{1}{2}", "one half"),
        ("The answer is one over two.", "1/2", "one over two"),
        ("About a half of it.", "0.5", "a half"),
        ("Two thirds of the cake.", r"\frac{2}{3}", "Two thirds"),
        ("Work out 2 to the power 10.", "1024", "2 to the power 10"),
        ("Work out 2 to the power of 10.", "1024", "2 to the power of 10"),
        ("Think of 32 squared.", "1024", "32 squared"),
        ("Use sqrt(2) here.", r"\sqrt{2}", "sqrt(2)"),
        ("It is root two.", r"\sqrt{2}", "root two"),
        ("It is the square root of 2.", r"\sqrt{2}", "the square root of 2"),
        ("Close to 1 000 steps.", "1000", "1 000"),
    ],
)
def test_rewrites_of_the_answer_are_caught(hint, key, leak):
    filtered = filter_hint(hint, key, EGGS)
    assert filtered.leaked and leak in filtered.leaks, filtered
    assert leak not in filtered.text and REDACTED in filtered.text


@pytest.mark.parametrize(
    ("hint", "key"),
    [
        ("Count the eggs in one row first, then think about how many rows there are.", "42"),
        ("Multiply 6 by 7.", "42"),
        ("Half of the rows have brown eggs; it does not matter.", "42"),
        ("There are 2 steps: add, then multiply.", "1024"),
        ("Add 2 and 3 first, then square the result.", "1024"),
        ("Use 3.14 for pi in a rough check.", r"\pi"),
        ("Think of one row of 7 eggs.", r"\sqrt{2}"),
        ("Try 40 plus 3 and compare.", "42"),
    ],
)
def test_harmless_hints_pass(hint, key):
    filtered = filter_hint(hint, key, EGGS)
    assert not filtered.leaked, filtered
    assert filtered.text == hint


def test_spoken_arithmetic_copied_from_the_problem_is_kept():
    problem = "What is 6 times 7?"
    assert (
        filter_hint("Work out 6 times 7 row by row.", "42", problem).text == "Work out 6 times 7 row by row."
    )
    assert filter_hint("Is it 4 2?", "42", problem).leaked  # a bare value is always hidden
