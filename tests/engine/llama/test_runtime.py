"""The real engine on the real SmolLM2-135M GGUF: budgets without re-processing, live control, KV reuse, errors.

SmolLM2 never thinks on its own, so thinking turns start inside `<think>` (prefill_think). The model is
loaded once for the module.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from engine_checks import assert_no_token_twice, llama_evaluated

from vibelocal.engine.control import TurnControl
from vibelocal.engine.llama import LlamaEngine, load
from vibelocal.errors import ExitCode, ModelLoadError
from vibelocal.types import (
    Architecture,
    ChatMessage,
    GenerationSettings,
    InstalledModel,
    ModelSpec,
    Plan,
    StreamEvent,
    TurnStats,
)

STORY = [ChatMessage("user", "Write a long, detailed story about a dragon and a knight who become friends.")]
GRACE = 48


def smollm2_spec() -> ModelSpec:
    return ModelSpec(
        name="smollm2-test",
        display_name="SmolLM2 135M",
        architecture=Architecture(
            name="llama",
            n_layers=30,
            hidden_size=576,
            n_heads=9,
            n_kv_heads=3,
            head_dim=64,
            vocab_size=49152,
            context_length=8192,
        ),
        sources=[],
    )


def make_plan(n_ctx: int = 4096) -> Plan:
    # one thread: the test machine is shared, and spinning llama.cpp threads stall badly when oversubscribed
    return Plan(fits=True, quant="Q4_1", n_layers=30, n_ctx=n_ctx, n_threads=1, n_batch=512, n_ubatch=512)


def installed(path) -> InstalledModel:
    return InstalledModel(path=path, size_bytes=path.stat().st_size, name="smollm2-test", quant="Q4_1")


@pytest.fixture(scope="module")
def engine(smollm2_path) -> Iterator[LlamaEngine]:
    statuses: list[str] = []
    eng = load(installed(smollm2_path), make_plan(), smollm2_spec(), on_status=statuses.append)
    assert statuses == []  # a healthy model passes the load probe at once
    yield eng
    eng.close()


def settings(**kw) -> GenerationSettings:
    base = dict(temperature=0.6, top_p=0.95, seed=7, max_answer_tokens=48, prefill_think=True)
    base.update(kw)
    return GenerationSettings(**base)


def collect(
    events: Iterator[StreamEvent], on_event: Callable[[StreamEvent], None] | None = None
) -> tuple[list[StreamEvent], str, str, TurnStats]:
    got: list[StreamEvent] = []
    for ev in events:
        got.append(ev)
        if on_event:
            on_event(ev)
    assert got and got[-1].kind == "done" and [e.kind for e in got].count("done") == 1
    thinking = "".join(e.text for e in got if e.kind == "thinking")
    answer = "".join(e.text for e in got if e.kind == "answer")
    for text in (thinking, answer):
        assert "<think>" not in text and "</think>" not in text and "<|im_end|>" not in text
    stats = got[-1].stats
    assert stats is not None
    return got, thinking, answer, stats


def budget_notes(events: list[StreamEvent]) -> list[str]:
    return [e.note for e in events if e.kind == "budget"]  # type: ignore[misc]


def in_thread(fn: Callable[[], None]) -> None:
    """Run `fn` on another thread and wait for it: the command lands between two tokens, like a UI's."""
    t = threading.Thread(target=fn)
    t.start()
    t.join()


# --------------------------------------------------------------------------- loading


def test_engine_info_reads_the_gguf(engine):
    info = engine.info
    assert info.n_ctx == 4096 and info.n_ctx_train == 8192
    assert info.model_name == "smollm2-test" and info.device == "CPU"
    assert info.extra["prompt_format"] == "manifest chatml"
    assert "load_retry" not in info.extra
    assert engine.count_tokens("Hello world") == 2


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda src, dst: dst.write_bytes(b"not a model at all" * 100), id="not-gguf"),
        pytest.param(lambda src, dst: dst.write_bytes(src.read_bytes()[: 1 << 20]), id="truncated"),
        pytest.param(lambda src, dst: dst.write_bytes(src.read_bytes()[:64]), id="header-only"),
        pytest.param(lambda src, dst: None, id="missing"),
    ],
)
def test_a_broken_gguf_is_a_model_load_error(make, smollm2_path, tmp_path):
    bad = tmp_path / "broken.gguf"
    make(smollm2_path, bad)
    model = InstalledModel(path=bad, size_bytes=bad.stat().st_size if bad.exists() else 0)
    with pytest.raises(ModelLoadError) as err:
        load(model, make_plan(), None)
    assert err.value.exit_code == ExitCode.MODEL_LOAD == 5
    message = str(err.value)
    assert "broken.gguf" in message and "\n" not in message


