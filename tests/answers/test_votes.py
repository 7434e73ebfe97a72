"""Voting: grouping by an injected equivalence, by mathcheck (the default), ties, unanswered samples, order."""

from __future__ import annotations

import random

import pytest

from vibelocal.answers.votes import group_answers, math_equivalence, text_equivalence, vote_seeds


def same_number(a: str, b: str) -> bool:
    return float(a) == float(b)


def test_grouping_with_an_injected_equivalence():
    result = group_answers(["0.5", "3", ".5", None, "3.0", "0.50"], equivalent=same_number)
    assert [(g.answer, g.members) for g in result.groups] == [("0.5", [0, 2, 5]), ("3", [1, 4])]
    assert result.unanswered == [3]
    assert result.agreement == "3/6"
    assert result.winner is not None and result.winner.answer == "0.5"
    assert result.to_dict()["ratio"] == 0.5


def test_tie_goes_to_the_group_seen_first():
    result = group_answers(["2", "1", "1", "2"], equivalent=same_number)
    assert result.winner is not None and result.winner.answer == "2"
    assert result.agreement == "2/4"


def test_no_answers_at_all():
    result = group_answers([None, None], equivalent=same_number)
    assert result.winner is None
    assert result.agreement == "0/2"
    assert result.to_dict()["answer"] is None


def test_a_failing_equivalence_counts_as_different():
    def broken(a: str, b: str) -> bool:
        raise ValueError("cannot parse")

    result = group_answers(["x", "x ", "y"], equivalent=broken)
    assert [g.members for g in result.groups] == [[0, 1], [2]]  # whitespace-equal still groups


def test_default_equivalence_is_mathematical():
    result = group_answers(["1/2", "0.5", r"\frac12", "3"])
    assert [(g.answer, g.members) for g in result.groups] == [("1/2", [0, 1, 2]), ("3", [3])]
    assert result.agreement == "3/4"


@pytest.mark.parametrize(
    "a, b, same",
    [(r"\sqrt{2}/2", r"\frac{1}{\sqrt{2}}", True), ("2\\pi", "6.28", False), ("x^2", "x**2", True)],
)
def test_math_equivalence(a, b, same):
    assert math_equivalence()(a, b) is same


def test_text_equivalence_and_seeds():
    assert text_equivalence("def f():\n    return 1", "def f():  return 1")
    assert not text_equivalence("a", "b")
    assert vote_seeds(7, 3) == [7, 8, 9]
    assert vote_seeds(2**32 - 2, 3) == [2**32 - 2, 0, 1]  # 4,294,967,295 is llama.cpp's "random": skipped


def within_one(a: str, b: str) -> bool:
    """Not transitive: 1 ~ 2 and 2 ~ 3, but 1 !~ 3."""
    return abs(float(a) - float(b)) <= 1


def grouped(answers, equivalent=None) -> tuple[list[list[str]], str]:
    result = group_answers(answers, equivalent=equivalent)
    groups = sorted(sorted(answers[i].strip() for i in g.members) for g in result.groups)
    return groups, result.agreement


@pytest.mark.parametrize(
    ("answers", "equivalent"),
    [
        (["50%", "50", "0.5", "1/2", "50", None, r"\frac{1}{2}", "50.0"], None),
        ([r"\sqrt{2}/2", r"\frac{1}{\sqrt{2}}", "0.7071", "x = 3", "3", " 3 ", "3.0", None], None),
        (["1", "2", "3", "2", "3", "1.5"], within_one),
    ],
)
def test_grouping_is_independent_of_sample_order(answers, equivalent):
    """A property over shuffled samples: the same groups (as sets of answers) and the same agreement every time."""
    expected = grouped(answers, equivalent)
    rng = random.Random(12)
    for _ in range(12):
        shuffled = list(answers)
        rng.shuffle(shuffled)
        assert grouped(shuffled, equivalent) == expected


def test_a_percent_does_not_glue_two_values_together():
    for order in (["50%", "50", "0.5"], ["50", "50%", "0.5"], ["0.5", "50", "50%"]):
        result = group_answers(order)
        groups = sorted(sorted(order[i] for i in g.members) for g in result.groups)
        assert groups == [["0.5", "50%"], ["50"]]
        assert result.agreement == "2/3"
