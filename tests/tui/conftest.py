"""Fixtures for the chat app tests: a fixed hardware profile and sessions that load a scripted engine."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from tui_helpers import ANSWER, HARDWARE, THINKING

from vibelocal.config import load_settings
from vibelocal.engine.scripted import Script, ScriptedEngine
from vibelocal.session import Session


@pytest.fixture
def make_session(smollm2_path: Path) -> Callable[..., Session]:
    """`make_session(engine, **settings)`: a Session whose model is the SmolLM2 file (so the real registry,
    planner and session code run) and whose engine loader returns `engine`."""

    def make(engine: ScriptedEngine | None = None, **overrides) -> Session:
        engine = engine or ScriptedEngine(Script(THINKING, ANSWER))
        settings = load_settings({"model": str(smollm2_path), **overrides})
        return Session(settings, engine_loader=lambda _model, _plan, _spec: engine, hardware=HARDWARE)

    return make
