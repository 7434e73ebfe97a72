"""Pilot tests of the chat app with a scripted engine: streaming, thinking panel, stop, budget keys, copy."""

from __future__ import annotations

import pytest
from tui_helpers import ANSWER, THINKING, HeldEngine, hold_press, wait_for, wait_idle

from vibelocal.engine.budget import WRAP_UP_TEXT
from vibelocal.engine.scripted import Script, ScriptedEngine, pieces
from vibelocal.history import History
from vibelocal.paths import get_paths
from vibelocal.tui.app import VibelocalApp
from vibelocal.tui.widgets.meter import BudgetMeter
from vibelocal.tui.widgets.prompt import PromptInput
from vibelocal.types import GenerationSettings, StreamEvent

pytestmark = pytest.mark.anyio
SIZE = (110, 36)
LONG_THINKING = "Consider every case carefully and check each one again. " * 60  # ~600 tokens


async def send(pilot, text: str) -> None:
    pilot.app.chat.query_one(PromptInput).focus()
    await pilot.press(*text, "enter")


async def test_streams_thinking_then_answer_and_keeps_both(make_session):
    engine = ScriptedEngine(Script(LONG_THINKING, ANSWER), tokens_per_s=400)
    app = VibelocalApp(make_session(engine))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "on CPU" in app.chat.model_label)
        await send(pilot, "what is 6*7?")
        reply = app.chat.last_reply()
        # while thinking: the panel is open, live, counting tokens, and the meter shows the budget
        await wait_for(pilot, lambda: reply.panel.tokens >= 20)
        assert not reply.panel.collapsed and reply.panel.is_live
        assert reply.panel.title.startswith("Thinking… ")
        meter = app.chat.query_one(BudgetMeter)
        assert meter.display and "/ 8,192 tokens" in meter.line
        assert reply.answer == ""
        await wait_idle(pilot, app)
        # once the answer starts the panel collapses to a summary that can be re-opened
        total = len(pieces(LONG_THINKING))
        assert reply.panel.collapsed and not reply.panel.is_live
        assert reply.panel.title == f"Thought for {total:,} tokens"
        assert reply.thinking == LONG_THINKING and reply.answer == ANSWER
        assert "6 × 7 = 42" in reply.markdown.source and "**42**" in reply.markdown.source  # LaTeX as Unicode
        assert not meter.display
        assert "tok/s" in str(reply.footer.render()) and "CPU" in str(reply.footer.render())
        await pilot.press("ctrl+t")
        assert not reply.panel.collapsed
        await pilot.press("ctrl+t")
        assert reply.panel.collapsed
        # stored with its thinking apart and a reproducibility record
        (conv,) = app.history.conversations()
        user, stored = app.history.messages(conv.id)
        assert (user.role, user.content) == ("user", "what is 6*7?")
        assert (stored.thinking, stored.content, stored.status) == (LONG_THINKING, ANSWER, "complete")
        assert stored.record["thinking_tokens"] == total and stored.record["device"] == "CPU"
        assert stored.record["budget"]["label"] == "medium"


async def test_show_thinking_off_keeps_the_panel_closed_while_streaming(make_session):
    engine = ScriptedEngine(Script(LONG_THINKING, ANSWER), tokens_per_s=400)
    app = VibelocalApp(make_session(engine, show_thinking=False))
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "q")
        reply = app.chat.last_reply()
        await wait_for(pilot, lambda: reply.panel.tokens >= 10)
        assert reply.panel.collapsed and reply.panel.title.startswith("Thinking… ")
        await wait_idle(pilot, app)


