"""The chat app's Tutor mode: the model solves privately, the student types answers, asks for hints, sees the solution.

The screen only reacts to Messages: the private solve, each hint and each answer check run in thread workers that
drive `vibelocal.tutor.lesson.Tutor` (which saves the session after every step, so `vibelocal tutor --resume` continues it).
"""

from __future__ import annotations

import threading
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Static

from vibelocal.answers.latex import to_unicode
from vibelocal.engine.control import TurnControl
from vibelocal.tui.wording import in_app_error
from vibelocal.tutor.lesson import HINT_LEVELS, Tutor
from vibelocal.tutor.store import AttemptRecord, HintRecord

HINT_WORDS = {"hint", "h", "?"}
SOLUTION_WORDS = {"solution", "show solution", "reveal"}


class TutorStatus(Message):
    """Progress of a hidden model turn (token count only: the text stays hidden)."""

    def __init__(self, label: str, tokens: int) -> None:
        super().__init__()
        self.label, self.tokens = label, tokens


class TutorReady(Message):
    """The private solve finished; attempts can be checked."""


class TutorVerdict(Message):
    def __init__(self, attempt: AttemptRecord) -> None:
        super().__init__()
        self.attempt = attempt


class TutorHint(Message):
    def __init__(self, hint: HintRecord) -> None:
        super().__init__()
        self.hint = hint


