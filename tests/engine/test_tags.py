"""ThinkTags: engine-made text encoded with single-token tags as their ids, plain text by the tokenizer."""

from __future__ import annotations

import pytest

from vibelocal.engine.tags import ThinkTags


def chars(text: str) -> list[int]:
    return [ord(c) for c in text]  # a stand-in tokenizer: one id per character


@pytest.mark.parametrize(
    ("tags", "text", "expected"),
    [
        (ThinkTags(), "a</think>b", chars("a</think>b")),
        (ThinkTags(open_id=-1, close_id=-2), "\n</think>\n\n", [10, -2, 10, 10]),
        (ThinkTags(open_id=-1, close_id=-2), "<think>\n\n</think>", [-1, 10, 10, -2]),
        (ThinkTags(open_id=-1, close_id=-2), "x</think></think>", [120, -2, -2]),
        (ThinkTags(close_id=0), "ok</think>", [111, 107, 0]),  # id 0 is a real id
        (ThinkTags(close_id=-2), "<think>y</think>", [*chars("<think>y"), -2]),
    ],
)
def test_encode(tags, text, expected):
    assert tags.encode(text, chars) == expected


def test_modes_and_pieces():
    assert ThinkTags().mode == "text" and ThinkTags(open_id=5, close_id=6).mode == "token"
    assert ThinkTags(close_id=6).mode == "mixed"
    assert ThinkTags(open_id=5, close_id=6).pieces() == {5: b"<think>", 6: b"</think>"}
    assert ThinkTags(open_id=5, close_id=6).ids() == {5: "open", 6: "close"}