async def test_escape_stops_and_keeps_the_partial_answer(make_session):
    answer = "word " * 400
    engine = HeldEngine(
        Script("short thought", answer), tokens_per_s=300, hold_at=len(pieces("short thought")) + 10
    )
    app = VibelocalApp(make_session(engine))
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "talk")
        reply = app.chat.last_reply()
        await hold_press(pilot, engine, "escape")
        await wait_idle(pilot, app)
        assert reply.status == "stopped" and "stopped" in str(reply.footer.render())
        assert 0 < len(reply.answer) < len(answer) and answer.startswith(reply.answer)
        stored = app.history.messages(1)[-1]
        assert (stored.status, stored.stop_reason, stored.content) == ("stopped", "cancelled", reply.answer)
        # the next question goes out with the partial answer and no thinking
        await send(pilot, "again")
        await wait_idle(pilot, app)
        sent = engine.turns[-1]
        assert [(msg.role, msg.content) for msg in sent] == [
            ("user", "talk"),
            ("assistant", reply.answer),
            ("user", "again"),
        ]


async def test_extend_key_gives_the_budget_2k_more(make_session):
    engine = HeldEngine(Script(LONG_THINKING, ANSWER), tokens_per_s=300, hold_at=10)
    app = VibelocalApp(make_session(engine, budget="100"))
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "q")
        reply = app.chat.last_reply()
        await hold_press(pilot, engine, "ctrl+b")
        await wait_for(pilot, lambda: "/ 2,148 tokens" in app.chat.query_one(BudgetMeter).line)
        await wait_idle(pilot, app)
        total = len(pieces(LONG_THINKING))
        assert total > 100 and reply.panel.tokens == total  # without the extension thinking stops at 100
        assert reply.thinking == LONG_THINKING
        record = app.history.messages(1)[-1].record
        assert record["budget"]["thinking_tokens"] == 2148 and record["thinking_tokens"] == total


async def test_without_extension_the_small_budget_wraps_up(make_session):
    engine = ScriptedEngine(Script(LONG_THINKING, ANSWER))
    app = VibelocalApp(make_session(engine, budget="100"))
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "q")
        await wait_idle(pilot, app)
        reply = app.chat.last_reply()
        # the real budget: past the cap of 100 the model may finish its sentence within the grace
        grace = GenerationSettings().grace_tokens
        assert reply.thinking.endswith(WRAP_UP_TEXT) and 100 < reply.panel.tokens <= 100 + grace
        assert reply.thinking[: -len(WRAP_UP_TEXT)].endswith("again.")
        record = app.history.messages(1)[-1].record
        assert record["thinking_tokens"] == reply.panel.tokens and record["budget_hit"] is True


async def test_wrap_up_key_ends_thinking_and_answers(make_session):
    engine = HeldEngine(Script(LONG_THINKING, ANSWER), tokens_per_s=300, hold_at=10)
    app = VibelocalApp(make_session(engine))
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "q")
        reply = app.chat.last_reply()
        await hold_press(pilot, engine, "ctrl+f")
        await wait_idle(pilot, app)
        assert reply.thinking.endswith(WRAP_UP_TEXT)
        assert reply.thinking[: -len(WRAP_UP_TEXT)].endswith("again.")  # it finished its sentence first
        assert len(reply.thinking) < len(LONG_THINKING)
        assert reply.answer == ANSWER and reply.status == "complete"
        assert app.history.messages(1)[-1].record["budget_hit"] is False  # asked for, not forced by the cap


async def test_copy_answer_and_final_answer(make_session):
    app = VibelocalApp(make_session())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+o")  # nothing yet: a warning, no crash
        await send(pilot, "6*7?")
        await wait_idle(pilot, app)
        await pilot.press("ctrl+o")
        assert app.clipboard == ANSWER
        await pilot.press("ctrl+g")
        assert app.clipboard == "42"


async def test_enter_sends_and_shift_enter_or_ctrl_j_add_lines(make_session):
    engine = ScriptedEngine(Script("", "ok"))
    app = VibelocalApp(make_session(engine))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a", "shift+enter", "b", "ctrl+j", "c")
        assert app.chat.query_one(PromptInput).text == "a\nb\nc"
        await pilot.press("enter")
        await wait_idle(pilot, app)
        assert app.chat.query_one(PromptInput).text == ""
        assert engine.turns[-1][-1].content == "a\nb\nc"


