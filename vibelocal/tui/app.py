"""The Textual app: owns the session and the history, routes to the chat, setup, settings, help and tutor screens."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from vibelocal.config import Settings
from vibelocal.history import History, open_history
from vibelocal.session import Session
from vibelocal.tui.screens.chat import ChatScreen


class VibelocalApp(App[None]):
    """Chat with a local reasoning model. Inject a Session (tests give it a scripted engine loader)."""

    CSS_PATH = "app.tcss"
    TITLE = "vibelocal"
    BINDINGS = [
        Binding("f1", "help", "Help"),
        Binding("f3", "settings", "Settings"),
        Binding("f4", "tutor", "Tutor"),
    ]

    def __init__(self, session: Session, *, history: History | None = None) -> None:
        super().__init__()
        self.session = session
        self.history_set_aside: Path | None = None
        """Where an unreadable history.sqlite3 was moved at start-up (a fresh one was started)."""
        if history is None:
            history, self.history_set_aside = open_history(session.paths.history_db)
            self._owns_history = True
        else:
            self._owns_history = False
        self.history = history
        self.engine_lock = threading.Lock()
        """Serialises model loading and turns: a turn worker holds it until its reply ends, so a model switch
        asked for mid-reply waits for the reply (the session refuses one under a running turn)."""

    def on_mount(self) -> None:
        if self.history_set_aside is not None:
            self.notify(
                f"The chat history could not be read; it was set aside as {self.history_set_aside} "
                "and a new one started.",
                severity="warning",
                timeout=15,
            )

    def get_default_screen(self) -> Screen:
        return ChatScreen()

    def action_screenshot(self, filename: str | None = None, path: str | None = None) -> None:
        """The palette's Screenshot: an SVG saved into a folder that exists; the notice says where."""
        folder = Path(path) if path else screenshot_dir(self.session.paths.data_dir)
        folder.mkdir(parents=True, exist_ok=True)
        self.deliver_screenshot(filename, str(folder))

    @property
    def chat(self) -> ChatScreen:
        screen = self.screen_stack[0]
        assert isinstance(screen, ChatScreen)
        return screen

    # ------------------------------------------------------------------ screens

    def open_setup(self) -> None:
        from vibelocal.tui.screens.setup import SetupScreen

        if any(isinstance(s, SetupScreen) for s in self.screen_stack):
            return

        def done(installed: bool | None) -> None:
            if installed:
                self.chat.model_label = "loading model…"
                self.chat.show_stats()
                self.chat.load_model()

        self.push_screen(SetupScreen(), done)

    def action_help(self) -> None:
        from vibelocal.tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_settings(self) -> None:
        from vibelocal.tui.screens.settings import SettingsScreen

        if not isinstance(self.screen, SettingsScreen):
            self.push_screen(SettingsScreen(), self.apply_settings)

    def apply_settings(self, changes: dict[str, Any] | None) -> None:
        """Use saved settings from the next turn on; a new model is loaded at once."""
        if not changes:
            return
        self.session.settings = Settings.model_validate({**self.session.settings.model_dump(), **changes})
        self.notify("Settings saved.", timeout=2)
        if "model" in changes:
            if self.chat.active is not None:  # the load waits for the engine lock, held until the reply ends
                self.notify("The new model loads when this reply ends (Esc stops it now).", timeout=5)
            self.chat.model_label = "loading model…"
            self.chat.show_stats()
            self.chat.load_model()

    def action_tutor(self) -> None:
        """Open tutor mode on the problem typed in the input (or let the tutor ask for one)."""
        from vibelocal.tui.screens.tutor import TutorScreen
        from vibelocal.tui.widgets.prompt import PromptInput

        problem = self.chat.query_one(PromptInput).text.strip() or None
        self.push_screen(TutorScreen(self.session, problem))

    # ------------------------------------------------------------------ helpers for screens

    def final_answer(self, text: str) -> str | None:
        """The final answer of a reply (the last `\\boxed{}` or equivalent), via vibelocal.answers.extract."""
        if not text.strip():
            return None
        from vibelocal.answers.extract import extract_final_answer

        found = extract_final_answer(text)
        if found is None:
            return None
        return str(getattr(found, "text", found)).strip() or None

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        chat = self.chat
        yield SystemCommand("New conversation", "Start an empty conversation", chat.action_new_chat)
        yield SystemCommand("Rename conversation", "Rename the open conversation", chat.action_rename)
        yield SystemCommand("Delete conversation", "Delete the open conversation", chat.action_delete)
        yield SystemCommand("Export as Markdown", "Write the conversation to a .md file", chat.action_export)
        yield SystemCommand(
            "Regenerate", "Replace the last reply with a new one, same budget", chat.action_regenerate
        )
        yield SystemCommand(
            "Regenerate with a bigger budget",
            "Replace the last reply with a new one, twice the thinking budget",
            lambda: chat.action_regenerate(bigger=True),
        )
        yield SystemCommand(
            "Edit last message", "Put your last message back in the input", chat.action_edit_last
        )
        yield SystemCommand("Copy answer", "Copy the latest answer", chat.action_copy_answer)
        yield SystemCommand("Copy final answer", "Copy the latest boxed answer", chat.action_copy_final)
        yield SystemCommand(
            "Show/hide thinking", "Toggle the latest thinking panel", chat.action_toggle_thinking
        )
        yield SystemCommand("Settings", "Budget, temperature, model, thinking display", self.action_settings)
        yield SystemCommand("Tutor mode", "Work through a problem step by step", self.action_tutor)
        yield SystemCommand("Keys", "Every key of the app", self.action_help)

    # ------------------------------------------------------------------ shutdown

    async def action_quit(self) -> None:
        self.chat.abandon_turn()
        self.exit()

    def on_unmount(self) -> None:
        if self.screen_stack and isinstance(self.screen_stack[0], ChatScreen):
            self.chat.abandon_turn()
        if self._owns_history:
            self.history.close()


def screenshot_dir(data_dir: Path) -> Path:
    """~/Downloads when it exists (Textual's choice, which fails when it does not), else the data dir's folder."""
    downloads = Path.home() / "Downloads"
    return downloads if downloads.is_dir() else data_dir / "screenshots"
