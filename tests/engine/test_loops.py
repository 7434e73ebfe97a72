"""LoopDetector on synthetic token streams: degenerate characters, repeated token sequences, repeated lines."""

from __future__ import annotations

import re

from vibelocal.engine.loops import LoopDetector

PROSE = (
    "We need the smallest n such that n^2 + n + 41 is composite. For n = 0 we get 41, prime. "
    "For n = 1 we get 43, prime. Let me check n = 40: 1600 + 40 + 41 = 1681 = 41^2, composite.\n"
    "Wait, is there a smaller one? The polynomial is Euler's famous prime generator, so every value "
    "from 0 to 39 is prime. Let me verify a couple: n = 10 gives 151, prime; n = 20 gives 461, prime.\n"
    "| n | value |\n| --- | --- |\n| 0 | 41 |\n| 1 | 43 |\n| 2 | 47 |\n"
    "So the answer is 40.\n"
)


def tokens(text: str) -> list[str]:
    """Token-like chunks: a word with its leading space, or one punctuation mark."""
    return re.findall(r"\s*\w+|\s*[^\w\s]|\s+", text)


def run(chunks: list[str], **kw) -> tuple[str | None, int]:
    det = LoopDetector(**kw)
    for i, c in enumerate(chunks, start=1):
        if found := det.feed(c):
            return found, i
    return None, len(chunks)


def test_normal_reasoning_is_not_a_loop():
    assert run(tokens(PROSE * 3))[0] is None  # the same paragraph three times is still not a loop


def test_counting_and_tables_are_not_loops():
    counting = ", ".join(str(i) for i in range(1, 400))
    assert run(tokens(counting))[0] is None
    table = "".join(f"| {i} | {i * i} | {i**3} |\n" for i in range(60))
    assert run(tokens(table))[0] is None
    rule = "-" * 30 + "\n"
    assert run(list(rule))[0] is None


def test_one_character_repeated():
    found, at = run(["@"] * 100)
    assert found and "'@'" in found and at <= 40


def test_one_character_inside_bigger_chunks():
    found, _ = run(["Hmm", " @@@@@@@@", "@@@@@@@@@@@@@@@@", "@@@@@@@@@@@@@@@@@@@@"])
    assert found and "'@'" in found


def test_one_token_repeated():
    found, at = run([" the"] * 200)
    assert found and "the" in found and at <= 48 + 8 + 1


def test_a_sentence_repeating():
    sentence = tokens(" Let me recompute the sum of the digits again.")
    found, at = run(sentence * 20)
    assert found and "sequence" in found
    assert at <= len(sentence) * 6 + 8  # checked every 8 tokens


def test_a_long_paragraph_repeating_line_by_line():
    line = " ".join(f"w{i}" for i in range(80)) + "\n"  # 80+ tokens per line: longer than any period checked
    found, _ = run(tokens(PROSE) + tokens(line) * 6)
    assert found and "line" in found


def test_found_is_sticky():
    det = LoopDetector()
    for _ in range(100):
        det.feed("@")
    assert det.found and det.feed("fresh text") == det.found
