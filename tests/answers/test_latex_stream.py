"""Streaming LaTeX to Unicode: the same output in any chunks, bounded hold-back, nothing lost or doubled."""

from __future__ import annotations

import random

import pytest

from vibelocal.answers.latex import HOLD_LIMIT, Span, to_spans
from vibelocal.answers.latex_stream import UnicodeStream

SAMPLES = [
    "We have $x^2 + 1 = 5$, so $x = \\pm 2$. Then \\[ \\frac{a}{b} \\]\nThe answer is $\\boxed{\\frac{3}{4}}$.\n\n"
    "```python\nprint(a^2)  # $x$\n```\nDone `code $x$` and it costs $5.\n",
    "Let \\text{foo bar} be $\\mathbb{R}$, and \\(x_1\\). **Final Answer** \\boxed{\\dfrac{1}{2}}",
    "$$\n\\sum_{k=1}^{n} k = \\frac{n(n+1)}{2}\n$$\nso a ~~~ b\n~~~\ncode ~~~\n~~~\nend $5",
]


@pytest.mark.parametrize("text", SAMPLES)
def test_stream_in_random_chunks_matches_whole_text(text):
    rng = random.Random(7)
    expected = to_spans(text)
    for _ in range(100):
        stream, got, i = UnicodeStream(), [], 0
        while i < len(text):
            k = rng.randint(1, 7)
            got += stream.feed(text[i : i + k])
            i += k
        got += stream.flush()
        assert _flat(got) == _flat(expected)


def _flat(spans: list[Span]) -> str:
    return "".join(f"[{s.text}]" if s.kind == "boxed" else s.text for s in spans)


def test_stream_releases_text_before_the_end():
    stream = UnicodeStream()
    assert _flat(stream.feed("Hello wor")) == "Hello "
    assert _flat(stream.feed("ld, $x^")) == "world, "  # the math region is still open
    assert _flat(stream.feed("2$ is\n")) == "x² is\n"
    assert _flat(stream.feed("```py\nprint(1)\n")) == "```py\nprint(1)\n"  # code goes out line by line
    assert _flat(stream.feed("```\ndone")) == "```\n"
    assert _flat(stream.flush()) == "done"


# ----------------------------------------------------------------------------- unbalanced input, any chunking

FRAGMENTS = [
    "Let S = {1, 2, 3",  # an unbalanced brace in prose (set notation)
    "for (int i = 0; i < n; i++) {",  # a code problem in prose
    "\\textbf{never closed ",
    "\\frac{a}{b} ",
    "$x^2$",
    " costs $5 and ",
    "\\[ \\sum_{k=1}^{n} k ",
    "\\]",
    "`inline",
    "code` ",
    "\n```py\nprint(1)\n```\n",
    "\n\n",
    "\n  ",
    "}",
    " word",
    " the sum is \\boxed{42}. ",
    "\\alpha \\beta ",
    "\\sqrt[3]{8} ",
    "filler " * 40,
    "So $A = \\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}$ here",
    "\\[ f(x) = \\begin{cases} x & x > 0 \\\\ 0 & \\text{else} \\end{cases} \\]\n",
]


def _chunked(text: str, rng: random.Random, most: int) -> list[Span]:
    stream, got, i = UnicodeStream(), [], 0
    while i < len(text):
        k = rng.randint(1, most)
        got += stream.feed(text[i : i + k])
        i += k
    return got + stream.flush()


def _whole_fed(text: str) -> list[Span]:
    stream = UnicodeStream()
    return stream.feed(text) + stream.flush()


@pytest.mark.parametrize("seed", range(30))
def test_any_chunking_gives_the_same_output(seed):
    """Property: random texts (unbalanced braces, stray dollars, unclosed math, code, long runs past the hold
    limit) give identical output however they are chunked, and the same as feeding them in one piece."""
    rng = random.Random(seed)
    text = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(5, 60)))
    expected = _flat(_whole_fed(text))
    for most in (1, 3, 17, 400):
        assert _flat(_chunked(text, rng, most)) == expected


def _words(text: str) -> list[str]:
    return text.split()


def test_an_unbalanced_brace_loses_and_repeats_nothing():
    words = [f"w{i}" for i in range(3000)]
    text = "Let S = {1, 2, 3 and " + " ".join(words) + " end."
    stream, got = UnicodeStream(), []
    longest_hold = 0
    for i in range(0, len(text), 3):
        got += stream.feed(text[i : i + 3])
        longest_hold = max(longest_hold, len(stream._buf))
    got += stream.flush()
    out = _flat(got)
    assert out == text  # prose with a bare brace is text: converted to itself, nothing lost or doubled
    assert longest_hold < 16  # a bare brace in prose holds nothing back


@pytest.mark.parametrize(
    "opener",
    ["\\textbf{", "costs $5 and ", "\\[ x = ", "`code "],
)
def test_a_construct_that_never_closes_is_released_after_the_hold_limit(opener):
    words = [f"w{i}" for i in range(2000)]
    text = "Start " + opener + " ".join(words) + " end."
    stream, got, longest_hold = UnicodeStream(), [], 0
    for i in range(0, len(text), 4):
        got += stream.feed(text[i : i + 4])
        longest_hold = max(longest_hold, len(stream._buf))
    released_before_flush = _flat(got)
    got += stream.flush()
    out = _flat(got)
    assert longest_hold <= 2 * HOLD_LIMIT  # bounded, however long the text runs
    assert len(released_before_flush) > len(text) - 2 * HOLD_LIMIT
    assert [w for w in _words(out) if w.startswith("w")] == words  # every word once, in order
    assert out.endswith("end.")


def test_a_balanced_argument_across_spaces_is_still_held_whole():
    stream = UnicodeStream()
    assert _flat(stream.feed("See \\textbf{two words")) == "See "
    assert _flat(stream.feed("} and ")) == "two words and "
    assert _flat(stream.feed("\\frac {1} {2} x")) == ""  # the fraction's second argument may still follow
    assert _flat(stream.flush()) == "½ x"
