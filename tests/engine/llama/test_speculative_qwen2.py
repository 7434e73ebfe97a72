"""Speculative decoding on the tiny qwen2 with a scripted output: the same turn with and without it.

The script's logits processor puts all mass on the next token of a script, so a draft is accepted exactly
where the script repeats an n-gram's continuation, and rejected where it does not. Every run also checks
llama.cpp's own decode counters against the turn's accounting (rejected drafts included).
"""

# ruff: noqa: F811  (the fixtures imported from test_runtime_qwen2 are test arguments here)
from __future__ import annotations

from dataclasses import replace
from functools import partial

import llama_cpp
import pytest
from engine_checks import accounted, assert_no_token_twice, llama_evaluated
from qwen2_script import ScriptedModel
from test_runtime_qwen2 import (  # noqa: F401  (fixtures)
    _script_the_shared_engine,
    engine,
    greedy,
    notes,
    run,
    scripted,
    sentences,
    tiny_model,
    tiny_plan,
)

from vibelocal.engine.control import TurnControl
from vibelocal.engine.draft import DraftGate
from vibelocal.engine.llama import load, speculative
from vibelocal.types import ChatMessage

ASK = [ChatMessage("user", "What is 6*7?")]
REPEATS = "<think>\n" + sentences(12) + "Again:\n" + sentences(12) + "</think>\n\nSo \\boxed{42}."
"""Thinking that restates itself: most drafts are accepted."""
FORKS = "<think>\n" + "".join(f"the cat sat on mat {i} then the cat ran to door {i}.\n" for i in range(30))
FORKS += "</think>\n\n\\boxed{42}"
"""Thinking where the same words go on differently each time: drafts are rejected after a few tokens."""


@pytest.fixture(autouse=True)
def _draft_whatever_it_costs(monkeypatch):
    """The gate's pauses depend on measured speed; these tests check what drafting does, so it never pauses."""
    monkeypatch.setattr(speculative, "DraftGate", partial(DraftGate, window=10**9))


def both(engine, scripted, settings, script: dict[str, str], messages=ASK):
    """The turn without and with speculation (the script restarted each time)."""
    out = []
    for speculate in (False, True):
        scripted.set(**script)
        out.append(run(engine, replace(settings, speculate=speculate), messages))
    return out


def same_turn(plain, spec) -> None:
    (ev_a, think_a, answer_a, st_a), (ev_b, think_b, answer_b, st_b) = plain, spec
    assert (think_b, answer_b) == (think_a, answer_a)
    assert ev_b[-1].stop_reason == ev_a[-1].stop_reason
    assert notes(ev_b) == notes(ev_a)
    for field in ("thinking_tokens", "answer_tokens", "forced_tokens", "prompt_tokens"):
        assert getattr(st_b, field) == getattr(st_a, field), field
    assert st_a.draft_tokens == 0


def test_a_repetitive_trace_accepts_drafts_and_is_identical(engine, scripted):
    plain, spec = both(engine, scripted, greedy(), {"think": REPEATS})
    same_turn(plain, spec)
    stats = spec[3]
    assert stats.accepted_draft_tokens > stats.thinking_tokens // 3
    assert stats.evaluated_tokens == accounted(stats)


def test_rejected_drafts_are_rolled_back_and_counted(engine, scripted):
    plain, spec = both(engine, scripted, greedy(), {"think": FORKS})
    same_turn(plain, spec)
    stats = spec[3]
    assert stats.rejected_draft_tokens > 0 and stats.accepted_draft_tokens > 0
    assert stats.evaluated_tokens == accounted(stats) > accounted(plain[3])


def test_the_budget_wrap_up_lands_mid_draft_the_same_way(engine, scripted):
    script = {"think": REPEATS, "answer": "So the answer is \\boxed{42}."}
    plain, spec = both(engine, scripted, greedy(max_thinking_tokens=150, grace_tokens=48), script)
    same_turn(plain, spec)
    assert notes(spec[0]) == ["warning", "wrap_up"] and spec[3].accepted_draft_tokens > 0