class TutorFailed(Message):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class TutorScreen(Screen):
    """Work one problem. `problem_text` may carry front matter (`answer: ...`); None asks for a problem first."""

    DEFAULT_CSS = """
    TutorScreen { layout: vertical; }
    #tutor-problem { padding: 1 2; border: round $primary; height: auto; max-height: 12; }
    #tutor-log { height: 1fr; padding: 0 2; }
    #tutor-log > .tutor-entry { margin: 1 0 0 0; }
    #tutor-log > .verdict-correct { color: $success; text-style: bold; }
    #tutor-log > .verdict-wrong { color: $warning; }
    #tutor-log > .tutor-hint { color: $accent; }
    #tutor-log > .tutor-note { color: $text-muted; text-style: italic; }
    #tutor-status { height: 1; padding: 0 2; color: $text-muted; }
    #tutor-buttons { height: auto; padding: 0 2; }
    #tutor-buttons > Button { margin-right: 1; }
    """

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("f2", "hint", "Hint"),
        Binding("f5", "solution", "Show solution"),
    ]

    def __init__(self, session: Any, problem_text: str | None = None) -> None:
        super().__init__()
        self.session = session
        self.problem_text = problem_text.strip() if problem_text and problem_text.strip() else None
        self.tutor: Tutor | None = None
        self.busy = False
        self.control = TurnControl()
        self._lock: threading.Lock = threading.Lock()

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Static("Tutor mode", id="tutor-problem")
        yield VerticalScroll(id="tutor-log")
        yield Static("", id="tutor-status")
        yield Input(id="tutor-input")
        with Horizontal(id="tutor-buttons"):
            yield Button("Hint (F2)", id="tutor-hint-button")
            yield Button("Show solution (F5)", id="tutor-solution-button")
            yield Button("Back (Esc)", id="tutor-back-button")
        yield Footer()

    def on_mount(self) -> None:
        self._lock = getattr(self.app, "engine_lock", None) or self._lock
        chat = getattr(self.app, "chat", None)
        if chat is not None and getattr(chat, "active", None) is not None:
            chat.abandon_turn()  # one model, one turn at a time
        if self.problem_text:
            self.begin(self.problem_text)
        else:
            self.input.placeholder = "Type or paste a problem and press Enter"
            self.status("No problem yet.")
        self.input.focus()

    @property
    def input(self) -> Input:
        return self.query_one("#tutor-input", Input)

    def status(self, text: str) -> None:
        self.query_one("#tutor-status", Static).update(text)

    def note(self, text: str, kind: str = "tutor-note") -> Static:
        entry = Static(text, classes=f"tutor-entry {kind}", markup=False)
        log = self.query_one("#tutor-log", VerticalScroll)
        log.mount(entry)
        log.scroll_end(animate=False)
        return entry

    def entries(self) -> list[str]:
        """The text of every log entry (for tests and copy)."""
        return [str(w.render()) for w in self.query(".tutor-entry").results(Static)]

    # ------------------------------------------------------------------ starting

    def begin(self, text: str) -> None:
        from vibelocal.problem import Problem, split_front_matter

        meta, body = split_front_matter(text)
        body = body.strip()
        self.problem_text = body
        self.query_one("#tutor-problem", Static).update(body)
        self.tutor = Tutor.start(self.session, Problem(body, "math", meta, "chat"))
        self.tutor.save()
        self.input.placeholder = "Your answer (or: hint, solution)"
        self.busy = True
        self.status("The model is solving the problem privately…")
        self.solve()

    @work(thread=True, exclusive=True, exit_on_error=False, group="tutor")
    def solve(self) -> None:
        tutor = self.tutor
        assert tutor is not None
        try:
            with self._lock:
                self.session.engine()
            tutor.solve(control=self.control, on_progress=self._progress("Solving privately"))
            self.post_message(TutorReady())
        except Exception as exc:  # a worker reports, never dies silently
            self.post_message(TutorFailed(in_app_error(exc)))

    def _progress(self, label: str):
        def report(tokens: int) -> None:
            if tokens % 16 == 0:
                self.post_message(TutorStatus(label, tokens))

        return report

    # ------------------------------------------------------------------ messages from workers

    def on_tutor_status(self, event: TutorStatus) -> None:
        if self.busy:
            self.status(f"{event.label}… {event.tokens} tokens (hidden)")

    def on_tutor_ready(self, event: TutorReady) -> None:
        self.busy = False
        tutor = self.tutor
        assert tutor is not None
        if tutor.key_unchecked:
            self.note("The reference answer is the model's own; it was not checked by a person.")
        self.note("Type your answer. Ask for a hint (F2) whenever you are stuck.")
        self.status(self._counts())

    def on_tutor_failed(self, event: TutorFailed) -> None:
        self.busy = False
        self.note(f"Error: {event.text}", "verdict-wrong")
        self.status("The tutor stopped.")

    def on_tutor_verdict(self, event: TutorVerdict) -> None:
        self.busy = False
        a = event.attempt
        if a.correct:
            self.note(f"{a.text}: correct! Press F5 for the worked solution.", "verdict-correct")
        else:
            extra = f" ({a.error})" if a.error else ""
            self.note(f"{a.text}: not yet.{extra} Try again, or ask for a hint.", "verdict-wrong")
        self.status(self._counts())

    def on_tutor_hint(self, event: TutorHint) -> None:
        self.busy = False
        h = event.hint
        title = HINT_LEVELS[min(h.level, len(HINT_LEVELS)) - 1][0]
        self.note(f"Hint {h.level} ({title.lower()}): {to_unicode(h.text)}", "tutor-hint")
        self.status(self._counts())

    def _counts(self) -> str:
        tutor = self.tutor
        if tutor is None:
            return ""
        r = tutor.record
        return f"{len(r.attempts)} attempts · {len(r.hints)} hints · {r.outcome} · session {r.id}"

    # ------------------------------------------------------------------ the student's actions

    @on(Input.Submitted, "#tutor-input")
    def submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            return
        word = text.lower()
        if self.tutor is None:
            self.input.value = ""
            self.begin(text)
            return
        if word in HINT_WORDS:
            self.input.value = ""
            self.action_hint()
            return
        if word in SOLUTION_WORDS:
            self.input.value = ""
            self.action_solution()
            return
        if self.busy:
            self.app.bell()
            return
        self.input.value = ""
        self.busy = True
        self.status("Checking…")
        self.check_attempt(text)

    @work(thread=True, exclusive=True, exit_on_error=False, group="tutor")
    def check_attempt(self, text: str) -> None:
        assert self.tutor is not None
        try:
            self.post_message(TutorVerdict(self.tutor.attempt(text)))
        except Exception as exc:
            self.post_message(TutorFailed(in_app_error(exc)))

    def action_hint(self) -> None:
        if self.tutor is None or self.busy:
            self.app.bell()
            return
        self.busy = True
        self.status("Writing a hint…")
        self.make_hint()

    @work(thread=True, exclusive=True, exit_on_error=False, group="tutor")
    def make_hint(self) -> None:
        assert self.tutor is not None
        try:
            self.post_message(
                TutorHint(self.tutor.hint(control=self.control, on_progress=self._progress("Writing a hint")))
            )
        except Exception as exc:
            self.post_message(TutorFailed(in_app_error(exc)))

    def action_solution(self) -> None:
        if self.tutor is None or self.busy or self.tutor.record.key is None:
            self.app.bell()
            return
        self.note("Worked solution:\n" + to_unicode(self.tutor.reveal()), "tutor-solution")
        self.status(self._counts())

    def action_back(self) -> None:
        self.control.cancel()  # the session is already saved after every step
        self.app.pop_screen()

    @on(Button.Pressed, "#tutor-hint-button")
    def _hint_pressed(self) -> None:
        self.action_hint()

    @on(Button.Pressed, "#tutor-solution-button")
    def _solution_pressed(self) -> None:
        self.action_solution()

    @on(Button.Pressed, "#tutor-back-button")
    def _back_pressed(self) -> None:
        self.action_back()
