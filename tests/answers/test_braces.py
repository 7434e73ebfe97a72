"""The one bracket matcher: nesting, escapes, unbalanced text, start offsets, and the open-brace count."""

from __future__ import annotations

import pytest

from vibelocal.answers.braces import closing_bracket, open_braces


@pytest.mark.parametrize(
    "text, open_at, closes_at",
    [
        ("{}", 0, 1),  # empty group
        ("{a{b}c}", 0, 6),  # nested
        ("{a{b}c}", 2, 4),  # an inner group
        ("{a}{b}", 3, 5),  # the second group: the scan starts at open_at
        (r"{a\}b}", 0, 5),  # an escaped closer does not close
        (r"{\{}", 0, 3),  # an escaped opener does not open
        (r"\boxed{\left\{ x > 0 \right.}", 6, 28),  # a piecewise brace with no partner
        (r"{a\\}", 0, 4),  # a line break `\\`, then the closer
        (r"{\text{a {b} c}}", 0, 15),  # braces inside \text{}
        (r"so \boxed{42}", 9, 12),  # a box at the very end of the text
        (r"so \boxed{42", 9, None),  # unclosed at the end
        ("{a{b}", 0, None),  # unbalanced
        ("{", 0, None),
        ("{a\\", 0, None),  # a lone trailing backslash
        ("(a(b)c)", 0, 6),  # parentheses nest the same way
        (r"(\)x)", 0, 4),  # `\)` is a math delimiter, not a parenthesis
        ("({)", 0, 2),  # only the same kind nests
        ("[1,[2]]", 0, 6),
        (r"\sqrt[3]{8}", 5, 7),
        (r"\sqrt[3]{8}", 8, 10),
    ],
)
def test_closing_bracket(text, open_at, closes_at):
    assert closing_bracket(text, open_at) == closes_at


@pytest.mark.parametrize(
    "text, count",
    [
        ("", 0),
        ("plain prose", 0),
        ("{", 1),
        ("{}", 0),
        ("{{}", 1),
        (r"\frac{1}{", 1),
        ("}{", 1),  # a stray closer closes nothing
        ("a}}", 0),
        (r"\{", 0),
        (r"\left\{ x", 0),
        (r"\\{", 1),  # a line break, then a real opener
        (r"\text{a {b}", 1),
    ],
)
def test_open_braces(text, count):
    assert open_braces(text) == count
