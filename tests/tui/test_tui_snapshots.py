"""Snapshot tests (pytest-textual-snapshot): fixed terminal size and stored content; no clocks, no live speeds."""

from __future__ import annotations

from pathlib import Path

import pytest
from tui_helpers import ANSWER, HARDWARE, THINKING, wait_for

from vibelocal.config import load_settings
from vibelocal.history import History
from vibelocal.paths import get_paths
from vibelocal.scripted import Script, ScriptedEngine
from vibelocal.session import Session
from vibelocal.store import Registry
from vibelocal.tui.app import VibelocalApp
from vibelocal.types import InstalledModel

SIZE = (100, 30)
RECORD = {
    "model_name": "vibethinker-3b",
    "quant": "Q4_K_M",
    "device": "CPU",
    "seed": 1234,
    "tok_s": 31.5,
    "ttft_s": 0.42,
    "thinking_tokens": 64,
    "answer_tokens": 21,
}


@pytest.fixture
def app(smollm2_path: Path) -> VibelocalApp:
    """The default model (vibethinker-3b) 'installed' as the SmolLM2 file, a scripted engine, and one stored
    conversation with a finished and a stopped reply."""
    Registry(get_paths()).add(
        InstalledModel(
            path=smollm2_path,
            size_bytes=smollm2_path.stat().st_size,
            name="vibethinker-3b",
            quant="Q4_K_M",
            verified=True,
        )
    )
    with History(get_paths().history_db) as history:
        conv = history.new_conversation()
        history.add_message(conv.id, "user", "What is 6 times 7? Put the result in a box.")
        reply = history.start_reply(conv.id)
        history.finish_reply(reply, thinking=THINKING, content=ANSWER, status="complete", record=RECORD)
        history.add_message(conv.id, "user", "Now explain multiplication at length.")
        stopped = history.start_reply(conv.id)
        history.finish_reply(
            stopped,
            thinking="Multiplication is repeated addition.",
            content="Multiplication is repeated",
            status="stopped",
            stop_reason="cancelled",
        )
    engine = ScriptedEngine(Script(THINKING, ANSWER))
    session = Session(load_settings(), engine_loader=lambda *_: engine, hardware=HARDWARE)
    return VibelocalApp(session)


async def loaded(pilot) -> None:
    await wait_for(pilot, lambda: "on CPU" in pilot.app.chat.model_label)
    await pilot.pause()


async def resumed(pilot) -> None:
    await loaded(pilot)
    await pilot.app.chat.open_conversation(1)
    await pilot.pause()


def test_chat_screen_empty(app, snap_compare):
    assert snap_compare(app, terminal_size=SIZE, run_before=loaded)


def test_resumed_conversation(app, snap_compare):
    assert snap_compare(app, terminal_size=SIZE, run_before=resumed)


def test_thinking_reopened(app, snap_compare):
    async def reopen(pilot) -> None:
        await resumed(pilot)
        reply = pilot.app.chat.transcript.children[1]
        reply.toggle_thinking()
        pilot.app.chat.transcript.scroll_home(animate=False)
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=reopen)


def test_help_screen(app, snap_compare):
    assert snap_compare(app, terminal_size=SIZE, press=["f1"], run_before=loaded)


def test_settings_screen(app, snap_compare):
    assert snap_compare(app, terminal_size=SIZE, press=["f3"], run_before=loaded)