async def test_typing_while_it_generates_stays_in_the_input(make_session):
    engine = ScriptedEngine(Script(LONG_THINKING * 5, ANSWER), tokens_per_s=200)
    app = VibelocalApp(make_session(engine))
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "q")
        reply = app.chat.last_reply()
        await wait_for(pilot, lambda: reply.panel.tokens >= 5)
        await pilot.press(*"next one")
        assert app.chat.query_one(PromptInput).text == "next one"
        await pilot.press("enter")  # refused while answering: the text stays
        await pilot.pause()
        assert app.chat.query_one(PromptInput).text == "next one"
        assert app.chat.active is not None and len(engine.turns) == 1
        await pilot.press("escape")
        await wait_idle(pilot, app)


async def test_quit_mid_reply_keeps_what_streamed(make_session):
    engine = HeldEngine(Script(LONG_THINKING, ANSWER), tokens_per_s=300, hold_at=12)
    app = VibelocalApp(make_session(engine))
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "q")
        reply = app.chat.last_reply()
        await wait_for(pilot, lambda: reply.panel.tokens >= 10)
        await hold_press(pilot, engine, "ctrl+q")
    with History(get_paths().history_db) as history:
        user, stored = history.messages(1)
        assert user.content == "q"
        assert stored.status == "stopped" and stored.thinking and LONG_THINKING.startswith(stored.thinking)


async def test_an_engine_error_mid_reply_is_shown_and_stored(make_session):
    class Broken(ScriptedEngine):
        def stream(self, messages, settings, control=None):
            for event in super().stream(messages, settings, control):
                if event.kind == "answer":
                    raise RuntimeError("the GPU caught fire")
                yield event

    app = VibelocalApp(make_session(Broken(Script(THINKING, ANSWER))))
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "q")
        await wait_idle(pilot, app)
        reply = app.chat.last_reply()
        assert reply.status == "error" and "RuntimeError: the GPU caught fire" in str(reply.footer.render())
        stored = app.history.messages(1)[-1]
        assert (stored.status, stored.thinking, stored.content) == ("error", THINKING, "")
        assert stored.record == {"error": "RuntimeError: the GPU caught fire"}


def _record_toasts(app) -> list[str]:
    """Every toast the chat screen raises, in order (the screen's own notify still runs)."""
    toasts: list[str] = []
    notify = app.chat.notify

    def recording(message, *args, **kwargs):
        toasts.append(str(message))
        return notify(message, *args, **kwargs)

    app.chat.notify = recording
    return toasts


async def _thinking_with_toasts(pilot, app):
    toasts = _record_toasts(app)
    await send(pilot, "q")
    reply = app.chat.last_reply()
    await wait_for(pilot, lambda: reply.panel.tokens >= 5)
    return toasts, reply


async def test_extend_toast_only_when_the_budget_really_changed(make_session):
    engine = HeldEngine(Script(LONG_THINKING, ANSWER), tokens_per_s=300, hold_at=10)
    app = VibelocalApp(make_session(engine, budget="100"))
    async with app.run_test(size=SIZE) as pilot:
        toasts, reply = await _thinking_with_toasts(pilot, app)
        await hold_press(pilot, engine, "ctrl+b")
        await wait_for(pilot, lambda: any("+2,048 tokens: 2,148 now" in t for t in toasts))
        await wait_idle(pilot, app)
        assert [t for t in toasts if "Thinking budget" in t] == ["Thinking budget +2,048 tokens: 2,148 now."]


async def test_no_extend_toast_without_a_budget_or_once_answering(make_session):
    answering = len(pieces(LONG_THINKING)) + 5
    engine = HeldEngine(Script(LONG_THINKING, ANSWER * 20), tokens_per_s=300, hold_at=answering)
    app = VibelocalApp(make_session(engine, budget="unlimited"))
    async with app.run_test(size=SIZE) as pilot:
        toasts, reply = await _thinking_with_toasts(pilot, app)
        await pilot.press("ctrl+b")  # unlimited: the engine has nothing to extend, so it says nothing
        await wait_for(pilot, lambda: reply.has_answer and engine.held.is_set())
        await hold_press(pilot, engine, "ctrl+b")
        await wait_idle(pilot, app)
        assert not [t for t in toasts if "Thinking budget" in t]
        assert "Already answering: the thinking budget is spent." in toasts


