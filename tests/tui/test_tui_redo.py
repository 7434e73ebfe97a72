"""Pilot tests of regenerate (F5, F6: bigger budget) and edit-and-resend (Up in the empty input)."""

from __future__ import annotations

import pytest
from tui_helpers import THINKING, wait_for, wait_idle

from vibelocal.engine.scripted import Script, ScriptedEngine
from vibelocal.tui.app import VibelocalApp
from vibelocal.tui.widgets.prompt import PromptInput
from vibelocal.tui.widgets.reply import AssistantReply, UserMessage
from vibelocal.tui.widgets.sidebar import ConversationList

pytestmark = pytest.mark.anyio
SIZE = (110, 36)


def numbered(tokens_per_s: float | None = None) -> ScriptedEngine:
    """An engine whose n-th reply answers "Answer n." (so a regenerated reply is told from the old one)."""
    count = iter(range(1, 1000))
    return ScriptedEngine(
        lambda _messages: Script(THINKING, f"Answer {next(count)}."), tokens_per_s=tokens_per_s
    )


async def send(pilot, text: str) -> None:
    pilot.app.chat.query_one(PromptInput).focus()
    await pilot.press(*text, "enter")
    await wait_idle(pilot, pilot.app)


def stored(app) -> list[tuple[str, str]]:
    return [(m.role, m.content) for m in app.history.messages(app.chat.conversation_id)]


def shown(app) -> list[tuple[str, str]]:
    return [
        ("user", w.text) if isinstance(w, UserMessage) else ("assistant", w.answer)
        for w in app.chat.transcript.children
    ]


def notes(app) -> list[str]:
    return [n.message for n in app._notifications]


async def test_regenerate_replaces_the_last_reply_with_the_same_budget(make_session):
    engine = numbered()
    app = VibelocalApp(make_session(engine))
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "What is 6*7?")
        await send(pilot, "/budget 4k And 6*8?")
        await pilot.press("f5")
        await wait_idle(pilot, app)
        expected = [
            ("user", "What is 6*7?"),
            ("assistant", "Answer 1."),
            ("user", "And 6*8?"),
            ("assistant", "Answer 3."),
        ]
        assert stored(app) == expected and shown(app) == expected
        assert [(m.role, m.content) for m in engine.turns[-1]] == expected[:3]  # the old reply is not sent
        last = app.history.messages(app.chat.conversation_id)[-1]
        assert last.status == "complete" and last.thinking == THINKING
        assert last.record["budget"]["label"] == "4k" and last.record["budget"]["thinking_tokens"] == 4096


async def test_regenerate_with_a_bigger_budget_doubles_it(make_session):
    engine = numbered()
    app = VibelocalApp(make_session(engine))  # the medium budget: 8,192 tokens
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "What is 6*7?")
        await pilot.press("f6")
        await wait_idle(pilot, app)
        assert stored(app) == [("user", "What is 6*7?"), ("assistant", "Answer 2.")]
        record = app.history.messages(app.chat.conversation_id)[-1].record
        assert record["budget"]["thinking_tokens"] == 16384 and record["budget"]["label"] == "16384"
        assert "Regenerating with a thinking budget of 16384." in notes(app)
        await pilot.press("f6")  # again: twice the budget that reply had
        await wait_idle(pilot, app)
        record = app.history.messages(app.chat.conversation_id)[-1].record
        assert record["budget"]["thinking_tokens"] == 32768
        assert stored(app) == [("user", "What is 6*7?"), ("assistant", "Answer 3.")]


async def test_palette_commands_regenerate_and_edit(make_session):
    app = VibelocalApp(make_session(numbered()))
    async with app.run_test(size=SIZE) as pilot:
        names = {c.title for c in app.get_system_commands(app.chat)}
        assert {"Regenerate", "Regenerate with a bigger budget", "Edit last message"} <= names
        await pilot.press("f5")  # nothing sent yet
        await pilot.pause()
        assert "Nothing to regenerate yet: send a message first." in notes(app)


