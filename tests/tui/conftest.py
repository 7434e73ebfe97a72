"""Fixtures for the chat app tests: a fixed hardware profile and sessions that load a scripted engine."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from vibelocal.config import load_settings
from vibelocal.scripted import Script, ScriptedEngine
from vibelocal.session import Session
from vibelocal.types import HardwareProfile

GB = 1024**3

HARDWARE = HardwareProfile(
    os="linux",
    arch="x86_64",
    cpu_name="Test CPU",
    cpu_cores_physical=4,
    cpu_cores_logical=8,
    cpu_features=["avx2"],
    ram_total_bytes=16 * GB,
    ram_available_bytes=12 * GB,
    disk_free_bytes=100 * GB,
    source="profile",
)

THINKING = "First, 6 times 7 is 42. Let me double-check: 7 times 6 is also 42. " * 3
ANSWER = "The product is $6 \\times 7 = 42$, so the answer is $\\boxed{42}$."


@pytest.fixture
def hardware() -> HardwareProfile:
    return HARDWARE


@pytest.fixture
def make_session(smollm2_path: Path) -> Callable[..., Session]:
    """`make_session(engine, **settings)`: a Session whose model is the SmolLM2 file (so the real registry,
    planner and session code run) and whose engine loader returns `engine`."""

    def make(engine: ScriptedEngine | None = None, **overrides) -> Session:
        engine = engine or ScriptedEngine(Script(THINKING, ANSWER))
        settings = load_settings({"model": str(smollm2_path), **overrides})
        return Session(settings, engine_loader=lambda _model, _plan, _spec: engine, hardware=HARDWARE)

    return make
