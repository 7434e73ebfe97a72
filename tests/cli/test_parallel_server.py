"""The side-by-side vote machinery (cli/parallel.py) on a real llama-server with two slots: once the vote is
settled the running sample is cancelled and the queued one never starts."""

from __future__ import annotations

import pytest
from llama_server import llama_server

from vibelocal.cli.parallel import CUT, sample_side_by_side
from vibelocal.engine.remote import connect
from vibelocal.types import ChatMessage, GenerationSettings

pytestmark = [pytest.mark.real_model, pytest.mark.slow]

QUESTION = [ChatMessage("user", "What is 2+2?")]


def gen(seed: int, thinking: int, at_least: int = 0) -> GenerationSettings:
    return GenerationSettings(
        temperature=0.0,
        seed=seed,
        prefill_think=True,
        max_thinking_tokens=thinking,
        min_thinking_tokens=at_least,
        max_answer_tokens=8,
    )


def test_a_settled_vote_cancels_the_running_sample_and_never_starts_the_queued_one(smollm2_path):
    with llama_server(smollm2_path, slots=2) as (url, _proc):
        engine = connect(url)
        try:
            assert engine.parallel == 2
            seen: list[int] = []

            def on_done(i, record):
                seen.append(i)
                return True  # the first sample to finish settles this vote

            # sample 0 thinks 4 tokens, sample 1 at least 300 (greedy, the two would otherwise be the same turn
            # whenever the model closes its thinking early): 0 ends first and settles it; 2 waits for a slot
            generations = [gen(1, 4), gen(2, 1500, at_least=300), gen(3, 4)]
            records = sample_side_by_side(engine, QUESTION, generations, on_done=on_done)
        finally:
            engine.close()
    assert seen == [0]
    assert records[0].stop_reason != CUT and records[0].stats.thinking_tokens >= 4
    assert records[1].stop_reason == CUT and records[1].stats.thinking_tokens < 1500  # stopped mid-way
    assert records[2].stop_reason == CUT and records[2].stats.server_requests == 0  # never sent
