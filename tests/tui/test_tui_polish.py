"""Pilot tests of the chat app's polish: a typed budget in F3, the Tab order, the conversation's totals in the
stats bar, errors in the app's words (no command-line flags), glyphs common fonts have, F9 in the help."""

from __future__ import annotations

import re
import socket
import sys

import pytest
from tui_helpers import HARDWARE, wait_for, wait_idle

from vibelocal.config import load_settings
from vibelocal.engine.scripted import Script, ScriptedEngine
from vibelocal.paths import get_paths
from vibelocal.session import Session
from vibelocal.tui.app import VibelocalApp
from vibelocal.tui.screens.help import HelpScreen
from vibelocal.tui.screens.settings import SettingsScreen
from vibelocal.tui.widgets.meter import StatsBar
from vibelocal.tui.widgets.prompt import PromptInput
from vibelocal.tui.widgets.reply import AssistantReply

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

pytestmark = pytest.mark.anyio
SIZE = (110, 36)
CLI_FLAG = re.compile(r"(?<![\w-])--[a-z]")


async def send(pilot, text: str) -> None:
    pilot.app.chat.query_one(PromptInput).focus()
    await pilot.press(*text, "enter")
    await wait_idle(pilot, pilot.app)


def stats_text(app) -> str:
    return str(app.chat.query_one(StatsBar).render())


async def type_budget(pilot, text: str) -> None:
    field = pilot.app.screen.query_one("#budget-custom")
    field.focus()
    field.value = ""
    await pilot.press(*text)


# --------------------------------------------------------------------------- a typed budget in F3


async def test_a_typed_budget_is_saved_and_used_by_the_next_turn(make_session):
    app = VibelocalApp(make_session())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        assert isinstance(app.screen, SettingsScreen)
        await type_budget(pilot, "6K")
        await pilot.press("enter")  # Enter in the field saves, like Ctrl+S
        await wait_for(pilot, lambda: not isinstance(app.screen, SettingsScreen))
        assert tomllib.loads(get_paths().config_file.read_text()) == {"budget": "6k"}
        assert load_settings().budget == "6k"
        await send(pilot, "q")
        record = app.history.messages(1)[-1].record
        assert (record["budget"]["label"], record["budget"]["thinking_tokens"]) == ("6k", 6144)
        await pilot.press("f3")  # the saved budget is offered again
        assert app.screen.query_one("#budget").value == "6k"


@pytest.mark.parametrize(
    ("typed", "saved"), [("3000", "3000"), ("90s", "90s"), ("2m", "2m"), ("HIGH", "high")]
)
async def test_every_budget_the_cli_takes_can_be_typed(make_session, typed, saved):
    app = VibelocalApp(make_session())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        await type_budget(pilot, typed)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, SettingsScreen))
        assert tomllib.loads(get_paths().config_file.read_text()) == {"budget": saved}
        assert app.session.settings.budget == saved


@pytest.mark.parametrize(("typed", "shown"), [("lots", "invalid budget 'lots'"), ("0s", "more than 0s")])
async def test_an_invalid_typed_budget_shows_an_inline_error_and_is_not_saved(make_session, typed, shown):
    app = VibelocalApp(make_session())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        screen = app.screen
        screen.query_one(
            "#budget"
        ).value = "low"  # a preset chosen too: the typed budget wins, so nothing saves
        await type_budget(pilot, typed)
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is screen  # still open
        error = str(screen.query_one("#settings-error").render())
        assert shown in error and not CLI_FLAG.search(error)
        assert not get_paths().config_file.exists()
        assert app.session.settings.budget == "medium"


async def test_on_a_short_terminal_the_settings_scroll_to_save(make_session):
    app = VibelocalApp(make_session())
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f3")
        box, save = app.screen.query_one(".settings-box"), app.screen.query_one("#save")
        save.focus()  # what Tab onto it does
        # scrolled into view (the scroll may animate: wait for it)
        await wait_for(pilot, lambda: box.region.contains_region(save.region) and save.region.height > 0)