def test_a_loop_is_nudged_the_same_way(engine, scripted):
    script = {"think": "<think>\n" + "I will check it again. " * 60, "answer": "\\boxed{42}"}
    plain, spec = both(engine, scripted, greedy(), script)
    same_turn(plain, spec)
    assert any(e.kind == "loop" for e in spec[0]) and spec[3].accepted_draft_tokens > 0


def test_minimum_thinking_rolls_back_an_early_close_the_same_way(engine, scripted):
    script = {
        "think": "<think>\n" + sentences(3) + "</think>\n\n\\boxed{1}",
        "wait": sentences(6) + "</think>\n\n\\boxed{42}",
    }
    plain, spec = both(engine, scripted, greedy(min_thinking_tokens=120), script)
    same_turn(plain, spec)
    assert "min_thinking" in notes(spec[0])


def test_the_next_turn_reuses_only_accepted_tokens(engine, scripted):
    """A turn that ends with drafts still in the KV cache (its stop token was drafted past) leaves only what
    it accepted, so the next turn's prefix reuse and output are as without speculation."""
    first = {"think": REPEATS}
    results = []
    for speculate in (False, True):
        s = greedy(speculate=speculate)
        scripted.set(**first)
        _, thinking, answer, _ = run(engine, s)
        follow = [*ASK, ChatMessage("assistant", answer), ChatMessage("user", "And 7*8?")]
        scripted.set(think=REPEATS.replace("42", "56"))
        results.append(run(engine, s, follow))
    same_turn(*results)
    assert results[1][3].cached_tokens > len(engine.prompt_tokens(ASK, greedy())) - 2


def kv_end(eng) -> int:
    """One past the last position llama.cpp holds in the KV cache of sequence 0."""
    return llama_cpp.llama_memory_seq_pos_max(llama_cpp.llama_get_memory(eng._llm.ctx), 0) + 1


def test_cancel_mid_draft_leaves_only_accepted_tokens(tiny_qwen2_path):
    from vibelocal.models.catalog import Catalog

    control = TurnControl()
    calls = []

    class CancelAt(ScriptedModel):
        def __call__(self, input_ids, logits):
            calls.append(len(input_ids))
            if len(calls) == 60:
                control.cancel()  # lands while a batch of drafts is being read
            return super().__call__(input_ids, logits)

    script = CancelAt()
    eng = load(tiny_model(tiny_qwen2_path), tiny_plan(), Catalog().get("vibethinker-3b"), check_output=False,
               logits_processor=script)  # fmt: skip
    script.engine = eng
    try:
        script.set(think=REPEATS)
        before = llama_evaluated(eng)
        events = list(eng.stream(ASK, greedy(speculate=True), control))
        stats = events[-1].stats
        assert events[-1].stop_reason == "cancelled"
        assert stats.accepted_draft_tokens > 0
        assert_no_token_twice(eng, before, stats)
        assert eng._llm.n_tokens == kv_end(eng)  # the drafts past the last accepted token were removed
        script.set(think=REPEATS)
        _, thinking, _, after = run(eng, greedy(speculate=True), ASK)
        assert thinking.startswith("Step 0: 0 plus 0") and after.cached_tokens == stats.prompt_tokens - 1
    finally:
        eng.close()


def test_drafts_never_pass_the_end_of_the_context(tiny_qwen2_path):
    """The context fills up while drafts are accepted: the turn ends as without speculation, and no draft was
    ever decoded past the last cell."""
    script = ScriptedModel()
    eng = load(tiny_model(tiny_qwen2_path), tiny_plan(512), None, check_output=False, logits_processor=script)
    script.engine = eng
    try:
        texts = {"think": "<think>\n" + sentences(40), "answer": sentences(40)}
        plain, spec = both(eng, script, greedy(max_answer_tokens=2048), texts)
        same_turn(plain, spec)
        assert spec[0][-1].stop_reason == "context_full" and spec[3].accepted_draft_tokens > 0
        assert kv_end(eng) <= 512
    finally:
        eng.close()
