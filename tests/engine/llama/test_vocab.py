"""Think tags as single tokens: tiny qwen2 variants whose vocabulary adds `<think>`/`</think>` as one token each,
(a) CONTROL and (b) USER_DEFINED (VibeThinker's ids 151665/151666), through the real engine, output scripted.

A CONTROL token renders as empty bytes through llama.cpp's plain detokenizer, so without the lookup the splitter
would never see a tag; these tests prove the engine detects the tags by id, renders their text, and injects a
forced `</think>` as the one token the model was trained on. The generic vocabulary keeps text detection.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from engine_checks import assert_no_token_twice, llama_evaluated
from qwen2_script import ScriptedModel

from vibelocal.answers.extract import TurnRecord
from vibelocal.engine.budget import WRAP_UP_TEXT
from vibelocal.engine.llama import LlamaEngine, load
from vibelocal.engine.turn import BARE_CLOSE_TEXT
from vibelocal.types import ChatMessage, GenerationSettings, InstalledModel, Plan

OPEN_ID, CLOSE_ID = 151665, 151666
ASK = [ChatMessage("user", "What is 6*7?")]
STEPS = "".join(f"Step {i}: {i} plus {i} is {2 * i}, so the total is {i * (i + 1)}.\n" for i in range(40))


@pytest.fixture(scope="module", params=["control", "user_defined"])
def tagged(request, qwen2_vocab_path) -> Iterator[tuple[LlamaEngine, ScriptedModel]]:
    from pathlib import Path

    from vibelocal.models.catalog import Catalog

    root = Path(__file__).resolve().parents[3]
    sys.path.insert(0, str(root / "tests" / "fixtures"))
    try:
        from tiny_qwen2 import cached_tiny_qwen2
    finally:
        sys.path.pop(0)
    path = cached_tiny_qwen2(qwen2_vocab_path, root / ".cache" / "test-assets", request.param)
    scripted = ScriptedModel(special=True)
    model = InstalledModel(path=path, size_bytes=path.stat().st_size, name="tiny-qwen2")
    plan = Plan(fits=True, quant="F16", n_layers=2, n_ctx=4096, n_threads=1)
    spec = Catalog().get("vibethinker-3b")  # the real manifest: ChatML, stops, think tags
    eng = load(model, plan, spec, check_output=False, logits_processor=scripted)
    scripted.engine = eng
    yield eng, scripted
    eng.close()


def greedy(**kw) -> GenerationSettings:
    base = dict(temperature=0.0, seed=1, max_thinking_tokens=None, max_answer_tokens=256)
    base.update(kw)
    return GenerationSettings(**base)


def run(engine: LlamaEngine, settings: GenerationSettings, messages=ASK):
    before = llama_evaluated(engine)
    record = TurnRecord()
    events = list(engine.stream(messages, settings))
    for e in events:
        record.add(e)
    assert events[-1].kind == "done"
    for text in (record.thinking, record.answer):
        assert "<think>" not in text and "</think>" not in text
    assert_no_token_twice(engine, before, record.stats)
    return events, record


def cache(engine: LlamaEngine) -> list[int]:
    llm = engine._llm
    return llm.input_ids[: llm.n_tokens].tolist()


def test_the_tags_are_found_as_single_tokens(tagged):
    engine, _ = tagged
    assert (engine.tags.open_id, engine.tags.close_id) == (OPEN_ID, CLOSE_ID)
    assert engine.info.extra["think_tags"] == "token"
    assert engine.detokenize([OPEN_ID, CLOSE_ID]) == "<think></think>"  # rendered, CONTROL or not


def test_thinking_and_answer_split_on_the_tag_tokens(tagged):
    engine, scripted = tagged
    script = "<think>\nLet me compute 6*7.\nSix times seven is 42.</think>\n\nThe answer is \\boxed{42}."
    tokens = scripted.tokenize(script)
    assert tokens.count(OPEN_ID) == 1 and tokens.count(CLOSE_ID) == 1
    scripted.set(think=script)
    events, record = run(engine, greedy())
    assert record.thinking == "Let me compute 6*7.\nSix times seven is 42."
    assert record.answer == "The answer is \\boxed{42}."
    assert record.stop_reason == "answered" and not record.truncated_thinking
    assert record.stats.thinking_tokens + record.stats.answer_tokens == len(tokens)
    assert record.stats.forced_tokens == 0


def test_the_budget_closes_with_the_single_token(tagged):
    engine, scripted = tagged
    scripted.set(think="<think>\n" + STEPS, answer="So the answer is \\boxed{42}.")
    events, record = run(engine, greedy(max_thinking_tokens=100, grace_tokens=48))
    assert [e.note for e in events if e.kind == "budget"] == ["warning", "wrap_up"]
    assert 100 <= record.stats.thinking_tokens <= 148 and record.stats.budget_hit
    assert record.thinking.endswith("directly now.\n") and record.answer == "So the answer is \\boxed{42}."
    ids = cache(engine)
    assert ids.count(CLOSE_ID) == 1  # the injected close is the one token, not `</`, `think`, `>`
    wrap = engine.tokenize(WRAP_UP_TEXT)
    at = ids.index(CLOSE_ID)
    assert ids[at - len(wrap) : at] == wrap


def test_a_stop_inside_thinking_is_closed_with_the_token(tagged):
    engine, scripted = tagged
    scripted.set(think="<think>\nI think it is 42.", answer="42")
    events, record = run(engine, greedy())
    assert any(e.kind == "status" and "inside its thinking" in e.text for e in events)
    assert (record.thinking, record.answer) == ("I think it is 42.", "42")
    assert cache(engine).count(CLOSE_ID) == 1


def test_prefill_puts_the_open_token_in_the_prompt(tagged):
    engine, scripted = tagged
    scripted.set(think="<think>\nreasoning again.</think>\n\nFinal.")  # repeats the prefilled tag
    prompt = engine.prompt_tokens(ASK, greedy(prefill_think=True))
    assert prompt.count(OPEN_ID) == 1 and prompt[-2:] == [OPEN_ID, *engine.tokenize("\n")]
    _, record = run(engine, greedy(prefill_think=True))
    assert (record.thinking, record.answer) == ("reasoning again.", "Final.")


def test_a_bare_close_token_makes_the_text_before_it_thinking(tagged):
    engine, scripted = tagged
    scripted.set(think="Six sevens are 42, checked.</think>\n\nThe answer is 42.")
    events, record = run(engine, greedy())
    assert (record.thinking, record.answer) == ("Six sevens are 42, checked.", "The answer is 42.")
    assert [e.text for e in events if e.kind == "status"] == [BARE_CLOSE_TEXT]
    assert record.stats.thinking_tokens == len(engine.tokenize("Six sevens are 42, checked.")) + 1


def test_user_text_never_becomes_a_control_token(tagged):
    engine, _ = tagged
    typed = [ChatMessage("user", "Explain <think> and </think> and <|im_end|> please.")]
    prompt = engine.prompt_tokens(typed, greedy())
    assert prompt.count(151645) == 1  # the end of the user message only
    if engine._llm._model.token_get_attr(OPEN_ID) & 2:  # LLAMA_TOKEN_ATTR_CONTROL
        assert OPEN_ID not in prompt and CLOSE_ID not in prompt


def test_the_generic_vocabulary_keeps_text_detection(tiny_qwen2_path):
    eng = load(
        InstalledModel(path=tiny_qwen2_path, size_bytes=1, name="tiny-qwen2"),
        Plan(fits=True, quant="F16", n_layers=2, n_ctx=512, n_threads=1),
        None,
        check_output=False,
    )
    try:
        assert eng.tags.open_id is None and eng.tags.close_id is None
        assert eng.info.extra["think_tags"] == "text"
    finally:
        eng.close()


def test_an_early_close_token_is_rolled_back_and_replaced_with_wait(tagged):
    engine, scripted = tagged
    scripted.set(
        think="<think>\nIt is 42.</think>\n\nThe answer is 42.",
        wait=", let me double-check: six times seven is forty-two, yes indeed.</think>\n\nThe answer is 42.",
    )
    events, record = run(engine, greedy(min_thinking_tokens=12))
    assert [e.note for e in events if e.kind == "budget"] == ["min_thinking"]
    assert record.thinking.startswith("It is 42.\nWait, let me double-check")
    assert record.answer == "The answer is 42."
    assert cache(engine).count(CLOSE_ID) == 1  # the rolled-back close left the cache
