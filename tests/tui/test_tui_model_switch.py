"""Changing the model in the chat app while a reply streams: the switch waits for the reply to end, and the
old engine is closed only once its turn is over (it used to be closed under the running turn: a segfault)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tui_helpers import HARDWARE, wait_for, wait_idle

from vibelocal.config import load_settings
from vibelocal.engine.scripted import Script, ScriptedEngine
from vibelocal.session import Session
from vibelocal.tui.app import VibelocalApp
from vibelocal.tui.widgets.prompt import PromptInput

pytestmark = pytest.mark.anyio
SIZE = (110, 36)


class WatchedEngine(ScriptedEngine):
    """A scripted engine that notes whether a turn of it was still streaming when it was closed."""

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.streaming = False
        self.closed_mid_turn: bool | None = None

    def stream(self, messages, settings, control=None):
        self.streaming = True
        try:
            yield from super().stream(messages, settings, control)
        finally:
            self.streaming = False

    def close(self) -> None:
        self.closed_mid_turn = self.streaming
        super().close()


async def test_a_model_switch_mid_reply_waits_for_the_reply(smollm2_path: Path, tiny_qwen2_path: Path):
    first = WatchedEngine(Script("Think it through carefully. " * 40, "It is 42."), tokens_per_s=150)
    second = WatchedEngine(Script("quick", "Second model here."))
    engines = {smollm2_path.resolve(): first, tiny_qwen2_path.resolve(): second}
    loaded: list[Path] = []

    def loader(model, _plan, _spec):
        loaded.append(Path(model.path).resolve())
        return engines[Path(model.path).resolve()]

    session = Session(load_settings({"model": str(smollm2_path)}), engine_loader=loader, hardware=HARDWARE)
    app = VibelocalApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "on CPU" in app.chat.model_label)
        app.chat.query_one(PromptInput).focus()
        await pilot.press(*"What is 6*7?", "enter")
        reply = app.chat.last_reply()
        await wait_for(pilot, lambda: reply.panel is not None and reply.panel.tokens > 5)
        app.apply_settings({"model": str(tiny_qwen2_path)})  # what the settings screen hands back
        await pilot.pause()
        assert any("when this reply ends" in n.message for n in app._notifications)
        await wait_idle(pilot, app)
        assert reply.status == "complete" and reply.answer == "It is 42."
        await wait_for(pilot, lambda: second in (session._engine,) and "on CPU" in app.chat.model_label)
        assert loaded == [smollm2_path.resolve(), tiny_qwen2_path.resolve()]
        assert first.closed and first.closed_mid_turn is False
        await pilot.press(*"And now?", "enter")
        await wait_idle(pilot, app)
        assert app.chat.last_reply().answer == "Second model here."
        await pilot.press("ctrl+q")


@pytest.mark.real_model
async def test_a_model_switch_mid_reply_on_the_real_engine(smollm2_path: Path, tiny_qwen2_path: Path):
    settings = load_settings(
        {"model": str(smollm2_path), "prefill_think": True, "budget": "64", "answer_budget": 16, "seed": 7}
    )
    session = Session(settings.model_copy(update={"threads": 1}), hardware=HARDWARE)
    app = VibelocalApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "on CPU" in app.chat.model_label, steps=3000)
        old = session._engine
        app.chat.query_one(PromptInput).focus()
        await pilot.press(*"Tell me a story.", "enter")
        reply = app.chat.last_reply()
        await wait_for(pilot, lambda: reply.panel is not None and reply.panel.tokens > 2, steps=3000)
        app.apply_settings({"model": str(tiny_qwen2_path)})
        await wait_idle(pilot, app)
        assert reply.status == "complete" and reply.thinking.strip()
        await wait_for(pilot, lambda: session._engine is not None and session._engine is not old, steps=3000)
        assert session._engine.info.model_path == str(tiny_qwen2_path)
        assert old.busy is False and old.close() is True  # already closed, after its turn
        await pilot.press("ctrl+q")
