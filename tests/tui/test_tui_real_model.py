"""The chat app on the real llama.cpp engine with the SmolLM2 GGUF: think, answer, steer, stop, resume."""

from __future__ import annotations

from pathlib import Path

import pytest
from tui_helpers import HARDWARE, wait_for, wait_idle

from vibelocal.config import load_settings
from vibelocal.session import Session
from vibelocal.tui.app import VibelocalApp
from vibelocal.tui.widgets.prompt import PromptInput

pytestmark = [pytest.mark.anyio, pytest.mark.real_model]
SIZE = (110, 36)


async def test_chat_with_the_real_engine(smollm2_path: Path):
    # SmolLM2 never thinks on its own: the turn starts inside <think>; a small budget keeps it short.
    settings = load_settings(
        {"model": str(smollm2_path), "prefill_think": True, "budget": "48", "answer_budget": 48, "seed": 7}
    )
    session = Session(settings, hardware=HARDWARE)
    app = VibelocalApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "on CPU" in app.chat.model_label, steps=3000)
        app.chat.query_one(PromptInput).focus()
        await pilot.press(*"What is 2+2?", "enter")
        reply = app.chat.last_reply()
        await wait_for(pilot, lambda: reply.panel is not None and reply.panel.tokens > 0, steps=3000)
        await wait_idle(pilot, app)
        assert reply.thinking.strip() and reply.status == "complete"
        assert reply.panel.collapsed and reply.panel.title.startswith("Thought for ")
        stored = app.history.messages(1)[-1]
        assert stored.thinking == reply.thinking and stored.content == reply.answer
        record = stored.record
        assert Path(record["model_file"]).resolve() == smollm2_path.resolve()
        assert record["quant"] == "Q4_1" and record["seed"] == 7 and record["device"]
        assert record["budget"]["prefill_think"] is True
        assert record["thinking_tokens"] > 0 and record["tok_s"] and record["ttft_s"] is not None
        # a second turn, stopped with Esc while it thinks: partial output kept and marked. A 4k-token minimum
        # keeps the model thinking for far longer than the Esc takes to arrive, so the stop is what ends it.
        session.settings = session.settings.model_copy(update={"budget": "8k", "min_thinking": 4096})
        await pilot.press(*"And 3+3?", "enter")
        second = app.chat.last_reply()
        await wait_for(pilot, lambda: second.panel.tokens > 2, steps=3000)
        await pilot.press("escape")
        await wait_idle(pilot, app)
        stopped = app.history.messages(1)[-1]
        assert stopped.status == "stopped" and second.status == "stopped"
        assert stopped.thinking and stopped.record["thinking_tokens"] < 4096
        await pilot.press("ctrl+q")
    # a fresh app finds the conversation
    again = VibelocalApp(Session(settings, hardware=HARDWARE))
    async with again.run_test(size=SIZE) as pilot:
        assert [c.title for c in again.history.conversations()] == ["What is 2+2?"]
        await again.chat.open_conversation(again.history.conversations()[0].id)
        assert len(again.chat.transcript.children) == 4
