"""Several turns decoded in one batch (engine/llama/batch.py): forks of a multi-sequence engine on the real
SmolLM2 GGUF (output compared with an ordinary one-sequence engine) and on the tiny qwen2 with a script.

SmolLM2 never thinks on its own, so thinking turns start inside `<think>` (prefill_think).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import llama_cpp
import numpy as np
import pytest
from engine_checks import llama_evaluated
from test_owner import recorded_calls  # noqa: F401 - a fixture
from test_runtime import STORY, installed, make_plan, smollm2_spec

from vibelocal.engine.control import TurnControl
from vibelocal.engine.llama import LlamaEngine, load
from vibelocal.engine.llama.runtime import EngineClosedError
from vibelocal.types import ChatMessage, GenerationSettings, InstalledModel, Plan, StreamEvent, TurnStats

K = 3
QUESTIONS = [
    [ChatMessage("user", "What is the capital of France?")],
    [ChatMessage("user", "Name three colours of the rainbow.")],
    [ChatMessage("user", "Why is the sky blue?")],
]


@pytest.fixture(scope="module")
def batched(smollm2_path) -> Iterator[LlamaEngine]:
    eng = load(installed(smollm2_path), make_plan().model_copy(update={"n_parallel": K}), smollm2_spec())
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def solo(smollm2_path) -> Iterator[LlamaEngine]:
    eng = load(installed(smollm2_path), make_plan(), smollm2_spec())
    yield eng
    eng.close()


@pytest.fixture
def forks(batched) -> Iterator[list]:
    handles = [batched] + [batched.fork() for _ in range(K - 1)]
    yield handles
    for h in handles[1:]:
        h.close()


def answer_only(**kw) -> GenerationSettings:
    base = dict(temperature=0.0, seed=1, max_thinking_tokens=0, max_answer_tokens=24, reuse_prefix=False)
    base.update(kw)
    return GenerationSettings(**base)


def run(engine, messages, settings, control=None) -> tuple[str, list[StreamEvent], TurnStats]:
    events = list(engine.stream(messages, settings, control))
    text = "".join(e.text or "" for e in events if e.kind in ("thinking", "answer"))
    assert events[-1].kind == "done"
    return text, events, events[-1].stats


def together(handles, jobs: Sequence[tuple], started: threading.Barrier | None = None) -> list[tuple]:
    """Run (messages, settings[, control]) jobs at once, one thread and one handle each; their results."""
    out: list = [None] * len(jobs)
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            out[i] = run(handles[i], *jobs[i])
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    return out


def seq_cells(engine: LlamaEngine, seq_id: int) -> int:
    """The highest KV position sequence `seq_id` holds (-1: none), read on the engine thread."""
    mem = engine._llm._ctx.memory
    return engine._owner.call(llama_cpp.llama_memory_seq_pos_max, mem, seq_id)


# --------------------------------------------------------------------------- SmolLM2


def test_the_engine_reports_its_sequences(batched, solo):
    assert batched.parallel == K and solo.parallel == 1
    assert batched.info.n_ctx == solo.info.n_ctx  # each sequence holds a whole context
    assert batched.info.extra["n_parallel"] == str(K)
    with pytest.raises(RuntimeError, match="one sequence"):
        solo.fork()


def test_concurrent_greedy_streams_match_solo_runs(forks, solo):
    alone = [run(solo, q, answer_only())[0] for q in QUESTIONS]
    batched = together(forks, [(q, answer_only()) for q in QUESTIONS])
    assert [b[0] for b in batched] == alone
    assert all(b[2].answer_tokens > 0 for b in batched)


def test_per_sample_seeds_reproduce_each_sample_alone(forks, solo):
    sets = [answer_only(temperature=0.8, top_p=0.95, seed=100 + i) for i in range(K)]
    alone = [run(solo, STORY, s)[0] for s in sets]
    batched = together(forks, [(STORY, s) for s in sets])
    assert [b[0] for b in batched] == alone
    assert len(set(alone)) == K  # the seeds do make different samples
    assert [b[2].seed for b in batched] == [100, 101, 102]


def test_identical_prompts_are_evaluated_once(forks):
    sets = [answer_only(temperature=0.8, seed=200 + i) for i in range(K)]
    engine = forks[0]
    before = llama_evaluated(engine)
    results = together(forks, [(STORY, s) for s in sets])
    decoded = llama_evaluated(engine) - before
    stats = [r[2] for r in results]
    prompt = stats[0].prompt_tokens
    generated = sum(s.thinking_tokens + s.forced_tokens + s.answer_tokens for s in stats)
    # the prompt once (a sample that arrives after the first decode step evaluates its last prompt token
    # again), then what each sample generated but its last token (queued for a step that never comes)
    cached = sorted(s.cached_tokens for s in stats)
    assert cached[0] == 0 and all(c >= prompt - 1 for c in cached[1:])
    assert decoded == sum(prompt - c for c in cached) + generated - K
    assert decoded <= prompt + (K - 1) + generated - K
    assert sum(s.evaluated_tokens for s in stats) == decoded


def test_a_finished_sequence_frees_its_cells_and_slot(batched):
    fork = batched.fork()
    slot = fork.slot
    run(fork, QUESTIONS[0], answer_only(max_answer_tokens=8))
    assert seq_cells(batched, slot) == -1
    fork.close()
    extra = [batched.fork() for _ in range(K - 1)]  # every slot but the engine's own is free again
    assert slot in {f.slot for f in extra}
    with pytest.raises(RuntimeError, match="taken"):
        batched.fork()
    for f in extra:
        f.close()
    with pytest.raises(EngineClosedError):
        fork.stream(QUESTIONS[0], answer_only())


def test_a_new_turn_joins_while_others_decode(forks, solo):
    """A turn started while another decodes is admitted between steps and gives its solo text."""
    long_control = TurnControl()
    first_text = threading.Event()
    result: dict = {}

    def long_turn() -> None:
        for event in forks[0].stream(STORY, answer_only(max_answer_tokens=200), long_control):
            if event.kind == "answer":
                first_text.set()
            if event.kind == "done":
                result["long"] = event

    thread = threading.Thread(target=long_turn)
    thread.start()
    assert first_text.wait(60)
    joined = run(forks[1], QUESTIONS[2], answer_only())
    long_control.cancel()
    thread.join(60)
    assert joined[0] == run(solo, QUESTIONS[2], answer_only())[0]
    assert result["long"].stop_reason in ("cancelled", "answered", "budget_exhausted")


def test_cancel_of_one_sample_leaves_the_others_running(forks):
    controls = [TurnControl() for _ in range(K)]
    seen = threading.Event()

    def cancel_soon(event: StreamEvent) -> None:
        if event.kind == "answer" and not seen.is_set():
            seen.set()
            controls[1].cancel()

    out: list = [None] * K

    def one(i: int) -> None:
        events = []
        for event in forks[i].stream(STORY, answer_only(max_answer_tokens=40), controls[i]):
            events.append(event)
            if i == 1:
                cancel_soon(event)
        out[i] = events[-1]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(K)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert out[1].stop_reason == "cancelled"
    assert out[0].stop_reason == out[2].stop_reason == "budget_exhausted"
    assert out[0].stats.answer_tokens == out[2].stats.answer_tokens == 40


def test_budgets_and_wrap_ups_are_per_sequence(forks, solo):
    tight = GenerationSettings(
        temperature=0.0, seed=3, max_thinking_tokens=24, max_answer_tokens=24, prefill_think=True
    )
    free = GenerationSettings(
        temperature=0.0, seed=3, max_thinking_tokens=None, max_answer_tokens=24, prefill_think=True
    )
    alone = [run(solo, STORY, s) for s in (tight, free)]
    batched = together(forks, [(STORY, tight), (STORY, free)])
    for (text_b, events_b, stats_b), (text_a, events_a, stats_a) in zip(batched, alone, strict=True):
        assert text_b == text_a
        assert [e.note for e in events_b if e.kind == "budget"] == [
            e.note for e in events_a if e.kind == "budget"
        ]
        assert stats_b.forced_tokens == stats_a.forced_tokens
    assert batched[0][2].budget_hit and not batched[1][2].budget_hit
    assert "Considering the limited time by the user" in batched[0][0]


def test_engine_close_mid_batch_ends_every_turn(smollm2_path):
    engine = load(installed(smollm2_path), make_plan().model_copy(update={"n_parallel": K}), smollm2_spec())
    handles = [engine] + [engine.fork() for _ in range(K - 1)]
    streaming = threading.Barrier(K + 1)
    ends: list = [None] * K

    def one(i: int) -> None:
        last = None
        for n, event in enumerate(handles[i].stream(STORY, answer_only(max_answer_tokens=400))):
            if n == 2:
                streaming.wait(30)
            last = event
        ends[i] = last

    threads = [threading.Thread(target=one, args=(i,)) for i in range(K)]
    for t in threads:
        t.start()
    streaming.wait(60)
    assert engine.close() is True
    for t in threads:
        t.join(30)
    assert [e.kind for e in ends] == ["done"] * K
    assert {e.stop_reason for e in ends} == {"cancelled"}
    with pytest.raises(EngineClosedError):
        handles[1].stream(STORY, answer_only())


def test_every_llama_cpp_call_of_a_batch_runs_on_the_engine_thread(smollm2_path, recorded_calls):  # noqa: F811
    consumers = {threading.get_ident()}
    engine = load(installed(smollm2_path), make_plan().model_copy(update={"n_parallel": K}), smollm2_spec())
    handles = [engine] + [engine.fork() for _ in range(K - 1)]

    def consume(i: int) -> None:
        consumers.add(threading.get_ident())
        settings = answer_only(temperature=0.7, seed=i, max_answer_tokens=16)
        assert "".join(e.text or "" for e in handles[i].stream(STORY, settings) if e.kind == "answer")

    threads = [threading.Thread(target=consume, args=(i,)) for i in range(K)]
    for t in threads:
        t.start()
    assert engine.count_tokens("hello world") > 0
    for t in threads:
        t.join(120)
    handles[1].close()
    assert engine.close() is True
    names = {name for name, _ in recorded_calls}
    assert {"llama_decode", "llama_sampler_sample", "llama_memory_seq_cp", "llama_memory_seq_rm"} <= names
    threads_seen = {ident for _, ident in recorded_calls}
    assert len(threads_seen) == 1, f"llama.cpp was called from {len(threads_seen)} threads"
    assert not threads_seen & consumers


def test_other_calls_run_between_batch_steps(forks):
    control = TurnControl()
    streaming = threading.Event()

    def long_turn() -> None:
        for event in forks[0].stream(STORY, answer_only(max_answer_tokens=400), control):
            if event.kind == "answer":
                streaming.set()

    thread = threading.Thread(target=long_turn)
    thread.start()
    assert streaming.wait(60)
    assert forks[1].count_tokens("hello world") > 0  # served between two steps, not after the turn
    assert forks[0].busy and not control.cancelled
    control.cancel()
    thread.join(60)


# --------------------------------------------------------------------------- tiny qwen2, scripted


class PromptScript:
    """A stateless scripted model: greedy-decodes `scripts[prompt]` after that prompt (then `<|im_end|>`), read
    from the sequence's own tokens, so that sequences decoded in one batch cannot mix their scripts up."""

    def __init__(self) -> None:
        self.scripts: dict[tuple[int, ...], list[int]] = {}

    def add(self, prompt: list[int], script: list[int]) -> None:
        self.scripts[tuple(prompt)] = script

    def __call__(self, input_ids: np.ndarray, logits: np.ndarray) -> np.ndarray:
        ids = input_ids.tolist()
        token = 151645  # <|im_end|>
        for prompt, script in self.scripts.items():
            if tuple(ids[: len(prompt)]) == prompt and len(ids) - len(prompt) < len(script):
                token = script[len(ids) - len(prompt)]
        out = np.full_like(logits, -np.inf)
        out[token] = 0.0
        return out