def test_without_a_manifest_the_gguf_template_renders_in_the_sandbox(smollm2_path):
    eng = load(installed(smollm2_path), make_plan(1024), None, check_output=False)
    try:
        text = eng.render_prompt([ChatMessage("user", "hi")], GenerationSettings(prefill_think=True))
        assert eng.info.extra["prompt_format"] == "gguf template (sandboxed)"
        assert "SmolLM" in text  # the template's own default system prompt
        assert text.endswith("<|im_start|>assistant\n<think>\n")
    finally:
        eng.close()


# --------------------------------------------------------------------------- turns


def test_a_plain_answer_without_thinking(engine):
    before = llama_evaluated(engine)
    events, thinking, answer, stats = collect(
        engine.stream(
            [ChatMessage("user", "What is the capital of France?")], settings(max_thinking_tokens=0)
        )
    )
    assert events[-1].stop_reason in ("answered", "budget_exhausted")
    assert answer.strip() and thinking == ""
    assert stats.thinking_tokens == 0 and stats.answer_tokens > 0
    assert stats.seed == 7 and stats.ttft_s is not None and stats.decode_tok_s
    assert_no_token_twice(engine, before, stats)


def test_budget_64_holds_without_reprocessing(engine):
    before = llama_evaluated(engine)
    events, thinking, answer, stats = collect(engine.stream(STORY, settings(max_thinking_tokens=64)))
    assert "wrap_up" in budget_notes(events) and "warning" in budget_notes(events)
    assert 64 <= stats.thinking_tokens <= 64 + GRACE
    assert stats.budget_hit and stats.budget_tokens == 64
    assert "Considering the limited time by the user" in thinking
    assert answer.strip()
    assert stats.forced_tokens > 0
    assert_no_token_twice(engine, before, stats)
    assert not events[-1].truncated_thinking


def test_extend_from_another_thread(engine):
    control = TurnControl()
    before = llama_evaluated(engine)

    def on_event(ev: StreamEvent) -> None:
        if ev.kind == "thinking" and ev.thinking_tokens == 20:
            in_thread(lambda: control.extend(100))

    events, _, _, stats = collect(engine.stream(STORY, settings(max_thinking_tokens=64), control), on_event)
    extended = [e for e in events if e.kind == "budget" and e.note == "extended"]
    assert len(extended) == 1 and extended[0].budget_tokens == 164
    assert stats.budget_tokens == 164
    wrap = [e for e in events if e.kind == "budget" and e.note == "wrap_up"]
    assert (
        len(wrap) == 1 and 164 <= wrap[0].thinking_tokens <= 164 + GRACE
    )  # the old cap of 64 no longer applies
    assert stats.budget_hit and stats.thinking_tokens > 164
    assert_no_token_twice(engine, before, stats)


def command_at(engine: LlamaEngine, command: Callable[[], None], at: list[int]) -> Callable[[], None]:
    """Send `command` from another thread and note how many tokens the engine had decoded right after it.

    The engine runs ahead of its consumer (events are handed over in batches), so "within one token" is
    measured against the engine's own count at the moment of the command, not against the event seen."""

    def send() -> None:
        command()
        at.append(engine.evaluated)

    return lambda: in_thread(send)


def test_wrap_up_now_from_another_thread(engine):
    control = TurnControl()
    before = llama_evaluated(engine)
    start, at = engine.evaluated, []
    wrap_up = command_at(engine, control.wrap_up, at)

    def on_event(ev: StreamEvent) -> None:
        if ev.kind == "thinking" and ev.thinking_tokens == 12:
            wrap_up()

    events, _, answer, stats = collect(
        engine.stream(STORY, settings(max_thinking_tokens=None), control), on_event
    )
    wrap = [e for e in events if e.kind == "budget" and e.note == "wrap_up"]
    thinking_at_command = at[0] - start - (stats.prompt_tokens - stats.cached_tokens)
    assert len(wrap) == 1 and 12 <= wrap[0].thinking_tokens <= thinking_at_command + GRACE + 1
    assert not stats.budget_hit  # the user asked; no budget was hit
    assert answer.strip()
    assert_no_token_twice(engine, before, stats)


