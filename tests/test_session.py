"""The session facade: generation settings from manifest and settings, engine loading through an injected loader."""

from __future__ import annotations

from vibelocal.config import Settings
from vibelocal.engine.scripted import Script, ScriptedEngine
from vibelocal.session import Session
from vibelocal.types import ChatMessage


def test_generation_settings_come_from_the_manifest_then_settings():
    session = Session(Settings(temperature=0.2, budget="low", min_thinking=100))
    spec = session.catalog.get("vibethinker-3b")
    gen = session.generation_settings(spec=spec)
    assert gen.temperature == 0.2  # setting beats manifest
    assert (gen.top_p, gen.top_k) == (0.95, 0)  # manifest
    assert gen.max_thinking_tokens == 2048
    assert gen.thinking_time_s is None
    assert gen.min_thinking_tokens == 100
    assert gen.prefill_think is False


def test_time_budget_and_prefill_override():
    session = Session(Settings(budget="90s", prefill_think=True))
    gen = session.generation_settings()
    assert gen.max_thinking_tokens is None
    assert gen.thinking_time_s == 90.0
    assert gen.prefill_think is True


def test_budget_override_beats_settings():
    session = Session(Settings(budget="low"))
    assert session.budget("off").tokens == 0
    assert session.budget().tokens == 2048


def test_scripted_engine_plays_thinking_then_answer():
    engine = ScriptedEngine(Script(thinking="Let me add: two and two.", answer="The answer is \\boxed{4}."))
    session = Session(Settings())
    events = list(engine.stream([ChatMessage("user", "2+2?")], session.generation_settings()))
    thinking = "".join(e.text for e in events if e.kind == "thinking")
    answer = "".join(e.text for e in events if e.kind == "answer")
    assert thinking == "Let me add: two and two."
    assert answer == "The answer is \\boxed{4}."
    assert events[-1].kind == "done" and events[-1].stop_reason == "answered"
    assert events[-1].stats.thinking_tokens > 0


def test_engine_is_reused_across_sampler_changes_and_reloaded_for_load_changes(smollm2_path):
    from vibelocal.types import HardwareProfile

    loads: list[str] = []

    def loader(model, plan, spec):
        loads.append(plan.quant)
        return ScriptedEngine(Script(answer="ok"))

    hw = HardwareProfile(
        os="linux",
        arch="x86_64",
        cpu_cores_physical=2,
        cpu_cores_logical=2,
        ram_total_bytes=8 * 2**30,
        ram_available_bytes=6 * 2**30,
        source="profile",
    )
    session = Session(Settings(model=str(smollm2_path)), engine_loader=loader, hardware=hw)
    first = session.engine()
    session.settings.temperature = 0.1
    session.settings.budget = "high"
    assert session.engine() is first
    assert len(loads) == 1
    session.settings.ctx = 4096
    second = session.engine()
    assert second is not first and first.closed
    assert len(loads) == 2


def test_model_label_names_catalog_models_with_their_quant_and_files_by_name(tmp_path):
    from vibelocal.types import InstalledModel

    catalog_model = InstalledModel(
        path=tmp_path / "VibeThinker-3B.Q4_K_M.gguf", size_bytes=1, name="vibethinker-3b", quant="Q4_K_M"
    )
    a_file = InstalledModel(path=tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf", size_bytes=1, quant="Q4_1")
    assert catalog_model.label == "vibethinker-3b:Q4_K_M"
    assert a_file.label == "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_no_model_switch_while_a_turn_streams_on_the_real_engine(smollm2_path, tiny_qwen2_path):
    """A switch mid-reply is refused (the engine is never closed under its running turn); once the turn
    has ended the switch loads the other model."""
    import pytest

    from vibelocal.errors import EngineBusyError
    from vibelocal.types import GenerationSettings

    session = Session(Settings(model=str(smollm2_path), ctx=1024, threads=1))
    settings = GenerationSettings(
        temperature=0.0, max_thinking_tokens=24, max_answer_tokens=8, prefill_think=True
    )
    first = session.engine()
    events = session.stream([ChatMessage("user", "Tell me a story.")], settings)
    got = [next(events)]
    assert session.busy
    with pytest.raises(EngineBusyError, match="while a reply is streaming") as caught:
        session.engine(str(tiny_qwen2_path))
    assert caught.value.hint and "stop the reply first" in caught.value.hint
    got += list(events)  # the turn goes on, undisturbed
    assert got[-1].kind == "done" and got[-1].stop_reason != "error"
    assert sum(e.kind == "thinking" for e in got) >= 8
    assert not session.busy
    second = session.engine(str(tiny_qwen2_path))
    assert second is not first and second.info.model_path == str(tiny_qwen2_path)
    assert session.close() is True


def test_a_closed_or_failed_turn_frees_the_session_for_a_switch(smollm2_path):
    engine = ScriptedEngine(Script(thinking="a b c d e f g h", answer="done"))
    session = Session(Settings(model=str(smollm2_path)), engine_loader=lambda m, p, s: engine)
    events = session.stream([ChatMessage("user", "hi")], session.generation_settings())
    next(events)
    assert session.busy
    events.close()  # a consumer that stops reading early
    assert not session.busy
    session.settings.ctx = 4096
    assert session.engine() is not None and engine.closed
