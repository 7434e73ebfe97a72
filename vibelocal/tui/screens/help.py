"""The help screen: every key of the app, from one table."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS: list[tuple[str, str]] = [
    ("Enter", "send the message"),
    ("Shift+Enter, Ctrl+J", "new line in the message"),
    ("Esc", "stop generating (the partial answer is kept, marked stopped)"),
    ("Ctrl+B", "give the thinking budget 2k more tokens"),
    ("Ctrl+F", "finish thinking now and answer (wrap up)"),
    ("Ctrl+T", "show or hide the latest thinking"),
    ("Ctrl+O", "copy the latest answer"),
    ("Ctrl+G", "copy the final (boxed) answer"),
    ("F5", "regenerate the last reply (same budget)"),
    ("F6", "regenerate it with twice the budget"),
    ("Up (empty input)", "edit and resend the last message"),
    ("Ctrl+N", "new conversation"),
    ("Ctrl+R, F2", "rename the conversation"),
    ("F8", "delete the conversation"),
    ("Ctrl+S", "export the conversation as Markdown"),
    ("Tab / Shift+Tab", "move: input → conversation → sidebar"),
    ("F9", "hide or show the sidebar"),
    ("Enter (sidebar)", "open the highlighted conversation"),
    ("r / Delete (sidebar)", "rename / delete the highlighted conversation"),
    ("F3", "settings"),
    ("F4", "tutor mode (with the problem in the input)"),
    ("Ctrl+P", "command palette"),
    ("F1", "this help"),
    ("Ctrl+Q", "quit"),
]


def keys_table() -> Table:
    table = Table(box=None, show_header=False, padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    for key, what in KEYS:
        table.add_row(key, what)
    return table


class HelpScreen(ModalScreen[None]):
    """Lists the keys; any of Esc, q or F1 closes it."""

    BINDINGS = [Binding("escape,q,f1", "close", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog-box help-box"):
            yield Static("Keys", classes="dialog-title")
            yield Static(keys_table())
            yield Static("Esc closes this help.", classes="dim")

    def action_close(self) -> None:
        self.dismiss(None)
