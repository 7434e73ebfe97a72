"""LaTeX to Unicode: a table of conversions, boxed spans, code left alone, streaming in any chunks."""

from __future__ import annotations

import pytest

from vibelocal.answers.latex import Span, math_to_unicode, to_spans, to_unicode


@pytest.mark.parametrize(
    "latex, text",
    [
        # fractions
        (r"$\frac{a}{b}$", "a/b"),
        (r"$\frac{1}{2}$", "½"),
        (r"$\frac12$", "½"),
        (r"$\dfrac{17}{128}$", "17/128"),
        (r"$\frac{x+1}{x-1}$", "(x+1)/(x-1)"),
        (r"$\frac{a}{b}x$", "(a/b)x"),
        (r"$2\frac{1}{2}$", "2½"),
        (r"$\frac{\sqrt{3}}{2}$", "√3/2"),
        # powers and indices
        (r"$x^2 + y_{10}$", "x² + y₁₀"),
        (r"$x^{n+1}$", "xⁿ⁺¹"),
        (r"$10^{-3}$", "10⁻³"),
        (r"$a_{ij}$", "aᵢⱼ"),
        (r"$e^{i\pi}$", "e^(iπ)"),
        (r"$x^{q}$", "x^q"),
        (r"$x_{\text{max}}$", "xₘₐₓ"),
        (r"$x_{\text{best}}$", "x_(best)"),
        (r"$90^\circ$", "90°"),
        (r"$\sin^2 x$", "sin² x"),
        (r"$\log_2 8$", "log₂ 8"),
        # roots
        (r"$\sqrt{x}$", "√x"),
        (r"$\sqrt{x+1}$", "√(x+1)"),
        (r"$\sqrt[3]{x}$", "∛x"),
        (r"$\sqrt[4]{16}$", "∜16"),
        (r"$\sqrt[5]{2}$", "⁵√2"),
        # symbols
        (r"$\alpha\beta\Gamma\pi$", "αβΓπ"),
        (r"$a \cdot b \times c \div d \pm e$", "a · b × c ÷ d ± e"),
        (r"$a \le b \ge c \ne d \approx e \leq f \geq g \neq h$", "a ≤ b ≥ c ≠ d ≈ e ≤ f ≥ g ≠ h"),
        (r"$\infty \to \in \subseteq \cup \cap$", "∞ → ∈ ⊆ ∪ ∩"),
        (r"$\sum_{i=1}^{n} i$", "∑ᵢ₌₁ⁿ i"),
        (r"$\prod \int \ldots \cdots$", "∏ ∫ … ⋯"),
        (r"$x \not= y$", "x ≠ y"),
        (r"$a \equiv b \pmod{n}$", "a ≡ b (mod n)"),
        (r"$\binom{5}{2}$", "C(5, 2)"),
        (r"$\{1, 2\}$", "{1, 2}"),
        (r"$\vec{v}$", "v\u20d7"),
        # delimiters, text, blackboard
        (r"$\left( \frac{1}{2} \right)$", "( ½ )"),
        (r"$\left. x \right|$", "x |"),
        (r"$\text{if } x > 0$", "if x > 0"),
        (r"$x \in \mathbb{R}$", "x ∈ ℝ"),
        (r"$\mathbb{N} \subseteq \mathbb{Z}$", "ℕ ⊆ ℤ"),
        (r"$$x = 1$$", "x = 1"),
        (r"\(x_1\)", "x₁"),
        (r"\[ x^2 \]", "x²"),
        (r"\frac{1}{2} in prose", "½ in prose"),
        # left alone
        ("snake_case and x^2 in prose", "snake_case and x^2 in prose"),
        ("It costs $5 and $10.", "It costs $5 and $10."),
        ("Price: $ 5", "Price: $ 5"),
        (r"\escaped \$ sign", r"\escaped $ sign"),
        ("Use `$x^2$` in code", "Use `$x^2$` in code"),
        ("```python\nx = a^2  # $y$ \\frac\n```\nand $x^2$", "```python\nx = a^2  # $y$ \\frac\n```\nand x²"),
        (r"$\unknowncommand{x}{y} z$", r"\unknowncommand{x}{y} z"),
        (
            r"$\unknown{\left\{ x \right.} + \alpha$",
            r"\unknown{\left\{ x \right.} + α",
        ),  # `\{` inside an argument
    ],
)
def test_to_unicode(latex, text):
    assert to_unicode(latex) == text


def test_boxed_is_its_own_span():
    assert to_spans(r"The answer is $\boxed{\frac{3}{4}}$.") == [
        Span("The answer is "),
        Span("¾", "boxed"),
        Span("."),
    ]
    assert to_unicode(r"\boxed{42} and \fbox{7}", box=("<", ">")) == "<42> and <7>"
    assert to_unicode(r"\boxed 42") == "42"  # not a box


def test_code_spans_are_untouched():
    text = "See `a_1` and\n```\n$\\alpha$\n```\n"
    assert to_spans(text) == [
        Span("See "),
        Span("`a_1`", "code"),
        Span(" and\n"),
        Span("```\n$\\alpha$\n```\n", "code"),
    ]


def test_math_to_unicode():
    assert math_to_unicode(r"\frac{\pi}{4}") == "π/4"
    assert math_to_unicode(r"\boxed{x^2}") == "x²"
    assert math_to_unicode(r"3\sqrt{2}") == "3√2"
