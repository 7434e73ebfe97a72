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
    found, at, _ = run_shape(chunks, **kw)
    return found, at


def run_shape(chunks: list[str], **kw) -> tuple[str | None, int, str | None]:
    det = LoopDetector(**kw)
    for i, c in enumerate(chunks, start=1):
        if found := det.feed(c):
            return found, i, det.shape
    return None, len(chunks), None


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
    found, at, shape = run_shape(["@"] * 100)
    assert found and "'@'" in found and at <= 64 and shape == "character"


def test_one_character_inside_bigger_chunks():
    found, _ = run(["Hmm", " @@@@@@@@", "@@@@@@@@@@@@@@@@", "@@@@@@@@@@@@@@@@@@@@", "@" * 20])
    assert found and "'@'" in found


def test_one_token_repeated():
    found, at, shape = run_shape([" the"] * 200)
    assert found and "the" in found and at <= 48 + 16 + 1 and shape == "token"


def test_a_sentence_repeating():
    sentence = tokens(" Let me recompute the sum of the digits again.")
    found, at, shape = run_shape(sentence * 20)
    assert found and "sequence" in found and shape == "sequence"
    assert at <= len(sentence) * 6 + 16  # checked every 16 tokens


def test_a_long_paragraph_repeating_line_by_line():
    line = " ".join(f"w{i}" for i in range(80)) + "\n"  # 80+ tokens per line: longer than any period checked
    found, _, shape = run_shape(tokens(PROSE) + tokens(line) * 6)
    assert found and "line" in found and shape in ("line", "block")


def test_found_is_sticky():
    det = LoopDetector()
    for _ in range(100):
        det.feed("@")
    assert det.found and det.feed("fresh text") == det.found


def test_a_63_token_sentence_repeated_on_one_line():
    sentence = tokens("".join(f" v{i}" for i in range(62)) + ".")  # 63 chunks, no line break
    assert len(sentence) == 63
    found, at, shape = run_shape(tokens(PROSE) + sentence * 40)
    assert shape == "sequence" and "63-token" in found
    assert at <= len(tokens(PROSE)) + 63 * 4 + 16  # four copies, then the next check


def test_a_period_of_256_tokens_is_caught_and_257_is_not():
    for n, caught in ((256, True), (257, False)):
        block = [f" w{i}" for i in range(n)]  # no line breaks, no repeated character: only the period
        _, _, shape = run_shape(block * 5)
        assert (shape == "sequence") is caught, n


def test_a_block_of_short_lines_repeated():
    block = "".join(f"x = {i}\n" for i in range(16))  # 16 short lines, each under the line check's length
    found, at, shape = run_shape(tokens(PROSE) + tokens(block) * 10, max_period=16)  # the period check off
    assert shape == "block" and "16 lines" in found
    assert at <= len(tokens(PROSE)) + len(tokens(block)) * 4


def test_three_copies_of_a_paragraph_and_varied_lines_are_not_blocks():
    lines = "".join(f"Now x = {i} and y = {2 * i}.\n" for i in range(200))
    assert run(tokens(lines))[0] is None
    assert run(tokens("Check.\nOK.\n" * 3 + PROSE))[0] is None


def test_the_cost_per_chunk_is_flat():
    """The work of a check does not grow with what came before: count element comparisons of the probe."""
    import vibelocal.engine.loops as loops

    det = LoopDetector()
    calls = []
    real = loops.repeat_period

    def counting(seq, *a):
        calls.append(len(seq))
        return real(seq, *a)

    loops.repeat_period = counting
    try:
        for c in tokens(PROSE + "".join(f"line {i} of many.\n" for i in range(3000))):
            det.feed(c)
    finally:
        loops.repeat_period = real
    assert det.found is None
    assert max(calls) <= 2 * det._keep  # the window is bounded whatever the length of the text
