"""The thinking panel: a collapsible block above the answer with a live tail and a token counter."""

from __future__ import annotations

import time

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Collapsible

from vibelocal.answers.extract import TextPieces

TAIL_LINES = 6
"""Lines of the live tail shown while the model thinks."""

TAIL_CHARS = 8192
"""While live the body holds only this much of the end of the text (enough for the tail at any width)."""

TITLE_INTERVAL_S = 1.0
"""The live token counter in the title is redrawn at most this often (a title change costs a layout pass of the
screen; the budget meter under the prompt counts the tokens live)."""


def thinking_title(tokens: int, *, live: bool, truncated: bool = False) -> str:
    """The panel's title: a running counter while thinking, a summary once the answer starts."""
    count = f"{tokens:,} token{'s' if tokens != 1 else ''}"
    if live:
        return f"Thinking… {count}"
    if tokens == 0:
        return "Thinking"  # a stored reply without a count
    return f"Thought for {count}" + (" (cut off)" if truncated else "")


class ThinkingBody(Widget):
    """The thinking text: only its last few wrapped lines while live, all of it once the panel is re-opened.

    While live the body has a fixed height, so new text repaints it without a layout pass over the screen.
    """

    text: reactive[str] = reactive("")
    live: reactive[bool] = reactive(True, layout=True)

    def watch_live(self, live: bool) -> None:
        self.styles.height = TAIL_LINES if live else "auto"
        self.refresh(layout=True)

    def render(self) -> Text:
        if not self.live:
            return Text(self.text.strip("\n"), end="")
        width = max(self.size.width, 20)
        tail = self.text[-width * TAIL_LINES * 2 :].strip("\n")
        lines = Text(tail).wrap(self.app.console, width)
        return Text("\n", end="").join(lines[-TAIL_LINES:])


class ThinkingPanel(Collapsible):
    """Holds one reply's thinking. Text arrives in batches through `append`; `finish` collapses it."""

    def __init__(self, text: str = "", *, tokens: int = 0, live: bool = True, expanded: bool = True) -> None:
        self._body = ThinkingBody(classes="thinking-body")
        super().__init__(self._body, title=thinking_title(tokens, live=live), collapsed=not expanded)
        self._text = TextPieces(text)
        self.tokens = tokens
        self.is_live = live
        self._title_at = 0.0
        self.add_class("-live" if live else "-done")

    def on_mount(self) -> None:
        self._body.live = self.is_live
        self._body.text = self.text if not self.is_live else self.text[-TAIL_CHARS:]

    @property
    def text(self) -> str:
        return self._text.text()

    def append(self, text: str, tokens: int) -> None:
        self._text.append(text)
        self.tokens = tokens
        self._body.text = (self._body.text + text)[-TAIL_CHARS:]  # bounded: constant cost per batch
        now = time.monotonic()
        if now - self._title_at >= TITLE_INTERVAL_S:
            self._title_at = now
            self.title = thinking_title(tokens, live=True)

    def set_tokens(self, tokens: int) -> None:
        self.tokens = tokens
        self.title = thinking_title(tokens, live=self.is_live)

    def finish(self, *, truncated: bool = False) -> None:
        """The answer started (or the turn ended): collapse, and show the full text when re-opened."""
        if not self.is_live:
            return
        self.is_live = False
        self.remove_class("-live")
        self.add_class("-done")
        self._body.live = False
        self._body.text = self.text
        self.title = thinking_title(self.tokens, live=False, truncated=truncated)
        self.collapsed = True