async def test_edit_and_resend_replaces_the_message_and_its_reply_and_survives_a_restart(make_session):
    engine = numbered()
    app = VibelocalApp(make_session(engine))
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "What is 6*7?")
        await send(pilot, "And 6*8?")
        prompt = app.chat.query_one(PromptInput)
        await pilot.press("up")  # in the empty input: the last message comes back
        assert prompt.text == "And 6*8?" and app.chat.editing is not None
        await pilot.press("backspace", "backspace", "9", "?", "enter")
        await wait_idle(pilot, app)
        expected = [
            ("user", "What is 6*7?"),
            ("assistant", "Answer 1."),
            ("user", "And 6*9?"),
            ("assistant", "Answer 3."),
        ]
        assert stored(app) == expected and shown(app) == expected
        assert [(m.role, m.content) for m in engine.turns[-1]] == expected[:3]
        assert prompt.text == "" and app.chat.editing is None
        # the next message is a new one again, not an edit
        await send(pilot, "Thanks")
        assert len(stored(app)) == 6
        await pilot.press("ctrl+q")
    again = VibelocalApp(make_session(numbered()))
    async with again.run_test(size=SIZE) as pilot:
        sidebar = again.chat.query_one(ConversationList)
        sidebar.focus()
        sidebar.highlighted = 0
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(again.chat.transcript.children) == 6)
        assert shown(again) == [*expected, ("user", "Thanks"), ("assistant", "Answer 4.")]


async def test_edit_of_the_first_message_renames_the_chat_and_esc_cancels_an_edit(make_session):
    app = VibelocalApp(make_session(numbered()))
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "What is 6*7?")
        await pilot.press("up")
        await pilot.press("escape")  # cancel: the input empties, nothing changes
        assert app.chat.query_one(PromptInput).text == "" and app.chat.editing is None
        assert stored(app) == [("user", "What is 6*7?"), ("assistant", "Answer 1.")]
        await pilot.press("up", "backspace", "backspace", "8", "?", "enter")
        await wait_idle(pilot, app)
        assert stored(app) == [("user", "What is 6*8?"), ("assistant", "Answer 2.")]
        assert app.history.conversation(app.chat.conversation_id).title == "What is 6*8?"


async def test_regenerate_and_edit_are_refused_while_a_reply_streams(make_session):
    app = VibelocalApp(make_session(ScriptedEngine(Script("think " * 400, "Answer."), tokens_per_s=200)))
    async with app.run_test(size=SIZE) as pilot:
        app.chat.query_one(PromptInput).focus()
        await pilot.press(*"What is 6*7?", "enter")
        reply = app.chat.last_reply()
        await wait_for(pilot, lambda: reply.panel is not None and reply.panel.tokens >= 5)
        await pilot.press("f5", "f6", "up")
        await pilot.pause()
        refusals = [n for n in notes(app) if "stop the reply first" in n]
        assert refusals == [
            "A reply is streaming: stop the reply first (Esc), then regenerate.",
            "A reply is streaming: stop the reply first (Esc), then regenerate.",
            "A reply is streaming: stop the reply first (Esc), then edit.",
        ]
        assert app.chat.editing is None and app.chat.query_one(PromptInput).text == ""
        assert app.chat.active is not None and app.chat.active.reply is reply  # the same reply goes on
        await pilot.press("escape")
        await wait_idle(pilot, app)
        messages = app.history.messages(app.chat.conversation_id)
        assert [(m.role, m.status) for m in messages] == [("user", "complete"), ("assistant", "stopped")]
        assert len(app.chat.transcript.query(AssistantReply)) == 1


async def test_an_edit_whose_message_is_no_longer_the_last_replaces_nothing(make_session):
    app = VibelocalApp(make_session(numbered()))
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "What is 6*7?")
        await pilot.press("up")
        app.history.add_message(app.chat.conversation_id, "user", "from another window")
        await pilot.press("!", "enter")
        await pilot.pause()
        assert "That message is no longer the last one: nothing was replaced." in notes(app)
        assert app.chat.query_one(PromptInput).text == "What is 6*7?!" and app.chat.active is None
        assert stored(app) == [
            ("user", "What is 6*7?"),
            ("assistant", "Answer 1."),
            ("user", "from another window"),
        ]
