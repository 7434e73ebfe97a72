"""Matrices and cases on a terminal: aligned blocks with box-drawing brackets, cases with its brace, boxed framed."""

from __future__ import annotations

import pytest

from vibelocal.answers.latex import math_to_unicode, to_spans, to_unicode
from vibelocal.answers.latex_blocks import brace, hconcat, table, width


@pytest.mark.parametrize(
    "latex, block",
    [
        ("$$\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}$$", "⎛ 1  2 ⎞\n⎝ 3  4 ⎠"),
        ("$$\\begin{bmatrix} 1 & 2 \\\\ 3 & 4 \\\\ 5 & 6 \\end{bmatrix}$$", "⎡ 1  2 ⎤\n⎢ 3  4 ⎥\n⎣ 5  6 ⎦"),
        ("$$\\begin{vmatrix} a & b \\\\ c & d \\end{vmatrix}$$", "│ a  b │\n│ c  d │"),
        ("$$\\begin{Vmatrix} a \\\\ b \\end{Vmatrix}$$", "‖ a ‖\n‖ b ‖"),
        ("$$\\begin{Bmatrix} 1 & 2 \\\\ 3 & 4 \\end{Bmatrix}$$", "⎧ 1  2 ⎫\n⎩ 3  4 ⎭"),
        ("$$\\begin{matrix} 1 & 10 \\\\ 100 & 1 \\end{matrix}$$", " 1   10\n100  1"),
        ("$$\\begin{array}{cc} 1 & 2 \\\\ 3 & 4 \\end{array}$$", "1  2\n3  4"),
        ("$$\\left( \\begin{array}{cc} 1 & 2 \\\\ 3 & 4 \\end{array} \\right)$$", "⎛ 1  2 ⎞\n⎝ 3  4 ⎠"),
        ("$$\\left[ \\begin{matrix} x \\\\ y \\end{matrix} \\right]$$", "⎡ x ⎤\n⎣ y ⎦"),
        # cases: left-aligned columns behind ⎧ ⎨ ⎩, three lines at least so that the brace keeps its point
        (
            "$$\\begin{cases} x^2 & \\text{if } x \\ge 0 \\\\ -x & \\text{otherwise} \\end{cases}$$",
            "⎧ x²  if x ≥ 0\n⎨\n⎩ -x  otherwise",
        ),
        (
            "$$\\begin{cases} 1 & x > 0 \\\\ 0 & x = 0 \\\\ -1 & x < 0 \\end{cases}$$",
            "⎧ 1   x > 0\n⎨ 0   x = 0\n⎩ -1  x < 0",
        ),
        ("$$\\left\\{ \\begin{array}{ll} a & b \\\\ c & d \\end{array} \\right.$$", "⎧ a  b\n⎨\n⎩ c  d"),
        # a matrix with LaTeX in its cells, and one nested in another
        (
            "$$\\begin{pmatrix} \\frac{1}{2} & \\sqrt{2} \\\\ \\alpha & x_1 \\end{pmatrix}$$",
            "⎛ ½  √2 ⎞\n⎝ α  x₁ ⎠",
        ),
        (
            "$$\\begin{bmatrix} \\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix} & 0 \\end{bmatrix}$$",
            "⎡ ⎛ 1 ⎞  0 ⎤\n⎣ ⎝ 2 ⎠    ⎦",
        ),
    ],
)
def test_environments_render_as_aligned_blocks(latex, block):
    spans = [s for s in to_spans(latex) if s.text.strip()]
    assert [(s.kind, s.text) for s in spans] == [("block", block)]


def test_text_around_a_block_sits_on_its_middle_line():
    text = "\\[ A = \\begin{bmatrix} 1 & -2 \\\\ 40 & 5 \\\\ 7 & 8 \\end{bmatrix}, \\det A \\ne 0 \\]"
    assert to_unicode(text) == "    ⎡ 1   -2 ⎤\nA = ⎢ 40  5  ⎥, det A ≠ 0\n    ⎣ 7   8  ⎦"


def test_an_inline_block_gets_lines_of_its_own():
    text = "So $M = \\begin{pmatrix} 1 & 0 \\\\ 0 & 1 \\end{pmatrix}$ is the identity."
    assert to_unicode(text) == "So \nM = ⎛ 1  0 ⎞\n    ⎝ 0  1 ⎠\n is the identity."
    # a one-row matrix stays inline
    assert to_unicode("so $v = \\begin{pmatrix} 1 & 2 \\end{pmatrix}$ here") == "so v = ( 1  2 ) here"


def test_a_boxed_matrix_gets_a_drawn_frame_not_brackets():
    text = "The answer is $\\boxed{\\begin{pmatrix} 1 & 0 \\\\ 0 & 1 \\end{pmatrix}}$."
    assert to_unicode(text) == ("The answer is \n┌──────────┐\n│ ⎛ 1  0 ⎞ │\n│ ⎝ 0  1 ⎠ │\n└──────────┘\n.")
    assert "[" not in to_unicode(text)
    # an extracted final answer: the matrix alone, aligned, unboxed
    assert (
        math_to_unicode("\\boxed{\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}}") == "⎛ 1  2 ⎞\n⎝ 3  4 ⎠"
    )


def test_an_unclosed_environment_reads_inline_as_before():
    assert to_unicode("$\\begin{pmatrix} 1 & 2$") == "1 2"
    assert to_unicode("$\\begin{aligned} a &= b \\\\ c &= d \\end{aligned}$") == "a = b \n c = d"


def test_layout_helpers():
    assert brace(1, left=True) == ["{"] and brace(3, left=True) == ["⎧", "⎨", "⎩"]
    assert brace(4) == ["⎫", "⎪", "⎬", "⎭"]
    assert table([["1", "22"], ["333"]], align="r") == ["  1  22", "333    "]
    assert hconcat([["x ="], ["⎛1⎞", "⎝2⎠"]]) == ["x =⎛1⎞", "   ⎝2⎠"]
    assert width("x\u0305y") == 2  # a combining overline takes no column