def test_scripted_sequences_read_their_own_tokens(tiny_qwen2_path):
    from vibelocal.models.catalog import Catalog

    script = PromptScript()
    plan = Plan(fits=True, quant="F16", n_layers=2, n_ctx=2048, n_threads=1, n_parallel=K)
    model = InstalledModel(path=tiny_qwen2_path, size_bytes=tiny_qwen2_path.stat().st_size, name="tiny-qwen2")
    engine = load(model, plan, Catalog().get("vibethinker-3b"), check_output=False, logits_processor=script)
    try:
        asks = [f"Question number {i}: what is {i} times 7?" for i in range(K)]
        answers = [f"<think>\n{i} sevens.\n</think>\n\n\\boxed{{{7 * i}}}" for i in range(K)]
        settings = GenerationSettings(temperature=0.0, seed=1, max_thinking_tokens=None, max_answer_tokens=64)
        for ask, answer in zip(asks, answers, strict=True):
            prompt = engine.prompt_tokens([ChatMessage("user", ask)], settings)
            script.add(prompt, engine.tokenize(answer))
        handles = [engine] + [engine.fork() for _ in range(K - 1)]
        results = together(handles, [([ChatMessage("user", a)], settings) for a in asks])
        for i, (_, events, stats) in enumerate(results):
            answer = "".join(e.text for e in events if e.kind == "answer")
            assert answer.strip() == f"\\boxed{{{7 * i}}}"
            assert stats.thinking_tokens > 0 and events[-1].stop_reason == "answered"
    finally:
        engine.close()


