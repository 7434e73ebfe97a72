"""Pilot tests of conversations and settings: persistence and resume, rename, delete, export, settings saved."""

from __future__ import annotations

import sys

import pytest
from tui_helpers import ANSWER, THINKING, wait_for, wait_idle

from vibelocal.config import load_settings
from vibelocal.engine.scripted import Script, ScriptedEngine, pieces
from vibelocal.paths import get_paths
from vibelocal.tui.app import VibelocalApp
from vibelocal.tui.screens.dialogs import Confirm, TextPrompt
from vibelocal.tui.screens.help import HelpScreen
from vibelocal.tui.screens.settings import SettingsScreen
from vibelocal.tui.screens.tutor import TutorScreen
from vibelocal.tui.widgets.prompt import PromptInput
from vibelocal.tui.widgets.reply import AssistantReply, UserMessage
from vibelocal.tui.widgets.sidebar import ConversationList

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

pytestmark = pytest.mark.anyio
SIZE = (110, 36)


async def send(pilot, text: str) -> None:
    pilot.app.chat.query_one(PromptInput).focus()
    await pilot.press(*text, "enter")
    await wait_idle(pilot, pilot.app)


def titles(app) -> list[str]:
    options = app.chat.query_one(ConversationList)
    return [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]


async def test_quit_then_resume_finds_the_conversation(make_session):
    first = VibelocalApp(make_session())
    async with first.run_test(size=SIZE) as pilot:
        await send(pilot, "What is 6*7?")
        await send(pilot, "Are you sure?")
        await pilot.press("ctrl+n")
        await send(pilot, "Another topic")
        await pilot.press("ctrl+q")
    engine = ScriptedEngine(Script("new thoughts", "Yes, 42."))
    app = VibelocalApp(make_session(engine))
    async with app.run_test(size=SIZE) as pilot:
        assert titles(app) == ["Another topic", "What is 6*7?"]
        sidebar = app.chat.query_one(ConversationList)
        sidebar.focus()
        sidebar.highlighted = 1
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(app.chat.transcript.children) == 4)
        shown = app.chat.transcript.children
        assert [type(w) for w in shown] == [UserMessage, AssistantReply, UserMessage, AssistantReply]
        assert shown[0].text == "What is 6*7?"
        assert shown[1].thinking == THINKING and shown[1].answer == ANSWER
        assert (
            shown[1].panel.collapsed and shown[1].panel.title == f"Thought for {len(pieces(THINKING))} tokens"
        )
        assert "CPU" in str(shown[1].footer.render())
        # continuing sends the answers back, never the old thinking
        await send(pilot, "Thanks")
        assert [(m.role, m.content) for m in engine.turns[-1]] == [
            ("user", "What is 6*7?"),
            ("assistant", ANSWER),
            ("user", "Are you sure?"),
            ("assistant", ANSWER),
            ("user", "Thanks"),
        ]
        assert titles(app)[0] == "What is 6*7?"  # most recently active first


async def test_rename_and_delete(make_session):
    app = VibelocalApp(make_session())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")  # nothing to rename yet: a warning, no dialog
        assert not isinstance(app.screen, TextPrompt)
        await send(pilot, "first question")
        await pilot.press("ctrl+r")
        assert isinstance(app.screen, TextPrompt)
        await pilot.press("ctrl+u", *"Multiplication", "enter")
        await wait_for(pilot, lambda: titles(app) == ["Multiplication"])
        assert app.history.conversations()[0].title == "Multiplication"
        await pilot.press("f8")
        assert isinstance(app.screen, Confirm)
        await pilot.press("escape")  # changed my mind
        assert app.history.conversations() and titles(app) == ["Multiplication"]
        await pilot.press("f8")
        await pilot.press("y")
        await wait_for(pilot, lambda: titles(app) == [])
        assert app.history.conversations() == []
        assert len(app.chat.transcript.children) == 0 and app.chat.conversation_id is None


async def test_sidebar_keys_rename_and_delete(make_session):
    app = VibelocalApp(make_session())
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "keep me")
        await pilot.press("ctrl+n")
        await send(pilot, "drop me")
        sidebar = app.chat.query_one(ConversationList)
        sidebar.focus()
        sidebar.highlighted = 1
        await pilot.press("r")
        await pilot.press("ctrl+u", *"kept", "enter")
        await wait_for(pilot, lambda: "kept" in titles(app))
        sidebar.focus()
        sidebar.highlighted = titles(app).index("drop me")
        await pilot.press("delete")
        await pilot.press("y")
        await wait_for(pilot, lambda: titles(app) == ["kept"])
        assert len(app.chat.transcript.children) == 0  # the open conversation was the deleted one


async def test_export_writes_markdown_with_thinking_in_details(make_session, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = VibelocalApp(make_session())
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "What is 6*7?")
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, TextPrompt)
        await pilot.press("enter")
        target = tmp_path / "what-is-6-7.md"
        await wait_for(pilot, target.exists)
    text = target.read_text(encoding="utf-8")
    assert text.startswith("# What is 6*7?\n")
    assert (
        f"<details>\n<summary>Thinking ({len(pieces(THINKING))} tokens)</summary>\n\n" + THINKING.strip()
        in text
    )
    assert "</details>\n\n" + ANSWER in text


async def test_settings_are_saved_and_used_by_the_next_turn(make_session):
    app = VibelocalApp(make_session())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        screen = app.screen
        assert isinstance(screen, SettingsScreen)
        screen.query_one("#budget").value = "low"
        screen.query_one("#temperature").value = "3"
        await pilot.press("ctrl+s")
        assert "between 0 and 2" in str(screen.query_one("#settings-error").render())  # refused, still open
        screen.query_one("#temperature").value = "0.3"
        screen.query_one("#show-thinking").value = False
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, SettingsScreen))
        saved = tomllib.loads(get_paths().config_file.read_text())
        assert saved == {"budget": "low", "temperature": 0.3, "show_thinking": False}
        assert load_settings().budget == "low"
        await send(pilot, "q")
        record = app.history.messages(1)[-1].record
        assert record["budget"] == {**record["budget"], "label": "low", "thinking_tokens": 2048}
        assert record["sampler"]["temperature"] == 0.3
        await pilot.press("f3", "escape")  # Esc leaves without saving
        assert not isinstance(app.screen, SettingsScreen)


async def test_help_lists_the_keys(make_session):
    app = VibelocalApp(make_session())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_tutor_key_opens_the_tutor_screen_on_the_typed_problem(make_session):
    app = VibelocalApp(make_session())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"2x+1=5")
        await pilot.press("f4")
        await pilot.pause()
        assert isinstance(app.screen, TutorScreen)
        assert app.screen.problem_text == "2x+1=5"
