"""The session facade: generation settings from manifest and settings, engine loading through an injected loader."""

from __future__ import annotations

from vibelocal.config import Settings
from vibelocal.scripted import Script, ScriptedEngine
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