# --------------------------------------------------------------------------- Tab order


def area(widget) -> str:
    ids = {node.id for node in widget.ancestors_with_self}
    return next((a for a in ("prompt", "log", "sidebar") if a in ids), "elsewhere")


async def test_tab_goes_input_then_conversation_then_sidebar(make_session):
    app = VibelocalApp(make_session())
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "What is 6*7?")  # a reply in the log: its thinking panel can take focus too
        app.chat.query_one(PromptInput).focus()
        await pilot.pause()
        seen = []
        for _ in range(len(app.chat.focus_chain)):
            seen.append(area(app.focused))
            await pilot.press("tab")
        assert area(app.focused) == "prompt"  # round the chain and back
        assert seen[:2] == ["prompt", "log"] and seen[-1] == "sidebar"
        assert seen == sorted(seen, key=["prompt", "log", "sidebar"].index)
        assert app.focused is app.chat.query_one(PromptInput)
        await pilot.press("shift+tab")
        assert area(app.focused) == "sidebar"  # backwards: input → sidebar


async def test_tab_skips_a_hidden_sidebar(make_session):
    app = VibelocalApp(make_session())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f9")
        app.chat.query_one(PromptInput).focus()
        await pilot.press("tab")
        assert area(app.focused) == "log"
        await pilot.press("tab")
        assert area(app.focused) == "prompt"


# --------------------------------------------------------------------------- the stats bar


async def test_the_stats_bar_shows_the_open_conversations_totals(make_session):
    app = VibelocalApp(make_session())
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: " on " in app.chat.model_label)
        assert "message" not in stats_text(app)  # nothing open yet
        await send(pilot, "What is 6*7?")
        first = app.chat.conversation_id
        stored = app.history.messages(first)[-1].record
        text = stats_text(app)
        assert (
            f"2 messages · {stored['thinking_tokens']:,} thought · {stored['answer_tokens']:,} answered"
            in text
        )
        assert f"last {stored['tok_s']:.1f} tok/s" in text
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert "message" not in stats_text(app)  # a fresh conversation has no totals
        await send(pilot, "and 7*8?")
        await send(pilot, "and 8*9?")
        assert "4 messages" in stats_text(app)
        await app.chat.open_conversation(first)  # what choosing it in the sidebar does
        await pilot.pause()
        assert "2 messages" in stats_text(app) and "4 messages" not in stats_text(app)


# --------------------------------------------------------------------------- errors in the app's words


def refused_port() -> int:
    with socket.socket() as sock:  # bound, then closed: nothing listens there
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_an_unreachable_backend_is_reported_without_cli_flags():
    session = Session(load_settings({"backend": f"http://127.0.0.1:{refused_port()}"}), hardware=HARDWARE)
    app = VibelocalApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.chat.model_label == "model failed to load")
        text = stats_text(app)
        assert "cannot be reached" in text and "check that the server runs" in text
        assert not CLI_FLAG.search(text)
        shown = [n.message for n in app._notifications]
        assert shown and not any(CLI_FLAG.search(n) for n in shown)


# --------------------------------------------------------------------------- glyphs, help


async def test_a_stopped_reply_is_marked_with_a_common_glyph(make_session):
    engine = ScriptedEngine(Script("short thought", "word " * 400), tokens_per_s=300)
    app = VibelocalApp(make_session(engine))
    async with app.run_test(size=SIZE) as pilot:
        app.chat.query_one(PromptInput).focus()
        await pilot.press("q", "enter")
        await wait_for(pilot, lambda: app.chat.active is not None and len(app.chat.active.reply.answer) > 20)
        await pilot.press("escape")
        await wait_idle(pilot, app)
        footer = str(app.chat.query_one(AssistantReply).footer.render())
        assert footer.startswith("■ stopped") and "⏹" not in footer


async def test_help_lists_the_sidebar_key(make_session):
    app = VibelocalApp(make_session())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        shot = app.export_screenshot()
        assert "F9" in shot and "hide&#160;or&#160;show&#160;the&#160;sidebar" in shot
