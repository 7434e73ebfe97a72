"""One exchange on screen: the user's message, and the assistant's reply (thinking panel, answer, footer)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.timer import Timer
from textual.widgets import Markdown, Static
from textual.widgets.markdown import MarkdownStream

from vibelocal.answers.extract import CollectedText, TextPieces
from vibelocal.tui.widgets.mathtext import MathStream, answer_markdown
from vibelocal.tui.widgets.thinking import ThinkingPanel

ANSWER_REFRESH_S = 0.1
"""New answer text is handed to the Markdown widget at most this often: each append costs a layout pass."""

STATUS_LABELS = {  # glyphs every common terminal font has (not ⏹ or ⚠)
    "streaming": "",
    "complete": "",
    "stopped": "■ stopped",
    "interrupted": "interrupted: the app closed mid-reply",
    "error": "failed",
}


class UserMessage(Static):
    """What the user sent."""

    def __init__(self, text: str) -> None:
        super().__init__(text, classes="user-message", markup=False)
        self.text = text


class AssistantReply(CollectedText, Vertical):
    """A reply. Live replies stream in; stored ones are built whole from history.

    The raw answer (with its LaTeX) is kept in `answer`; the screen shows its LaTeX as Unicode. Streamed text is
    collected in pieces and joined when read, so a long reply costs linear time.
    """

    def __init__(
        self,
        *,
        thinking: str = "",
        answer: str = "",
        thinking_tokens: int = 0,
        status: str = "streaming",
        footer: str = "",
        show_thinking: bool = True,
    ) -> None:
        super().__init__(classes="assistant-reply")
        self.live = status == "streaming"
        self._thinking = TextPieces(thinking)
        self._answer = TextPieces(answer)
        self.has_answer = bool(answer)
        self.status = status
        self._math = MathStream()
        self._show_thinking = show_thinking
        self.panel: ThinkingPanel | None = None
        if thinking or self.live:
            self.panel = ThinkingPanel(
                thinking, tokens=thinking_tokens, live=self.live, expanded=self.live and show_thinking
            )
        self.markdown = Markdown(answer_markdown(answer) if answer else "", classes="answer")
        self._initial_footer = footer
        self.footer = Static(self._footer_text(status, footer), classes="reply-footer", markup=False)
        self._stream: MarkdownStream | None = None
        self._unwritten = ""
        self._flush_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        self.footer.display = bool(self._footer_text(self.status, self._initial_footer))
        if self.panel is not None:
            if not self.live and not self.thinking:
                self.panel.display = False
            yield self.panel
        yield self.markdown
        yield self.footer

    @staticmethod
    def _footer_text(status: str, footer: str) -> str:
        label = STATUS_LABELS.get(status, status)
        return " · ".join(p for p in (label, footer) if p)

    # ------------------------------------------------------------------ live updates

    def add_thinking(self, text: str, tokens: int) -> None:
        self._thinking.append(text)
        if self.panel is not None:
            self.panel.append(text, tokens)

    async def add_answer(self, text: str) -> None:
        if not self.has_answer and self.panel is not None:
            self.panel.finish()
            if not self.thinking:
                self.panel.display = False
        self._answer.append(text)
        self.has_answer = self.has_answer or bool(text)
        self._unwritten += self._math.feed(text)
        if self._unwritten and self._flush_timer is None:
            self._flush_timer = self.set_timer(ANSWER_REFRESH_S, self._write_unwritten)

    async def reclassify_answer(self, tokens: int) -> None:
        """A bare `</think>` came: the answer shown so far was reasoning. It moves into the thinking panel."""
        moved = self.answer
        if self._flush_timer is not None:
            self._flush_timer.stop()
            self._flush_timer = None
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        self._answer, self.has_answer = TextPieces(""), False
        self._math, self._unwritten = MathStream(), ""
        await self.markdown.update("")
        self._thinking.append(moved)
        if self.panel is not None:
            self.panel.display = True
            self.panel.append(moved, tokens)
            self.panel.set_tokens(tokens)

    async def _write_unwritten(self) -> None:
        self._flush_timer = None
        text, self._unwritten = self._unwritten, ""
        if text:
            if self._stream is None:
                self._stream = Markdown.get_stream(self.markdown)
            await self._stream.write(text)

    async def finish(self, status: str, footer: str = "", *, truncated_thinking: bool = False) -> None:
        """End of the turn: flush the answer, collapse the thinking, show the status and stats."""
        if self._flush_timer is not None:
            self._flush_timer.stop()
        self._unwritten += self._math.flush()
        await self._write_unwritten()
        if self._stream is not None:
            await self._stream.stop()
            self._stream: MarkdownStream | None = None
        self._unwritten = ""
        self._flush_timer: Timer | None = None
        if self.panel is not None:
            self.panel.finish(truncated=truncated_thinking)
            if not self.thinking:
                self.panel.display = False
        self.live = False
        self.status = status
        if not self.answer.strip():
            await self.markdown.update("*(no answer)*" if status != "stopped" else "")
        text = self._footer_text(status, footer)
        self.footer.update(text)
        self.footer.display = bool(text)
        self.set_class(status == "stopped", "-stopped")
        self.set_class(status in ("error", "interrupted"), "-failed")

    def toggle_thinking(self) -> bool:
        """Open or close the thinking panel; returns False when this reply has none."""
        if self.panel is None or not self.panel.display:
            return False
        self.panel.collapsed = not self.panel.collapsed
        return True
