"""The n-gram drafter and the gate that pauses drafting when drafts are rejected."""

from __future__ import annotations

import pytest

from vibelocal.engine.draft import DraftGate, NgramDrafter


@pytest.mark.parametrize(
    ("history", "limit", "draft"),
    [
        ([], 8, []),
        ([1, 2, 3], 8, []),  # nothing repeats
        ([1, 2, 3, 4, 1, 2], 8, [3, 4, 1, 2]),  # the bigram 1 2 came before: what followed it
        ([1, 2, 3, 4, 1, 2], 2, [3, 4]),  # at most `limit`
        ([1, 2, 3, 4, 1, 2], 0, []),
        ([1, 2, 9, 7, 2, 3, 1, 2], 3, [9, 7, 2]),  # 1 2 matched, not the single 2 of "2 3"
        ([5, 1, 2, 8, 6, 1, 2, 9, 1, 2], 8, [9, 1, 2]),  # the latest earlier occurrence wins
        ([4, 1, 2, 7, 5, 1, 2, 8, 4, 1, 2], 2, [7, 5]),  # the trigram 4 1 2 beats the later bigram 1 2
        ([7, 7, 7], 8, [7]),  # a run: the match ends one before the end
        ([3, 1, 5, 1], 8, []),  # a lone repeated token is below the minimum n-gram
    ],
)
def test_draft_follows_the_latest_longest_match(history, limit, draft):
    assert NgramDrafter(history).draft(limit) == draft


def test_single_token_matches_when_the_minimum_allows_them():
    assert NgramDrafter([3, 1, 5, 1], min_ngram=1).draft(8) == [5, 1]


def test_appending_one_by_one_equals_building_at_once():
    tokens = [1, 2, 3, 1, 2, 4, 1, 2, 3, 5, 2, 3, 1, 2]
    grown = NgramDrafter()
    for i, t in enumerate(tokens):
        grown.append(t)
        assert grown.draft(4) == NgramDrafter(tokens[: i + 1]).draft(4)


def test_truncate_forgets_the_dropped_tail():
    d = NgramDrafter([1, 2, 3, 9, 9, 1, 2])
    assert d.draft(2) == [3, 9]
    d.truncate(5)  # back to 1 2 3 9 9
    assert len(d) == 5 and d.draft(8) == []
    d.extend([1, 2])
    assert d.draft(2) == [3, 9]
    d.truncate(99)
    assert len(d) == 7


def test_bad_ngram_sizes_are_refused():
    with pytest.raises(ValueError, match="n-gram sizes"):
        NgramDrafter(min_ngram=3, max_ngram=2)


def test_gate_keeps_drafting_while_batches_are_faster_per_token():
    gate = DraftGate(window=2, pause=8)
    gate.decoded_one(0.010)
    for _ in range(6):
        gate.record(8, 8, 0.030)  # 9 tokens in 30 ms against 10 ms each
        assert gate.open
    assert gate.length == 8


def test_gate_pauses_when_batches_are_slower_and_backs_off_on_each_failed_retry():
    gate = DraftGate(window=2, pause=3, max_pause=8)
    gate.decoded_one(0.010)
    pauses = []
    for _ in range(4):
        gate.record(4, 1, 0.040)  # 2 tokens in 40 ms: slower than 10 ms each
        assert gate.open  # a window is two batches
        gate.record(4, 1, 0.040)
        assert not gate.open
        n = 0
        while not gate.open:
            gate.decoded_one(0.010)
            n += 1
        pauses.append(n)
    assert pauses == [3, 6, 8, 8]
    gate.record(8, 8, 0.020)
    gate.record(8, 8, 0.020)  # faster again: the back-off is forgotten
    assert gate.open and gate.next_pause == 3


def test_gate_drafts_less_after_a_rejection_and_more_after_acceptance():
    gate = DraftGate(max_length=8, window=100)
    gate.record(8, 2, 0.01)
    assert gate.length == 3
    gate.record(3, 3, 0.01)
    assert gate.length == 5
    gate.record(5, 0, 0.01)
    assert gate.length == 1
    for _ in range(5):
        gate.record(gate.length, gate.length, 0.01)
    assert gate.length == 8


def test_gate_without_a_one_token_timing_keeps_trying():
    gate = DraftGate(window=1)
    gate.record(4, 0, 1.0)
    assert gate.open