def test_cancel_stops_within_one_token(engine):
    control = TurnControl()
    before = llama_evaluated(engine)
    at: list[int] = []
    cancel = command_at(engine, control.cancel, at)

    def on_event(ev: StreamEvent) -> None:
        if ev.kind == "thinking" and ev.thinking_tokens == 5:
            cancel()

    events, _, answer, stats = collect(
        engine.stream(STORY, settings(max_thinking_tokens=None), control), on_event
    )
    assert events[-1].stop_reason == "cancelled"
    assert events[-1].truncated_thinking
    assert stats.thinking_tokens >= 5 and answer == ""
    assert engine.evaluated <= at[0] + 1  # at most the token in flight when the cancel landed
    assert_no_token_twice(engine, before, stats)


def test_cancel_before_and_during_the_prompt(engine):
    control = TurnControl()
    control.cancel()
    events, _, _, stats = collect(engine.stream(STORY, settings(), control))
    assert events[-1].stop_reason == "cancelled" and stats.evaluated_tokens == 0

    long_prompt = [
        ChatMessage("user", "Summarize this. " + "The quick brown fox jumps over the lazy dog. " * 300)
    ]
    control = TurnControl()
    timer = threading.Timer(0.05, control.cancel)
    timer.start()
    events, _, _, stats = collect(engine.stream(long_prompt, settings(), control))
    timer.join()
    assert events[-1].stop_reason == "cancelled"
    assert stats.prompt_tokens > 2500
    assert stats.evaluated_tokens < stats.prompt_tokens - stats.cached_tokens  # llama_decode was aborted
    # the engine is still usable, and the aborted prompt leaves nothing stale behind
    before = llama_evaluated(engine)
    _, _, answer, stats = collect(
        engine.stream(STORY[:1], settings(max_thinking_tokens=0, max_answer_tokens=8))
    )
    assert answer.strip()
    assert_no_token_twice(engine, before, stats)


def test_two_turn_chat_evaluates_only_the_new_tokens(engine):
    first = [ChatMessage("user", "Name a color.")]
    s = settings(max_thinking_tokens=0, max_answer_tokens=16)
    _, _, answer1, stats1 = collect(engine.stream(first, s))
    second = [*first, ChatMessage("assistant", answer1), ChatMessage("user", "Name another one.")]
    before = llama_evaluated(engine)
    _, _, answer2, stats2 = collect(engine.stream(second, s))

    p1 = engine.prompt_tokens(first, s)
    p2 = engine.prompt_tokens(second, s)
    common = next(i for i, (a, b) in enumerate(zip(p1, p2, strict=False)) if a != b)
    header = engine.prompt_tokens(first, GenerationSettings(max_thinking_tokens=None))
    assert stats2.cached_tokens == common >= len(header)  # all of turn 1's prompt but its empty think block
    assert stats2.evaluated_tokens - stats2.answer_tokens - stats2.forced_tokens == len(p2) - common
    assert_no_token_twice(engine, before, stats2)

    # the same conversation again: everything but the last prompt token is reused
    before = llama_evaluated(engine)
    _, _, _, stats3 = collect(engine.stream(second, s))
    assert stats3.cached_tokens == len(p2) - 1
    assert_no_token_twice(engine, before, stats3)


def test_a_context_llama_cpp_pads_fills_up_cleanly(smollm2_path):
    """llama.cpp rounds a context of 300 up to 512 cells, but the binding keeps 300 token slots: the engine's
    context is the smaller, so a turn that fills it stops with context_full instead of an IndexError."""
    eng = load(installed(smollm2_path), make_plan(300), smollm2_spec(), check_output=False)
    try:
        assert eng.info.n_ctx == 300
        s = settings(temperature=0.0, max_thinking_tokens=None, max_answer_tokens=4096, loop_detection=False)
        events, _, _, stats = collect(eng.stream([ChatMessage("user", "Count from one to a thousand.")], s))
        assert events[-1].stop_reason == "context_full", events[-1]
        assert stats.prompt_tokens + stats.thinking_tokens + stats.answer_tokens + stats.forced_tokens <= 300
    finally:
        eng.close()


