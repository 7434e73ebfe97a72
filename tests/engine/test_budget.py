"""BudgetController and AnswerBudget: pure state machines driven token by token (tables, no model)."""

from __future__ import annotations

import pytest

from vibelocal.engine.budget import AnswerBudget, BudgetController, ends_sentence


def drive(ctl: BudgetController, chunks: list[str], start: int = 0):
    """Feed thinking tokens; return (token count at wrap-up or None, notes with their token numbers)."""
    notes = []
    for i, chunk in enumerate(chunks, start=start + 1):
        step = ctl.step(i, chunk)
        notes += [(i, n) for n in step.notes]
        if step.wrap_up:
            return i, notes
    return None, notes


@pytest.mark.parametrize(
    ("chunk", "expected"),
    [
        (".", True),
        (" end.", True),
        ("?", True),
        ('!"', False),
        ("\n", True),
        ("x\ny", True),
        (". ", True),
        (" mid", False),
        (",", False),
        ("3.", False),
        (" 1.", False),
        ("e.g", False),
        ("", False),
        ("。", True),
    ],
)
def test_ends_sentence(chunk, expected):
    assert ends_sentence(chunk) is expected


def test_cap_hit_mid_word_waits_for_the_sentence_end():
    ctl = BudgetController(10, grace=48)
    words = [" word"] * 9 + [" mid", "dle", " of", " it", "."] + [" more"] * 50
    at, notes = drive(ctl, words)
    assert at == 14  # the token carrying the full stop
    assert (9, "warning") in notes and (14, "wrap_up") in notes
    assert ctl.hit and ctl.wrapped


def test_cap_on_a_sentence_end_wraps_at_once():
    ctl = BudgetController(5)
    at, _ = drive(ctl, [" a"] * 4 + ["."])
    assert at == 5


def test_grace_runs_out_without_a_sentence_end():
    ctl = BudgetController(10, grace=3)
    at, _ = drive(ctl, [" x"] * 100)
    assert at == 13  # budget + grace, never more


def test_zero_grace_cuts_at_the_cap():
    at, _ = drive(BudgetController(7, grace=0), [" x"] * 20)
    assert at == 7


def test_warning_once_at_ninety_percent():
    ctl = BudgetController(100)
    _, notes = drive(ctl, [" x"] * 99)
    assert notes == [(90, "warning")]


def test_unlimited_never_wraps():
    at, notes = drive(BudgetController(None), [" x."] * 500)
    assert at is None and notes == []


def test_extend_during_grace_cancels_the_wrap_up():
    ctl = BudgetController(10, grace=48)
    at, _ = drive(ctl, [" x"] * 11)
    assert at is None and ctl.in_grace
    assert ctl.extend(20) == "extended"
    assert ctl.budget == 30 and not ctl.in_grace and not ctl.hit
    at, notes = drive(ctl, [" y."] * 30, start=11)
    assert notes == [(27, "warning"), (30, "wrap_up")] and at == 30


def test_extend_resets_warning_and_is_ignored_when_unlimited_or_done():
    ctl = BudgetController(None)
    assert ctl.extend(100) is None
    ctl = BudgetController(4)
    drive(ctl, ["."] * 4)
    assert ctl.wrapped and ctl.extend(10) is None


def test_wrap_up_request_waits_for_the_sentence():
    ctl = BudgetController(None)
    drive(ctl, [" a"] * 5)
    ctl.request_wrap_up()
    at, notes = drive(ctl, [" b", " c", ".\n", " d"], start=5)
    assert at == 8 and notes == [(8, "wrap_up")]
    assert not ctl.hit  # the user asked; the budget was not hit


def test_forced_wrap_up_request_counts_as_a_hit():
    ctl = BudgetController(None)
    ctl.request_wrap_up(forced=True)
    assert ctl.step(1, ".").wrap_up and ctl.hit


def test_reopened_block_hits_the_same_per_turn_budget():
    ctl = BudgetController(6, grace=2)
    at, _ = drive(ctl, [" x"] * 20)
    assert at == 8
    ctl.reopen()
    assert ctl.step(9, " y").wrap_up is False
    assert ctl.in_grace
    assert ctl.step(10, ".").wrap_up


def test_zero_budget_wraps_any_thinking_at_once():
    ctl = BudgetController(0, grace=0)
    assert ctl.step(1, " x").wrap_up


def test_time_budget_becomes_tokens_with_the_rate():
    ctl = BudgetController(None, seconds=10)
    assert ctl.budget is None
    ctl.set_rate(25.0)
    assert ctl.budget == 250
    ctl.set_rate(30.0)
    assert ctl.budget == 300
    assert BudgetController(None, seconds=2, rate_tok_s=50).budget == 100
    assert BudgetController(80, seconds=2, rate_tok_s=50).budget == 80  # whichever comes first
    assert BudgetController(80).budget == 80
    ctl = BudgetController(80)
    ctl.set_rate(1000)  # a token budget ignores the rate
    assert ctl.budget == 80


def test_minimum_thinking():
    ctl = BudgetController(None, min_tokens=50)
    assert not ctl.close_allowed(10)
    assert ctl.close_allowed(50)
    ctl.request_wrap_up()
    assert ctl.close_allowed(10)  # a wrap-up overrides the minimum


def test_wrap_up_now():
    ctl = BudgetController(None)
    step = ctl.wrap_up_now()
    assert step.wrap_up and step.notes == ("wrap_up",) and ctl.wrapped


# --------------------------------------------------------------------------- answers


def feed_answer(ab: AnswerBudget, chunks: list[str]) -> list[str]:
    out = []
    for i, c in enumerate(chunks, start=1):
        v = ab.step(i, c)
        out.append(v)
        if v != "continue":
            break
    return out


def test_answer_budget_stops():
    assert feed_answer(AnswerBudget(3), ["a", "b", "c", "d"]) == ["continue", "continue", "stop"]


def test_forces_a_boxed_answer_only_when_none_was_given():
    assert feed_answer(AnswerBudget(3, force_boxed=True), ["x", "y", "z"])[-1] == "force_boxed"
    assert feed_answer(AnswerBudget(4, force_boxed=True), ["\\bo", "xed{", "4", "2"])[-1] == "stop"


def test_forced_box_decodes_to_its_closing_brace():
    ab = AnswerBudget(1, force_boxed=True)
    assert ab.step(1, "x") == "force_boxed"
    ab.forced()
    assert [ab.step(2, "\\frac{1"), ab.step(3, "}{2"), ab.step(4, "}"), ab.step(5, "}")] == [
        "continue",
        "continue",
        "continue",
        "stop",
    ]


def test_forced_box_is_closed_when_it_runs_long():
    ab = AnswerBudget(1, force_boxed=True, boxed_tokens=5)
    ab.step(1, "x")
    ab.forced()
    assert [ab.step(i, "4") for i in range(2, 7)] == ["continue"] * 4 + ["close_box"]