async def test_the_meter_drops_its_eta_once_the_answer_starts(make_session):
    engine = HeldEngine(
        Script(LONG_THINKING, ANSWER * 20), tokens_per_s=300, hold_at=len(pieces(LONG_THINKING)) + 5
    )
    app = VibelocalApp(make_session(engine, budget="2k"))
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "q")
        reply = app.chat.last_reply()
        meter = app.chat.query_one(BudgetMeter)
        await wait_for(pilot, lambda: "ETA" in meter.line)  # thinking: the rate gives an ETA
        await wait_for(pilot, lambda: reply.has_answer and "answering" in meter.line)  # held mid-answer
        assert "ETA" not in meter.line and meter.line.startswith("Thought ")
        engine.release()
        await wait_idle(pilot, app)
        assert "ETA" not in meter.line


async def test_a_bare_close_tag_moves_the_answer_so_far_into_the_thinking(make_session):
    """A model that omits `<think>`: its reasoning streams as answer until `</think>`; then it moves."""
    reasoning = "Let me add the numbers first and check the sum twice. "

    class NoOpenTag(ScriptedEngine):
        def stream(self, messages, settings, control=None):
            for event in super().stream(messages, settings, control):
                if event.kind == "done":
                    yield StreamEvent("reclassify")
                    yield StreamEvent("status", text="the model closed a think block it never opened")
                    yield StreamEvent("answer", text="The answer is **42**.")
                yield event

    app = VibelocalApp(make_session(NoOpenTag(Script("", reasoning))))
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "q")
        await wait_idle(pilot, app)
        reply = app.chat.last_reply()
        assert reply.thinking == reasoning and reply.answer == "The answer is **42**."
        assert "Let me add" not in reply.markdown.source and "42" in reply.markdown.source
        assert reply.panel.display and reply.panel.text == reasoning
        stored = app.history.messages(1)[-1]
        assert (stored.thinking, stored.content) == (reasoning, "The answer is **42**.")


# --------------------------------------------------------------------------- habits: /budget, the sidebar key


async def test_a_budget_prefix_applies_to_that_message_only(make_session):
    app = VibelocalApp(make_session())
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "/budget 4k What is 6*7?")
        await wait_idle(pilot, app)
        await send(pilot, "and 7*8?")
        await wait_idle(pilot, app)
        stored = app.history.messages(app.chat.conversation_id)
    first, second = [msg for msg in stored if msg.role == "assistant"]
    assert (first.record["budget"]["label"], first.record["budget"]["thinking_tokens"]) == ("4k", 4096)
    assert second.record["budget"]["label"] == "medium"
    user = [msg.content for msg in stored if msg.role == "user"]
    assert user == ["What is 6*7?", "and 7*8?"]  # the prefix is not part of the message


async def test_a_bad_budget_prefix_is_refused_and_the_text_kept(make_session):
    app = VibelocalApp(make_session())
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "/budget lots hi")
        assert "lots" in app.chat.query_one(PromptInput).text
        assert app.history.conversations() == []


async def test_f9_hides_and_shows_the_sidebar_and_narrow_screens_start_without_it(make_session):
    app = VibelocalApp(make_session())
    async with app.run_test(size=SIZE) as pilot:
        sidebar = app.chat.query_one("#sidebar")
        assert sidebar.display
        await pilot.press("f9")
        assert not sidebar.display
        await pilot.press("f9")
        assert sidebar.display
    narrow = VibelocalApp(make_session())
    async with narrow.run_test(size=(90, 30)) as pilot:
        await pilot.pause()
        sidebar = narrow.chat.query_one("#sidebar")
        assert not sidebar.display
        await pilot.press("f9")
        assert sidebar.display