def test_run_parallel_decode_gives_a_row_per_batch_width(tiny_qwen2_path):
    from vibelocal.engine.llama.bench import run_parallel_decode

    model = InstalledModel(path=tiny_qwen2_path, size_bytes=tiny_qwen2_path.stat().st_size, name="tiny-qwen2")
    plan = Plan(fits=True, quant="F16", n_layers=2, n_ctx=512, n_threads=1)
    rows = run_parallel_decode(model, plan, (1, 3), n_gen=8, repetitions=2)
    assert [r.name for r in rows] == ["tg8", "tg8 x3"]
    assert [r.to_dict().get("n_seq") for r in rows] == [None, 3]
    assert all(len(r.samples_ts) == 2 and r.avg_ts > 0 for r in rows)


def test_votes_side_by_side_on_the_local_engine(batched, solo):
    """cli/parallel.py's driver (a thread and a fork per sample) on this engine: each sample is its solo run."""
    from vibelocal.cli.parallel import can_run_side_by_side, sample_side_by_side

    generations = [answer_only(temperature=0.7, top_p=0.95, seed=300 + i) for i in range(K + 1)]
    assert can_run_side_by_side(batched)
    done: list[int] = []
    records = sample_side_by_side(batched, STORY, generations, on_done=lambda i, _r: done.append(i))
    assert sorted(done) == list(range(K + 1))  # K at a time, the last one on a freed slot
    assert [r.answer for r in records] == [run(solo, STORY, g)[0] for g in generations]
    assert all(seq_cells(batched, s) == -1 for s in range(K))


def test_closing_a_fork_mid_turn_frees_its_slot(batched):
    fork = batched.fork()
    streaming = threading.Event()
    ends: list[StreamEvent] = []

    def consume() -> None:
        for event in fork.stream(STORY, answer_only(max_answer_tokens=400)):
            if event.kind == "answer":
                streaming.set()
            ends.append(event)

    thread = threading.Thread(target=consume)
    thread.start()
    assert streaming.wait(60)
    assert fork.close() is True
    thread.join(30)
    assert ends[-1].kind == "done" and ends[-1].stop_reason == "cancelled"
    assert seq_cells(batched, fork.slot) == -1
    again = [batched.fork() for _ in range(K - 1)]
    assert fork.slot in {f.slot for f in again}
    for f in again:
        f.close()