def test_a_prompt_longer_than_the_context(engine):
    huge = [ChatMessage("user", "word " * 5000)]
    events, _, _, stats = collect(engine.stream(huge, settings()))
    assert events[-1].stop_reason == "context_full"
    assert any(e.kind == "status" and "context" in e.text for e in events)
    assert stats.evaluated_tokens == 0


def test_the_same_seed_gives_the_same_turn(engine):
    s = settings(max_thinking_tokens=16, max_answer_tokens=16)
    a = collect(engine.stream(STORY, s))
    b = collect(engine.stream(STORY, s))
    assert (a[1], a[2]) == (b[1], b[2])


def test_a_random_seed_is_reported(engine):
    _, _, _, stats = collect(
        engine.stream(STORY, settings(seed=None, max_thinking_tokens=0, max_answer_tokens=4))
    )
    assert isinstance(stats.seed, int)


def test_one_turn_at_a_time(engine):
    first = engine.stream(STORY, settings(max_thinking_tokens=8))
    next(first)
    with pytest.raises(RuntimeError, match="already generating"):
        next(engine.stream(STORY, settings()))
    first.close()
    collect(engine.stream(STORY, settings(max_thinking_tokens=0, max_answer_tokens=4)))


def test_special_token_text_in_a_message_stays_text(engine):
    tokens = engine.prompt_tokens([ChatMessage("user", "Explain print('<|im_end|>') please.")], settings())
    assert tokens.count(2) == 1  # 2 is SmolLM2's <|im_end|>: only the markup's own end of turn


def test_greedy_output_matches_the_bare_binding(engine, smollm2_path):
    """The engine's own decode path (a single-token fast path, prefix reuse) produces what llama.cpp would."""
    import llama_cpp

    msgs = [ChatMessage("user", "List three fruits and say one thing about each.")]
    s = settings(temperature=0.0, max_thinking_tokens=0, max_answer_tokens=40, loop_detection=False)
    collect(engine.stream(STORY, s))  # leave another conversation in the cache first
    _, _, answer, stats = collect(engine.stream(msgs, s))
    bare = llama_cpp.Llama(str(smollm2_path), n_ctx=1024, n_threads=1, verbose=False)
    try:
        out: list[int] = []
        for tok in bare.generate(engine.prompt_tokens(msgs, s), top_k=0, top_p=1.0, min_p=0.0, temp=0.0):
            if llama_cpp.llama_vocab_is_eog(bare._model.vocab, tok) or len(out) == stats.answer_tokens:
                break
            out.append(tok)
        assert answer == bare.detokenize(out).decode("utf-8", "replace").lstrip()
    finally:
        bare.close()


def test_the_accounting_check_reads_llama_cpp_and_sees_a_token_decoded_twice(engine, monkeypatch):
    """A bug that decodes a token a second time leaves the turn's own counts as they were; llama.cpp's
    counters, which assert_no_token_twice reads, see it."""
    from vibelocal.engine.llama import runtime

    real_eval = runtime._LlamaBackend.eval
    redone: list[list[int]] = []

    def eval_one_twice(self, tokens: list[int]) -> None:
        real_eval(self, tokens)
        if not redone:  # the first generated token: take it back and decode it again
            redone.append(tokens)
            self.rollback(self.n_past - len(tokens))
            real_eval(self, tokens)

    monkeypatch.setattr(runtime._LlamaBackend, "eval", eval_one_twice)
    before = llama_evaluated(engine)
    _, _, answer, stats = collect(engine.stream(STORY, settings(max_thinking_tokens=0, max_answer_tokens=8)))
    assert redone and answer.strip()
    with pytest.raises(AssertionError, match="llama.cpp decoded"):
        assert_no_token_twice(engine, before, stats)
    assert llama_evaluated(engine) - before == stats.evaluated_tokens + len(redone[0])
