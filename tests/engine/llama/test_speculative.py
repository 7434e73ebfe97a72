"""Speculative decoding on the real SmolLM2 weights: drafts accepted on a copying prompt, the same text as
without speculation, exact accounting; and what holds of batched against one-token logits."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
from engine_checks import assert_no_token_twice, llama_evaluated
from test_runtime import installed, make_plan

from vibelocal.engine.draft import DraftGate
from vibelocal.engine.llama import load, speculative
from vibelocal.types import ChatMessage, GenerationSettings

PASSAGE = (
    "The old lighthouse stood at the edge of the cliff for more than two hundred years. Every night its keeper "
    "climbed the one hundred and twelve steps, trimmed the wick and polished the great lens."
)
COPY = [ChatMessage("user", f"Copy this passage exactly, word for word:\n\n{PASSAGE}")]
STORY = [ChatMessage("user", "Write a long, detailed story about a dragon and a knight who become friends.")]


@pytest.fixture(autouse=True)
def _draft_whatever_it_costs(monkeypatch):
    """The gate pauses on measured speed (it would on this CPU); these tests check drafting itself."""
    monkeypatch.setattr(speculative, "DraftGate", partial(DraftGate, window=10**9))


@pytest.fixture(scope="module")
def recorded(smollm2_path):
    """The engine, with a pass-through logits hook that records each sampled position's logits."""
    seen: list[np.ndarray] = []

    def hook(input_ids, logits):
        seen.append(np.array(logits, copy=True))
        return logits

    eng = load(installed(smollm2_path), make_plan(), None, check_output=False, logits_processor=hook)
    yield eng, seen
    eng.close()


def turn(eng, messages, settings):
    before = llama_evaluated(eng)
    events = list(eng.stream(messages, settings))
    stats = events[-1].stats
    assert_no_token_twice(eng, before, stats)
    return "".join(e.text for e in events if e.kind == "answer"), stats


def settings(**kw) -> GenerationSettings:
    # every turn from an empty cache: llama.cpp's numbers depend on the cache's layout, and the runs compared
    # here must differ in speculation alone
    base = dict(
        temperature=0.0,
        seed=3,
        max_thinking_tokens=0,
        max_answer_tokens=64,
        loop_detection=False,
        reuse_prefix=False,
    )
    base.update(kw)
    return GenerationSettings(**base)


def test_a_copying_prompt_accepts_drafts_and_gives_the_same_greedy_text(recorded):
    eng, _ = recorded
    plain, stats_plain = turn(eng, COPY, settings())
    spec, stats = turn(eng, COPY, settings(speculate=True))
    assert spec == plain and "lighthouse" in spec
    assert stats.accepted_draft_tokens > stats.answer_tokens // 3
    assert stats.answer_tokens == stats_plain.answer_tokens
    assert stats.evaluated_tokens - stats.rejected_draft_tokens == stats_plain.evaluated_tokens


def test_the_first_two_positions_of_a_verified_batch_match_one_token_logits(recorded, monkeypatch):
    """What holds on this build: at a verified batch's first two positions the logits equal one-token logits
    bit for bit, and every sampled token before the first batch's third position is the same. Past that,
    llama.cpp's batched kernels give other logits (up to about 0.8 here on a story prompt; the bare binding
    does the same), so greedy text
    may part from the text without speculation at a later near tie; docs/engine.md says so."""
    eng, seen = recorded
    starts: list[int] = []
    real = speculative.SpeculativeBackend._decode_with_draft

    def decode_with_draft(self, token, draft):
        starts.append(len(seen))
        real(self, token, draft)

    monkeypatch.setattr(speculative.SpeculativeBackend, "_decode_with_draft", decode_with_draft)
    runs = []
    for speculate in (False, True):
        seen.clear()
        turn(eng, STORY, settings(max_answer_tokens=48, speculate=speculate))
        runs.append(list(seen))
    plain, spec = runs
    assert starts, "no draft was verified"
    equal = next(
        (i for i, (a, b) in enumerate(zip(plain, spec, strict=False)) if not np.array_equal(a, b)), None
    )
    assert equal is None or equal >= starts[0] + 2
    assert np.array_equal(plain[starts[0]], spec[starts[0]]) and np.array_equal(
        plain[starts[0] + 1], spec[starts[0] + 1]
    )
