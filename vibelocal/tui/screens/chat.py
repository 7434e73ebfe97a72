"""The chat screen: conversation sidebar, the replies, the budget meter, the input and the stats line."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Static

from vibelocal.config import BudgetSpec
from vibelocal.engine.control import TurnControl
from vibelocal.history import StoredMessage, reproducibility_record
from vibelocal.tui import messages as m
from vibelocal.tui import workers
from vibelocal.tui.widgets.meter import (
    BudgetMeter,
    StatsBar,
    budget_line,
    conversation_line,
    record_footer,
    stats_line,
)
from vibelocal.tui.widgets.prompt import PromptInput
from vibelocal.tui.widgets.reply import AssistantReply, UserMessage
from vibelocal.tui.widgets.sidebar import ConversationList
from vibelocal.types import EngineInfo, GenerationSettings, TurnStats

if TYPE_CHECKING:
    from vibelocal.tui.app import VibelocalApp

EXTEND_TOKENS = 2048
SAVE_INTERVAL_S = 1.0
"""A streaming reply is written to history at least this often (and whenever the answer starts)."""

_NOTES = {
    "warning": "budget almost spent",
    "wrap_up": "wrapping up",
    "extended": "budget extended",
    "forced_answer": "answer forced",
    "min_thinking": "thinking longer (minimum)",
}
_REASONS = {
    "budget_exhausted": "thinking budget spent",
    "context_full": "context full",
    "loop": "stopped a loop",
    "error": "engine error",
}


def extended_text(before: int | None, after: int | None) -> str:
    """The toast once the engine has extended the budget: by how much, and to what."""
    if before is not None and after is not None and after > before:
        return f"Thinking budget +{after - before:,} tokens: {after:,} now."
    return "Thinking budget extended."


@dataclass
class ActiveTurn:
    """What the screen tracks while a reply streams."""

    turn: int
    control: TurnControl
    reply: AssistantReply
    conversation_id: int
    message_id: int
    settings: GenerationSettings | None = None
    info: EngineInfo | None = None
    started: float = field(default_factory=time.monotonic)
    thinking_started: float | None = None
    tokens: int = 0
    budget: int | None = None
    note: str = ""
    last_save: float = field(default_factory=time.monotonic)
    stats: TurnStats | None = None
    budget_label: str | None = None
    """The budget this message asked for with `/budget`, when it did."""


class ChatScreen(Screen):
    """Chat with the loaded model. All inference runs in a thread worker; this screen only reacts to Messages."""

    BINDINGS = [
        Binding("escape", "stop", "Stop"),
        Binding("ctrl+b", "extend", "+2k budget"),
        Binding("ctrl+f", "wrap_up", "Wrap up"),
        Binding("ctrl+t", "toggle_thinking", "Thinking"),
        Binding("ctrl+o", "copy_answer", "Copy"),
        Binding("ctrl+g", "copy_final", "Copy final", show=False),
        Binding("ctrl+n", "new_chat", "New"),
        Binding("ctrl+r,f2", "rename", "Rename", show=False),
        Binding("f8", "delete", "Delete", show=False),
        Binding("ctrl+s", "export", "Export", show=False),
        Binding("f9", "toggle_sidebar", "Sidebar", show=False),
        Binding("f5", "regenerate", "Regenerate", show=False),
        # priority: over the input's own F6 (select the line), which the app does not document
        Binding("f6", "regenerate(True)", "Regenerate, bigger budget", show=False, priority=True),
    ]
    SIDEBAR_MIN_WIDTH = 100
    """Below this many columns the sidebar starts hidden (F9 shows it)."""

    app: VibelocalApp

    def __init__(self) -> None:
        super().__init__()
        self.conversation_id: int | None = None
        self.active: ActiveTurn | None = None
        self.model_label = "loading model…"
        self._turns = 0
        self._sidebar_chosen: bool | None = None  # what F9 last set; None: follow the width
        self.editing: int | None = None
        """The id of the user message being edited (Up in the empty input); sending replaces it and its reply."""
        self._conversation_line = ""  # the open conversation's totals, for the stats bar

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            with Vertical(id="sidebar"):
                yield Static("Conversations", classes="sidebar-title")
                yield ConversationList(id="conversations")
            with Vertical(id="chat"):
                yield VerticalScroll(id="log")
                yield BudgetMeter(id="meter")
                yield PromptInput(
                    id="prompt", placeholder="Ask a question. Enter sends, Shift+Enter adds a line."
                )
        yield StatsBar(id="stats")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#meter", BudgetMeter).display = False
        self.query_one("#log", VerticalScroll).anchor()
        self.refresh_sidebar()
        self.query_one(PromptInput).focus()
        self.show_stats()
        self.load_model()

    # ------------------------------------------------------------------ model

    @work(thread=True, exclusive=True, exit_on_error=False, group="engine")
    def load_model(self) -> None:
        workers.load_engine(self.app.session, self.app.engine_lock, self.post_message)

    def on_engine_ready(self, event: m.EngineReady) -> None:
        self.model_label = f"{event.label} on {event.info.device}"
        self.show_stats()

    def on_engine_failed(self, event: m.EngineFailed) -> None:
        self.model_label = "no model" if event.missing else "model failed to load"
        self.show_stats(event.error)
        if event.missing:
            self.app.open_setup()
        else:
            self.notify(event.error, title="Model", severity="error", timeout=10)

    def show_stats(self, detail: str = "") -> None:
        self.query_one(StatsBar).show(self.model_label, detail, self._conversation_line)

    def count_conversation(self) -> None:
        """Recount the open conversation's totals for the stats bar (after a switch or a finished reply)."""
        cid = self.conversation_id
        self._conversation_line = conversation_line(self.app.history.messages(cid)) if cid is not None else ""

    # ------------------------------------------------------------------ conversations

    @property
    def transcript(self) -> VerticalScroll:
        return self.query_one("#log", VerticalScroll)

    def refresh_sidebar(self) -> None:
        self.query_one(ConversationList).show(self.app.history.conversations(), self.conversation_id)

    def reply_for(self, stored: StoredMessage) -> AssistantReply:
        return AssistantReply(
            thinking=stored.thinking,
            answer=stored.content,
            thinking_tokens=int(stored.record.get("thinking_tokens") or 0),
            status=stored.status if stored.status != "streaming" else "interrupted",
            footer=record_footer(stored.record),
            show_thinking=self.app.session.settings.show_thinking,
        )

    async def open_conversation(self, conversation_id: int | None) -> None:
        """Show a stored conversation (None: a fresh, empty one)."""
        if self.active is not None:
            self.notify("A reply is still streaming: press Esc to stop it first.", severity="warning")
            return
        self.conversation_id = conversation_id
        self.editing = None
        await self.transcript.remove_children()
        if conversation_id is not None:
            widgets = [
                UserMessage(s.content) if s.role != "assistant" else self.reply_for(s)
                for s in self.app.history.messages(conversation_id)
            ]
            await self.transcript.mount_all(widgets)
            self.transcript.scroll_end(animate=False)
        self.count_conversation()
        self.show_stats()
        self.refresh_sidebar()
        self.query_one(PromptInput).focus()

    @on(ConversationList.Chosen)
    async def _chosen(self, event: ConversationList.Chosen) -> None:
        if type(event) is ConversationList.Chosen:
            await self.open_conversation(event.conversation_id)

    @on(ConversationList.RenameRequested)
    def _rename_requested(self, event: ConversationList.RenameRequested) -> None:
        self.rename(event.conversation_id)

    @on(ConversationList.DeleteRequested)
    def _delete_requested(self, event: ConversationList.DeleteRequested) -> None:
        self.delete(event.conversation_id)

    async def action_new_chat(self) -> None:
        await self.open_conversation(None)

    def action_rename(self) -> None:
        if self.conversation_id is None:
            self.notify("Nothing to rename yet: send a message first.", severity="warning")
            return
        self.rename(self.conversation_id)

    def rename(self, conversation_id: int) -> None:
        from vibelocal.tui.screens.dialogs import TextPrompt

        conv = self.app.history.conversation(conversation_id)
        if conv is None:
            return

        def done(title: str | None) -> None:
            if title is not None and title.strip():
                self.app.history.rename(conversation_id, title)
                self.refresh_sidebar()

        self.app.push_screen(TextPrompt("Rename conversation", conv.title), done)

    def action_delete(self) -> None:
        if self.conversation_id is not None:
            self.delete(self.conversation_id)

    def delete(self, conversation_id: int) -> None:
        from vibelocal.tui.screens.dialogs import Confirm

        conv = self.app.history.conversation(conversation_id)
        if conv is None:
            return
        if self.active is not None and self.active.conversation_id == conversation_id:
            self.notify("Stop the reply first (Esc).", severity="warning")
            return

        async def done(yes: bool | None) -> None:
            if not yes:
                return
            self.app.history.delete(conversation_id)
            if conversation_id == self.conversation_id:
                await self.open_conversation(None)
            else:
                self.refresh_sidebar()
            self.notify(f"Deleted “{conv.title}”.")

        self.app.push_screen(Confirm(f"Delete “{conv.title}” and all its messages?"), done)

    def action_export(self) -> None:
        from vibelocal.history import conversation_markdown
        from vibelocal.tui.screens.dialogs import TextPrompt

        if self.conversation_id is None:
            self.notify("Nothing to export yet.", severity="warning")
            return
        conv = self.app.history.conversation(self.conversation_id)
        assert conv is not None
        default = Path.cwd() / f"{_slug(conv.title)}.md"

        def done(target: str | None) -> None:
            if not target:
                return
            path = Path(target).expanduser()
            try:
                path.write_text(
                    conversation_markdown(conv, self.app.history.messages(conv.id)), encoding="utf-8"
                )
            except OSError as exc:
                self.notify(f"Cannot write {path}: {exc.strerror or exc}", severity="error")
                return
            self.notify(f"Exported to {path}")

        self.app.push_screen(TextPrompt("Export as Markdown to", str(default)), done)

    # ------------------------------------------------------------------ sending

    def last_reply(self) -> AssistantReply | None:
        replies = self.transcript.query(AssistantReply)
        return replies.last() if replies else None

    async def on_prompt_input_submitted(self, event: PromptInput.Submitted) -> None:
        await self.send(event.text)

    def on_resize(self, event: events.Resize) -> None:
        if self._sidebar_chosen is None:
            self.query_one("#sidebar").display = event.size.width >= self.SIDEBAR_MIN_WIDTH

    @property
    def focus_chain(self) -> list[Widget]:
        """Tab goes input → conversation → sidebar (the DOM has the sidebar first); anything else after."""

        def rank(widget: Widget) -> int:
            for place, area in enumerate(("prompt", "log", "sidebar")):
                if any(node.id == area for node in widget.ancestors_with_self):
                    return place
            return 3

        return sorted(super().focus_chain, key=rank)

    def action_toggle_sidebar(self) -> None:
        sidebar = self.query_one("#sidebar")
        sidebar.display = self._sidebar_chosen = not sidebar.display
        if not sidebar.display and sidebar.has_focus_within:
            self.query_one(PromptInput).focus()

    async def send(self, text: str) -> None:
        from vibelocal.tui.commands import split_budget_prefix

        prompt = self.query_one(PromptInput)
        if self.active is not None:
            self.notify("Still answering: wait, or press Esc to stop.", severity="warning")
            return
        try:
            budget, text = split_budget_prefix(text)
        except ValueError as exc:
            self.notify(str(exc), severity="error")
            return
        if not text:
            self.notify("Write the message after /budget, e.g. /budget 4k What is 6*7?", severity="warning")
            return
        prompt.clear()
        history = self.app.history
        if self.editing is not None and self.conversation_id is not None:
            editing, self.editing = self.editing, None
            try:
                reply_id = history.redo_turn(self.conversation_id, editing, text=text)
            except ValueError:  # another window on this history added a message meanwhile
                prompt.load_text(text)
                self.notify("That message is no longer the last one: nothing was replaced.", severity="error")
                return
            await self._trim_transcript(keep_last_user=False)
            await self.transcript.mount(UserMessage(text))
            await self._stream_reply(reply_id, budget)
            return
        if self.conversation_id is None:
            self.conversation_id = history.new_conversation().id
        history.add_message(self.conversation_id, "user", text)  # committed before anything can fail
        await self.transcript.mount(UserMessage(text))
        await self._stream_reply(history.start_reply(self.conversation_id), budget)

    async def _stream_reply(self, message_id: int, budget: BudgetSpec | None) -> None:
        """Show an empty reply for the stored `streaming` message `message_id` and start generating it."""
        assert self.conversation_id is not None
        reply = AssistantReply(show_thinking=self.app.session.settings.show_thinking)
        await self.transcript.mount(reply)
        self.transcript.scroll_end(animate=False)
        self._turns += 1
        self.active = ActiveTurn(
            turn=self._turns,
            control=TurnControl(),
            reply=reply,
            conversation_id=self.conversation_id,
            message_id=message_id,
            budget_label=budget.label if budget is not None else None,
        )
        self.refresh_sidebar()
        meter = self.query_one(BudgetMeter)
        meter.line = "Thinking…"
        meter.display = True
        chat = self.app.history.chat_messages(self.conversation_id)
        self.generate(self.active.turn, chat, self.active.control, budget)

    # ------------------------------------------------------------------ regenerate, edit and resend

    def _last_user_message(self, doing: str) -> StoredMessage | None:
        """The open conversation's last user message, when `doing` (e.g. "regenerate") may start now;
        otherwise None, after a note that says why."""
        if self.active is not None:
            self.notify(
                f"A reply is streaming: stop the reply first (Esc), then {doing}.", severity="warning"
            )
            return None
        stored = self.app.history.messages(self.conversation_id) if self.conversation_id is not None else []
        users = [msg for msg in stored if msg.role == "user"]
        if not users:
            self.notify(f"Nothing to {doing} yet: send a message first.", severity="warning")
            return None
        return users[-1]

    async def _trim_transcript(self, *, keep_last_user: bool) -> None:
        """Remove the shown last turn: everything after the last user message, and that message unless kept."""
        shown = list(self.transcript.children)
        last = max((i for i, w in enumerate(shown) if isinstance(w, UserMessage)), default=len(shown))
        await self.transcript.remove_children(shown[last + 1 if keep_last_user else last :])

    async def action_regenerate(self, bigger: bool = False) -> None:
        """Replace the last reply by a new one to the same message: same budget, or twice it (F6)."""
        from vibelocal.tui import redo

        user = self._last_user_message("regenerate")
        if user is None or self.conversation_id is None:
            return
        self.editing = None
        old = self.app.history.messages(self.conversation_id)[-1]
        budget = redo.budget_of(old.record if old.role == "assistant" else {}, self.app.session.budget())
        if bigger:
            budget = redo.bigger(budget)
            self.notify(f"Regenerating with a thinking budget of {budget.label}.", timeout=3)
        reply_id = self.app.history.redo_turn(self.conversation_id, user.id)
        await self._trim_transcript(keep_last_user=True)
        await self._stream_reply(reply_id, budget)

    def action_edit_last(self) -> None:
        """Put the last user message back in the input; sending it replaces the message and its reply."""
        user = self._last_user_message("edit")
        if user is None:
            return
        prompt = self.query_one(PromptInput)
        prompt.load_text(user.content)
        prompt.move_cursor(prompt.document.end)
        prompt.focus()
        self.editing = user.id
        self.notify(
            "Editing your last message: Enter resends it and replaces its reply, Esc cancels.", timeout=4
        )

    def on_prompt_input_edit_last(self, event: PromptInput.EditLast) -> None:
        self.action_edit_last()

    @work(thread=True, exclusive=True, exit_on_error=False, group="turn")
    def generate(self, turn: int, chat: list, control: TurnControl, budget: Any = None) -> None:
        workers.stream_turn(
            self.app.session, self.app.engine_lock, chat, control, turn, self.post_message,
            budget=budget or self.app.session.budget(),
        )  # fmt: skip

    def _current(self, event: m.TurnMessage) -> ActiveTurn | None:
        return self.active if self.active is not None and self.active.turn == event.turn else None

    def _update_meter(self, turn: ActiveTurn) -> None:
        now = time.monotonic()
        elapsed = now - turn.thinking_started if turn.thinking_started else 0.0
        rate = turn.tokens / elapsed if elapsed > 0.5 and turn.tokens else None
        time_budget = turn.settings.thinking_time_s if turn.settings else None
        self.query_one(BudgetMeter).line = budget_line(
            turn.tokens, turn.budget, rate, time_budget_s=time_budget, elapsed_s=elapsed, note=turn.note,
            answering=turn.reply.has_answer,
        )  # fmt: skip

    def _save_progress(self, turn: ActiveTurn, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - turn.last_save >= SAVE_INTERVAL_S:
            turn.last_save = now
            self.app.history.save_reply(
                turn.message_id, thinking=turn.reply.thinking, content=turn.reply.answer
            )

    def on_turn_began(self, event: m.TurnBegan) -> None:
        if turn := self._current(event):
            turn.settings, turn.info = event.settings, event.info
            turn.budget = event.settings.max_thinking_tokens
            self._update_meter(turn)

    def on_thinking_delta(self, event: m.ThinkingDelta) -> None:
        if turn := self._current(event):
            if turn.thinking_started is None:
                turn.thinking_started = time.monotonic()
            turn.tokens, turn.budget = event.tokens, event.budget if event.budget is not None else turn.budget
            turn.reply.add_thinking(event.text, event.tokens)
            self._update_meter(turn)
            self._save_progress(turn)

    async def on_answer_delta(self, event: m.AnswerDelta) -> None:
        if turn := self._current(event):
            first = not turn.reply.has_answer
            await turn.reply.add_answer(event.text)
            if first:
                turn.note = "answering"
                self._update_meter(turn)
            self._save_progress(turn, force=first)

    async def on_answer_reclassified(self, event: m.AnswerReclassified) -> None:
        if turn := self._current(event):
            await turn.reply.reclassify_answer(event.tokens)
            turn.tokens = event.tokens
            self._update_meter(turn)
            self._save_progress(turn, force=True)

    def on_budget_note(self, event: m.BudgetNote) -> None:
        if turn := self._current(event):
            if event.note == "extended":  # the engine took the extension: only now is there news to tell
                self.notify(extended_text(turn.budget, event.budget), timeout=2)
            turn.tokens, turn.budget = max(turn.tokens, event.tokens), event.budget
            turn.note = _NOTES.get(event.note, event.note)
            if turn.reply.panel is not None:
                turn.reply.panel.set_tokens(turn.tokens)
            self._update_meter(turn)

    def on_turn_notice(self, event: m.TurnNotice) -> None:
        if self._current(event) and event.text:
            self.notify(event.text, title="Model", timeout=4)

    def on_turn_stats_update(self, event: m.TurnStatsUpdate) -> None:
        if turn := self._current(event):
            turn.stats = event.stats
            self.show_stats(stats_line(event.stats, turn.info, live=True))

    async def on_turn_finished(self, event: m.TurnFinished) -> None:
        turn = self._current(event)
        if turn is None:
            return
        status = "stopped" if event.stop_reason == "cancelled" else "complete"
        if event.stop_reason == "error":
            status = "error"
        line = stats_line(event.stats, turn.info)
        if event.stats is not None and turn.reply.panel is not None:
            turn.reply.panel.set_tokens(event.stats.thinking_tokens)
        reason = _REASONS.get(event.stop_reason, "")
        await turn.reply.finish(
            status, " · ".join(p for p in (reason, line) if p), truncated_thinking=event.truncated_thinking
        )
        record = None
        if turn.info is not None and turn.settings is not None:
            model = self.app.session.model
            record = reproducibility_record(
                turn.info,
                turn.settings,
                event.stats,
                budget_label=turn.budget_label or self.app.session.budget().label,
                sha256=model.sha256 if model else None,
                stop_reason=event.stop_reason,
            )
        self.app.history.finish_reply(
            turn.message_id,
            thinking=turn.reply.thinking,
            content=turn.reply.answer,
            status=status,  # type: ignore[arg-type]
            stop_reason=event.stop_reason,
            record=record,
        )
        self._end_turn(line)

    async def on_turn_failed(self, event: m.TurnFailed) -> None:
        turn = self._current(event)
        if turn is None:
            return
        await turn.reply.finish("error", event.error)
        self.app.history.finish_reply(
            turn.message_id, thinking=turn.reply.thinking, content=turn.reply.answer, status="error",
            stop_reason="error", record={"error": event.error},
        )  # fmt: skip
        self.notify(event.error, title="Generation failed", severity="error", timeout=10)
        self._end_turn(event.error)

    def _end_turn(self, detail: str) -> None:
        self.active = None
        self.query_one(BudgetMeter).display = False
        self.count_conversation()
        self.show_stats(detail)
        self.refresh_sidebar()

    def abandon_turn(self) -> None:
        """The app is closing mid-reply: stop the engine and keep what streamed so far, marked stopped."""
        turn = self.active
        if turn is None:
            return
        turn.control.cancel()
        self.app.history.finish_reply(
            turn.message_id, thinking=turn.reply.thinking, content=turn.reply.answer, status="stopped",
            stop_reason="cancelled",
        )  # fmt: skip
        self.active = None

    # ------------------------------------------------------------------ steering and copying

    def action_stop(self) -> None:
        if self.active is None and self.editing is not None:
            self.editing = None
            self.query_one(PromptInput).clear()
            self.notify("Edit cancelled: the message and its reply are kept.", timeout=2)
        if self.active is not None and not self.active.control.cancelled:
            self.active.control.cancel()
            self.active.note = "stopping…"
            self._update_meter(self.active)

    def action_extend(self) -> None:
        if self.active is None:
            self.notify("Nothing is thinking right now.", severity="warning")
            return
        if self.active.reply.has_answer:
            self.notify("Already answering: the thinking budget is spent.", severity="warning", timeout=2)
            return
        self.active.control.extend(EXTEND_TOKENS)  # the toast comes with the engine's `extended` note

    def action_wrap_up(self) -> None:
        if self.active is None:
            self.notify("Nothing is thinking right now.", severity="warning")
            return
        self.active.control.wrap_up()
        self.active.note = "wrapping up…"
        self._update_meter(self.active)

    def action_toggle_thinking(self) -> None:
        reply = self.last_reply()
        if reply is None or not reply.toggle_thinking():
            self.notify("No thinking to show.", severity="warning", timeout=2)

    def action_copy_answer(self) -> None:
        reply = self.last_reply()
        if reply is None or not reply.answer.strip():
            self.notify("No answer to copy yet.", severity="warning")
            return
        self.app.copy_to_clipboard(reply.answer.strip())
        self.notify("Answer copied to the clipboard.", timeout=2)

    def action_copy_final(self) -> None:
        reply = self.last_reply()
        final = self.app.final_answer(reply.answer) if reply is not None else None
        if not final:
            self.notify("No final answer found in the latest reply.", severity="warning")
            return
        self.app.copy_to_clipboard(final)
        self.notify(f"Copied: {final}", timeout=3)


def _slug(title: str) -> str:
    keep = "".join(c if c.isalnum() else "-" for c in title.lower())
    return "-".join(p for p in keep.split("-") if p)[:48] or "conversation"
