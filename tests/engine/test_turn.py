"""The turn loop's rules, one by one, on an in-memory backend (tests/engine/fake_backend.py): wrap-up, minimum
thinking, a stop inside thinking, loops, the answer budget, live control and a full context."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import pytest
from fake_backend import FakeBackend

from vibelocal.engine import turn
from vibelocal.engine.budget import FORCED_ANSWER_TEXT, MIN_THINKING_TEXT, WRAP_UP_TEXT
from vibelocal.engine.control import TurnControl
from vibelocal.engine.think import Piece
from vibelocal.engine.turn import TurnLoop
from vibelocal.types import ChatFormat, GenerationSettings, StreamEvent, TurnStats

STOPPED_INSIDE = "the model stopped inside its thinking; asking for the answer"


class Turn(NamedTuple):
    events: list[StreamEvent]
    thinking: str
    answer: str
    stats: TurnStats
    stop: str | None


def settings(**kw: Any) -> GenerationSettings:
    base: dict[str, Any] = dict(temperature=0.0, max_thinking_tokens=None, max_answer_tokens=512)
    base.update(kw)
    return GenerationSettings(**base)


def turn_loop(
    backend: FakeBackend, s: GenerationSettings, control: TurnControl | None = None, **kw
) -> TurnLoop:
    stats = TurnStats(prompt_tokens=backend.prompt_tokens, evaluated_tokens=backend.prompt_tokens)
    return TurnLoop(backend, s, control or TurnControl(), stats, chat=ChatFormat(), t_start=0.0, **kw)


def run(backend: FakeBackend, s: GenerationSettings, control: TurnControl | None = None, **kw) -> Turn:
    events = list(turn_loop(backend, s, control, **kw).run())
    return finished(backend, events)


def finished(backend: FakeBackend, events: list[StreamEvent]) -> Turn:
    assert events[-1].kind == "done" and [e.kind for e in events].count("done") == 1
    stats = events[-1].stats
    assert stats is not None
    # every counted token was evaluated exactly once, by the backend's own count
    assert backend.evaluated == stats.thinking_tokens + stats.forced_tokens + stats.answer_tokens
    assert stats.evaluated_tokens == backend.prompt_tokens + backend.evaluated
    thinking = "".join(e.text for e in events if e.kind == "thinking")
    answer = "".join(e.text for e in events if e.kind == "answer")
    for text in (thinking, answer):
        assert "<think>" not in text and "</think>" not in text
    return Turn(events, thinking, answer, stats, events[-1].stop_reason)


def notes(events: list[StreamEvent]) -> list[str | None]:
    return [e.note for e in events if e.kind == "budget"]


def sentences(n: int) -> str:
    return "".join(f"Step {i}: {i} plus {i} is {2 * i}.\n" for i in range(n))


LOOP = "I am stuck in a loop here. " * 60


@dataclass(frozen=True)
class Case:
    """One scripted turn and what must come of it."""

    script: dict[str, str]
    settings: dict[str, Any] = field(default_factory=dict)
    stop: str = "answered"
    notes: tuple[str, ...] = ()
    thinking: str | None = None
    """Exact thinking text (None: not checked)."""
    thinking_ends: str = ""
    answer: str | None = None
    injected: tuple[str, ...] = ()
    """The texts injected, in order."""
    statuses: tuple[str, ...] = ()
    loops: int = 0
    budget_hit: bool = False


CASES = {
    "think then answer, nothing injected": Case(
        {"think": "<think>\nSix sevens.</think>\n\nThe answer is \\boxed{42}."},
        thinking="Six sevens.",
        answer="The answer is \\boxed{42}.",
    ),
    "no think tag: all answer": Case({"think": "The answer is 42."}, thinking="", answer="The answer is 42."),
    "budget hit: the wrap-up text, then </think>, then the answer": Case(
        {"think": "<think>\n" + sentences(20), "answer": "So \\boxed{42}."},
        {"max_thinking_tokens": 30},
        notes=("warning", "wrap_up"),
        thinking_ends="\nStep" + WRAP_UP_TEXT,  # a token with a line break ends the line: cut there
        answer="So \\boxed{42}.",
        injected=(WRAP_UP_TEXT + "</think>\n\n",),
        budget_hit=True,
    ),
    "early </think> before the minimum: rolled back, Wait injected": Case(
        {"think": "<think>\nIt is 42.</think>\n\nNo.", "wait": ", six sevens are 42.</think>\n\nIt is 42."},
        {"min_thinking_tokens": 10},
        notes=("min_thinking",),
        thinking="It is 42." + MIN_THINKING_TEXT + ", six sevens are 42.",
        answer="It is 42.",
        injected=(" 42." + MIN_THINKING_TEXT,),  # the token ` 42.<` is re-added without its `<`
    ),
    "a </think> after the minimum stands": Case(
        {"think": "<think>\n" + sentences(3) + "</think>\n\nIt is 42."},
        {"min_thinking_tokens": 10},
        thinking=sentences(3),
        answer="It is 42.",
    ),
    "stop inside thinking: the close tag is injected, the answer follows": Case(
        {"think": "<think>\nI think it is 42.", "answer": "42"},
        thinking="I think it is 42.",
        answer="42",
        injected=("\n</think>\n\n",),
        statuses=(STOPPED_INSIDE,),
    ),
    "stop inside thinking below the minimum: Wait": Case(
        {"think": "<think>\nIt is 42.", "wait": " no, six sevens are 42.</think>\n\n42"},
        {"min_thinking_tokens": 6},
        notes=("min_thinking",),
        thinking="It is 42." + MIN_THINKING_TEXT + " no, six sevens are 42.",
        answer="42",
        injected=(MIN_THINKING_TEXT,),
    ),
    "a second stop after the injected close ends the turn": Case(
        {"think": "<think>\nI think it is 42."},
        thinking="I think it is 42.",
        answer="",
        injected=("\n</think>\n\n",),
        statuses=(STOPPED_INSIDE,),
    ),
    "loop in the thinking: nudged with the wrap-up": Case(
        {"think": "<think>\n" + LOOP, "answer": "Sorry, 42."},
        notes=("wrap_up",),
        thinking_ends=WRAP_UP_TEXT,
        answer="Sorry, 42.",
        injected=(WRAP_UP_TEXT + "</think>\n\n",),
        loops=1,
    ),
    "loop in the answer: the turn stops": Case(
        {"think": "<think>\nok.</think>\n\n" + LOOP}, stop="loop", loops=1
    ),
    "answer budget on a math turn: a forced \\boxed{": Case(
        {"think": "short.</think>\n\nThe product of six and seven is forty two.", "boxed": "42}"},
        {"max_answer_tokens": 4, "force_boxed": True, "prefill_think": True},
        notes=("forced_answer",),
        answer="The product of" + FORCED_ANSWER_TEXT + "42}",
        injected=(FORCED_ANSWER_TEXT,),
        budget_hit=True,
    ),
    "a forced box that never closes is closed": Case(
        {"think": "short.</think>\n\nNo box at all.", "boxed": " ".join(f"x{i}" for i in range(99))},
        {"max_answer_tokens": 2, "force_boxed": True, "loop_detection": False, "prefill_think": True},
        notes=("forced_answer",),
        injected=(FORCED_ANSWER_TEXT, "}"),
        budget_hit=True,
    ),
    "answer budget without forcing": Case(
        {"think": "ok.</think>\n\nOne two three four five six."},
        {"max_answer_tokens": 3, "prefill_think": True},
        stop="budget_exhausted",
        answer="One two thre",  # three tokens: `One`, ` two`, ` thre`
    ),
    "no thinking at all": Case(
        {"think": "Final."},
        {"max_thinking_tokens": 0, "min_thinking_tokens": 50},
        thinking="",
        answer="Final.",
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_rules(case: Case):
    backend = FakeBackend(**case.script)
    got = run(backend, settings(**case.settings))
    assert got.stop == case.stop
    assert tuple(notes(got.events)) == case.notes
    if case.thinking is not None:
        assert got.thinking == case.thinking
    assert got.thinking.endswith(case.thinking_ends)
    if case.answer is not None:
        assert got.answer == case.answer
    assert tuple(backend.injected) == case.injected
    assert tuple(e.text for e in got.events if e.kind == "status") == case.statuses
    assert sum(e.kind == "loop" for e in got.events) == case.loops
    assert got.stats.budget_hit == case.budget_hit
    assert got.stats.forced_tokens == sum(len(backend.tokenize(t)) for t in case.injected)


def test_the_rolled_back_close_leaves_the_cache_as_if_it_never_came():
    backend = FakeBackend(
        "<think>\nIt is 42.</think>\n\nNo.", wait=", six sevens are 42.</think>\n\nIt is 42."
    )
    run(backend, settings(min_thinking_tokens=10))
    assert backend.rollbacks and backend.text().count("</think>") == 1
    assert backend.text().endswith("word<think>\nIt is 42.\nWait, six sevens are 42.</think>\n\nIt is 42.")


def test_a_model_that_insists_may_close_after_four_waits():
    backend = FakeBackend("<think>\nIt is 42.</think>\n\n42", wait="</think>\n\n42")
    got = run(backend, settings(min_thinking_tokens=1000))
    assert notes(got.events) == ["min_thinking"] * 4 and len(backend.rollbacks) == 4
    assert got.answer == "42" and got.stats.thinking_tokens < 1000


def test_wrap_up_waits_for_the_sentence_to_end_within_the_grace():
    long_sentence = "<think>\n" + "and then " * 40 + "done.\n"  # the tokens ` done`, `.`, `\n`
    for grace, cut_at_sentence in ((100, True), (5, False)):
        backend = FakeBackend(long_sentence, answer="42")
        got = run(backend, settings(max_thinking_tokens=4, grace_tokens=grace, loop_detection=False))
        before = got.thinking.split(WRAP_UP_TEXT)[0]
        assert before.endswith(" done.") == cut_at_sentence
        if not cut_at_sentence:
            assert got.stats.thinking_tokens == 4 + 5  # the cap, then the grace


# --------------------------------------------------------------------------- control and context


def test_cancel_before_the_first_token():
    control = TurnControl()
    control.cancel()
    got = run(FakeBackend("<think>\nI think."), settings(), control)
    assert got.stop == "cancelled" and got.events == [got.events[-1]] and got.stats.evaluated_tokens == 8


def test_cancel_mid_thinking_stops_within_one_token():
    backend, control = FakeBackend("<think>\n" + sentences(20)), TurnControl()
    events = []
    for ev in turn_loop(backend, settings(), control).run():
        events.append(ev)
        if ev.kind == "thinking" and ev.thinking_tokens == 5:
            control.cancel()
    got = finished(backend, events)
    assert got.stop == "cancelled" and got.stats.thinking_tokens == 5
    assert events[-1].truncated_thinking


def test_extend_and_wrap_up_commands():
    control = TurnControl()
    control.extend(100)
    got = run(
        FakeBackend("<think>\n" + sentences(40), answer="42"), settings(max_thinking_tokens=10), control
    )
    assert got.events[0].kind == "budget" and got.events[0].note == "extended"
    assert got.events[0].budget_tokens == 110 and got.stats.budget_tokens == 110
    assert 110 <= got.stats.thinking_tokens <= 110 + 48

    control = TurnControl()
    control.wrap_up()
    got = run(FakeBackend("<think>\nOne. Two. Three.", answer="42"), settings(), control)
    assert notes(got.events) == ["wrap_up"] and got.thinking.startswith("One." + WRAP_UP_TEXT)
    assert got.answer == "42" and not got.stats.budget_hit  # the user asked; no budget was hit


def test_a_wrap_up_command_in_the_answer_changes_nothing():
    control = TurnControl()
    control.wrap_up()
    got = run(FakeBackend("The answer is 42."), settings(), control)
    assert got.answer == "The answer is 42." and notes(got.events) == []


def test_a_short_context_wraps_up_then_fills_up():
    backend = FakeBackend("<think>\n" + sentences(40), answer=sentences(40), n_ctx=200)
    got = run(backend, settings(max_answer_tokens=2048))
    assert "wrap_up" in notes(got.events) and got.stats.budget_hit  # answer while there is room
    assert got.answer.startswith("Step 0") and got.stop == "context_full"
    assert backend.n_past == 200


def test_no_room_for_the_wrap_up_is_context_full():
    backend = FakeBackend("<think>\n" + sentences(40), n_ctx=40)
    got = run(backend, settings())
    assert got.stop == "context_full" and notes(got.events) == ["wrap_up"]
    assert backend.injected == [] and backend.n_past < 40


def test_a_full_context_stops_before_sampling():
    backend = FakeBackend("<think>\nx", n_ctx=8)
    got = run(backend, settings())
    assert got.stop == "context_full" and got.stats.thinking_tokens == 0 and got.stats.ttft_s is None


# --------------------------------------------------------------------------- stats and the clock


def test_running_stats_and_the_done_event(monkeypatch):
    monkeypatch.setattr(turn, "STATS_EVERY_S", 0.0)
    backend = FakeBackend("<think>\n" + sentences(10) + "</think>\n\n42")
    got = run(backend, settings())
    running = [e.stats for e in got.events if e.kind == "stats"]
    tokens = got.stats.thinking_tokens + got.stats.answer_tokens
    assert len(running) == tokens // 16
    assert [s.thinking_tokens + s.answer_tokens for s in running] == [
        16 * (i + 1) for i in range(len(running))
    ]
    assert all(s.decode_tok_s and s is not got.stats for s in running)
    assert got.stats.decode_tok_s and got.stats.ttft_s is not None and got.stats.total_s > 0


def test_a_time_budget_becomes_tokens_with_the_rate():
    backend = FakeBackend("<think>\n" + sentences(40), answer="42")
    got = run(backend, settings(max_thinking_tokens=None, thinking_time_s=0.5), rate_hint=40.0)
    first = next(e for e in got.events if e.kind == "thinking")
    assert first.budget_tokens == 20  # 0.5 s at the hinted 40 tokens/s
    assert got.stats.budget_tokens > 20  # then the measured rate (this backend is fast)


# --------------------------------------------------------------------------- one rule alone


def test_early_close_at():
    loop = turn_loop(FakeBackend(), settings(min_thinking_tokens=5))
    pieces = [Piece("thinking", "a"), Piece("close"), Piece("answer", "b")]
    assert loop.early_close_at(pieces) == 1
    loop.stats.thinking_tokens = 5
    assert loop.early_close_at(pieces) == -1
    loop.budget.wrap_up_now()
    assert loop.early_close_at([Piece("open")]) == -1 and not loop.budget.wrapped  # a new block reopens it


# --------------------------------------------------------------------------- tags, bare close, accounting


def test_the_tokens_of_a_split_open_tag_count_as_thinking():
    script = "\n<think>\nSix sevens.</think>\n\nThe answer is 42."
    backend = FakeBackend(script)
    ids = backend.tokenize(script)
    texts = [backend.vocab[t] for t in ids]
    assert texts[:2] == ["\n<thi", "nk>"]  # `<think>` in pieces: the first is undecided
    upto = next(i for i in range(len(texts)) if "</think>" in "".join(texts[: i + 1])) + 1
    got = run(backend, settings())
    assert (got.thinking, got.answer) == ("Six sevens.", "The answer is 42.")
    assert (got.stats.thinking_tokens, got.stats.answer_tokens) == (upto, len(ids) - upto)


def test_a_bare_close_moves_the_answer_so_far_to_the_thinking():
    from vibelocal.answers.extract import TurnRecord

    backend = FakeBackend("Six sevens are 42.</think>\n\nThe answer is 42.")
    got = run(backend, settings())
    record = TurnRecord()
    for e in got.events:
        record.add(e)
    assert (record.thinking, record.answer) == ("Six sevens are 42.", "The answer is 42.")
    kinds = [e.kind for e in got.events]
    assert kinds.count("reclassify") == 1 and turn.BARE_CLOSE_TEXT in [e.text for e in got.events]
    assert got.stats.answer_tokens == len(backend.tokenize("The answer is 42."))
    assert not got.events[-1].truncated_thinking


def test_held_text_is_streamed_at_the_end_of_the_turn():
    got = run(FakeBackend("<think>\nx.</think>\n\n1 <"), settings())
    assert got.answer == "1 <"  # the `<` might have begun a tag; the turn's end releases it
    backend = FakeBackend("<think>\nx <", answer="")
    got = run(backend, settings())
    assert got.thinking == "x <"


def test_a_rolled_back_close_with_no_room_for_wait_counts_nothing_unevaluated(monkeypatch):
    monkeypatch.setattr(
        turn, "MIN_THINKING_TEXT", "\nWait" + " really" * 10
    )  # longer than what is rolled back
    backend = FakeBackend(
        "<think>\nIt is 42.</think>\n\nNo."
    )  # `<thi` `nk>` `\nIt` ` is` ` 42.<` `/thi` `nk>`
    loop = turn_loop(backend, settings(min_thinking_tokens=50))
    events = []
    for ev in loop.run():
        events.append(ev)
        if ev.kind == "thinking" and ev.text == " is":
            loop.reserve, loop.n_ctx = 0, backend.n_past + 3  # room for the tag, not for the long Wait
    got = finished(backend, events)  # asserts evaluated == thinking + forced + answer
    assert got.stop == "context_full" and got.stats.forced_tokens == 0 and backend.rollbacks
