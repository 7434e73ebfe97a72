"""ThinkSplitter table tests: every case fed whole, split at every position, and one character at a time."""

from __future__ import annotations

import random

import pytest

from vibelocal.engine.think import Piece, ThinkSplitter, ThinkState

S, T, A = ThinkState.START, ThinkState.THINKING, ThinkState.ANSWER

# (name, start state, model output, expected thinking, expected answer, truncated)
CASES = [
    (
        "think then answer",
        S,
        "<think>\nLet me see.\n</think>\n\nThe answer is 42.",
        "Let me see.\n",
        "The answer is 42.",
        False,
    ),
    ("no think at all", S, "Just an answer, no reasoning.", "", "Just an answer, no reasoning.", False),
    ("leading whitespace", S, "\n\n  <think>x</think>y", "x", "y", False),
    ("prefilled inside thinking", T, "step one.\n</think>\nFinal.", "step one.\n", "Final.", False),
    ("prefilled empty block", A, "  \nThe answer", "", "The answer", False),
    ("no closing tag", S, "<think>forever and ever", "forever and ever", "", True),
    ("prefill, no closing tag", T, "still thinking", "still thinking", "", True),
    ("nested open dropped", S, "<think>a<think>b</think>c", "ab", "c", False),
    ("second think block", S, "<think>a</think>b<think>c</think>d", "ac", "bd", False),
    ("bare close: the answer so far was reasoning", S, "answer </think>more", "answer ", "more", False),
    ("bare close at once", S, "</think>\n\nFinal.", "", "Final.", False),
    (
        "bare close, multi-line reasoning",
        S,
        "Let me see.\nIt is 4.</think>\n4",
        "Let me see.\nIt is 4.",
        "4",
        False,
    ),
    ("stray close after a block is dropped", S, "<think>a</think>b</think>c", "a", "bc", False),
    ("prefill, repeated open eats its whitespace", T, "<think>\n\n step</think> ok", "step", "ok", False),
    ("trailing partial tag is released", S, "<think>a</think>b <", "a", "b <", False),
    ("a lone partial open tag is answer", S, "<thi", "", "<thi", False),
    ("angle brackets", S, "<think>x < y and a<b</think>ok <3", "x < y and a<b", "ok <3", False),
    ("partial tag at end", S, "<think>abc</thi", "abc</thi", "", True),
    ("look-alike tag", S, "<thinker> hi", "", "<thinker> hi", False),
    ("merged tokens", T, "so 6*7=42.</think>\n\n\\boxed{42}", "so 6*7=42.", "\\boxed{42}", False),
    ("empty output", S, "", "", "", False),
    ("only whitespace", S, " \n ", "", "", False),
]


def run(start: ThinkState, chunks: list[str]) -> tuple[str, str, ThinkSplitter, list[Piece]]:
    sp = ThinkSplitter(start=start)
    pieces: list[Piece] = []
    for c in chunks:
        pieces += sp.feed(c)
    pieces += sp.finish()
    thinking = answer = ""
    for p in pieces:
        if p.kind == "bare_close":  # what the engine does: the answer so far becomes thinking
            thinking, answer = thinking + answer, ""
        thinking += p.text if p.kind == "thinking" else ""
        answer += p.text if p.kind == "answer" else ""
    return thinking, answer, sp, pieces


def splits(text: str):
    yield [text]
    for i in range(len(text) + 1):
        yield [text[:i], text[i:]]
    for i in range(len(text)):
        for j in range(i, len(text) + 1):
            yield [text[:i], text[i:j], text[j:]]
    yield list(text)
    rng = random.Random(len(text))
    for _ in range(20):
        cuts = sorted(rng.sample(range(len(text) + 1), min(4, len(text) + 1)))
        yield [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]


@pytest.mark.parametrize(
    ("name", "start", "text", "thinking", "answer", "truncated"), CASES, ids=[c[0] for c in CASES]
)
def test_splitter_cases_at_every_split(name, start, text, thinking, answer, truncated):
    for chunks in splits(text):
        got_t, got_a, sp, pieces = run(start, chunks)
        assert (got_t, got_a) == (thinking, answer), chunks
        assert sp.truncated is truncated
        for p in pieces:
            assert "<think>" not in p.text
            assert "</think>" not in p.text


def test_markers_count_blocks():
    _, _, sp, pieces = run(S, ["<think>a</think>b<think>c</think>d"])
    kinds = [p.kind for p in pieces]
    assert kinds == ["open", "thinking", "close", "answer", "open", "thinking", "close", "answer"]
    assert (sp.opened, sp.closed) == (2, 2)


def test_prefill_counts_as_an_open_block():
    sp = ThinkSplitter(start=T)
    assert sp.opened == 1 and sp.thinking
    assert sp.feed("x</think>") == [Piece("thinking", "x"), Piece("close")]
    assert sp.state is A and sp.closed == 1


def test_partial_tag_is_held_until_disambiguated():
    sp = ThinkSplitter(start=T)
    assert sp.feed("a.</") == [Piece("thinking", "a.")]
    assert sp.feed("thi") == []
    assert sp.feed("s is text") == [Piece("thinking", "</this is text")]


def test_revert_close_goes_back_to_thinking():
    sp = ThinkSplitter(start=T)
    sp.feed("short</think>answer")
    sp.revert_close()
    assert sp.thinking and sp.closed == 0
    assert sp.feed("Wait, more") == [Piece("thinking", "Wait, more")]


def test_custom_tags():
    sp = ThinkSplitter(open_tag="<reasoning>", close_tag="</reasoning>")
    pieces = sp.feed("<reason") + sp.feed("ing>r</reasoning>a")
    assert [p for p in pieces if p.text] == [Piece("thinking", "r"), Piece("answer", "a")]


def test_tags_by_token_id():
    sp = ThinkSplitter()
    assert sp.tag("open") == [Piece("open")]
    assert sp.feed("\n x<") == [Piece("thinking", "x")]  # `<` held: it may begin a tag in text
    assert sp.tag("close") == [Piece("thinking", "<"), Piece("close")]
    assert sp.feed("\n\nok") == [Piece("answer", "ok")]
    assert (sp.opened, sp.closed, sp.bare_close) == (1, 1, False)


def test_a_bare_close_token_marks_what_came_before():
    sp = ThinkSplitter()
    assert sp.feed("reasoning") == [Piece("answer", "reasoning")]
    assert sp.tag("close") == [Piece("bare_close")]
    assert sp.feed(" 42") == [Piece("answer", "42")]
    assert sp.bare_close and not sp.truncated and sp.opened == 0
    assert sp.tag("close") == []  # a second one is a stray tag: dropped
