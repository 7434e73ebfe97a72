"""Snapshot tests (pytest-textual-snapshot): fixed terminal size and stored content; no clocks, no live speeds."""

from __future__ import annotations

from pathlib import Path

import pytest
from tui_helpers import ANSWER, HARDWARE, THINKING, wait_for

from vibelocal.config import load_settings
from vibelocal.engine.scripted import Script, ScriptedEngine
from vibelocal.history import History
from vibelocal.models.store import Registry
from vibelocal.paths import get_paths
from vibelocal.session import Session
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


async def settle(pilot) -> None:
    """Let workers, animations and every pending message, layout pass and after-refresh callback run."""
    await pilot.app.workers.wait_for_complete()
    await pilot.wait_for_scheduled_animations()
    for _ in range(3):
        await pilot.pause()


def still_cursors(app: VibelocalApp) -> None:
    """Stop every text cursor blinking and leave it drawn where it has focus.

    The blink is a 0.5 s wall-clock timer (Textual's Input and TextArea), so a screenshot taken after a slow run
    (a busy 2-core CI machine) would otherwise catch whichever phase of it the machine's speed lands on.
    """
    for screen in app.screen_stack:
        for widget in screen.query("Input, TextArea"):
            widget.cursor_blink = False


def shot(snap_compare, app: VibelocalApp, run_before, *, press: tuple[str, ...] = ()) -> bool:
    """Drive the app (then press the keys), let it settle, freeze the cursors, and compare the screenshot."""

    async def drive(pilot) -> None:
        await run_before(pilot)
        if press:
            await pilot.press(*press)
            await settle(pilot)
        still_cursors(pilot.app)

    return snap_compare(app, terminal_size=SIZE, run_before=drive)


async def loaded(pilot) -> None:
    await wait_for(pilot, lambda: "on CPU" in pilot.app.chat.model_label)
    await settle(pilot)


async def resumed(pilot) -> None:
    await loaded(pilot)
    await pilot.app.chat.open_conversation(1)
    await settle(pilot)


def test_chat_screen_empty(app, snap_compare):
    assert shot(snap_compare, app, loaded)


def test_resumed_conversation(app, snap_compare):
    assert shot(snap_compare, app, resumed)


def test_thinking_reopened(app, snap_compare):
    async def reopen(pilot) -> None:
        await resumed(pilot)
        reply = pilot.app.chat.transcript.children[1]
        reply.toggle_thinking()
        await settle(pilot)  # let the expanded panel lay out before scrolling
        pilot.app.chat.transcript.scroll_home(animate=False)
        await settle(pilot)

    assert shot(snap_compare, app, reopen)


def test_help_screen(app, snap_compare):
    assert shot(snap_compare, app, loaded, press=("f1",))


def test_settings_screen(app, snap_compare):
    assert shot(snap_compare, app, loaded, press=("f3",))


MATRIX_ANSWER = (
    "The rotation is $$R = \\begin{pmatrix} 0 & -1 \\\\ 1 & 0 \\end{pmatrix}$$ and the sign function is\n"
    "$$\\operatorname{sgn}(x) = \\begin{cases} 1 & x > 0 \\\\ 0 & x = 0 \\\\ -1 & x < 0 \\end{cases}$$\n"
    "so $R^4 = \\boxed{\\begin{bmatrix} 1 & 0 \\\\ 0 & 1 \\end{bmatrix}}$."
)


def test_matrices_and_cases(app, snap_compare):
    """A stored reply with a matrix, cases and a boxed matrix: aligned blocks with brackets, a brace, a frame."""
    with History(get_paths().history_db) as history:
        conv = history.new_conversation()
        history.add_message(conv.id, "user", "Rotate by 90 degrees four times.")
        reply = history.start_reply(conv.id)
        history.finish_reply(reply, thinking="", content=MATRIX_ANSWER, status="complete", record=RECORD)

    async def open_it(pilot) -> None:
        await loaded(pilot)
        await pilot.app.chat.open_conversation(conv.id)
        await settle(pilot)

    assert shot(snap_compare, app, open_it)
