"""Textual Messages the workers post: only the TUI turns core StreamEvents into these."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.message import Message

from vibelocal.types import EngineInfo, GenerationSettings, InstalledModel, TurnStats

if TYPE_CHECKING:
    from vibelocal.models.transfer import DownloadProgress as Transfer


class TurnMessage(Message):
    """Base of every message about one generation turn; `turn` tells stale messages apart."""

    def __init__(self, turn: int) -> None:
        super().__init__()
        self.turn = turn


class TurnBegan(TurnMessage):
    """The engine is loaded and the turn is about to stream with these settings."""

    def __init__(self, turn: int, settings: GenerationSettings, info: EngineInfo) -> None:
        super().__init__(turn)
        self.settings = settings
        self.info = info


class ThinkingDelta(TurnMessage):
    """New thinking text (a batch of tokens), the thinking token count so far and the current budget."""

    def __init__(self, turn: int, text: str, tokens: int, budget: int | None) -> None:
        super().__init__(turn)
        self.text = text
        self.tokens = tokens
        self.budget = budget


class AnswerDelta(TurnMessage):
    """New answer text (a batch of tokens) and the answer token count so far."""

    def __init__(self, turn: int, text: str, tokens: int) -> None:
        super().__init__(turn)
        self.text = text
        self.tokens = tokens


class AnswerReclassified(TurnMessage):
    """A bare `</think>`: the answer streamed so far was reasoning; `tokens` is the thinking count now."""

    def __init__(self, turn: int, tokens: int) -> None:
        super().__init__(turn)
        self.tokens = tokens


class BudgetNote(TurnMessage):
    """The budget controller acted: warning, wrap_up, extended, forced_answer or min_thinking."""

    def __init__(self, turn: int, note: str, tokens: int, budget: int | None) -> None:
        super().__init__(turn)
        self.note = note
        self.tokens = tokens
        self.budget = budget


class TurnNotice(TurnMessage):
    """A human-readable engine message (a loop nudge, a status line)."""

    def __init__(self, turn: int, text: str) -> None:
        super().__init__(turn)
        self.text = text


class TurnStatsUpdate(TurnMessage):
    """A running snapshot of the turn's counts and timings."""

    def __init__(self, turn: int, stats: TurnStats) -> None:
        super().__init__(turn)
        self.stats = stats


class TurnFinished(TurnMessage):
    """The turn is over: why it stopped and its final stats."""

    def __init__(
        self, turn: int, stop_reason: str, stats: TurnStats | None, truncated_thinking: bool
    ) -> None:
        super().__init__(turn)
        self.stop_reason = stop_reason
        self.stats = stats
        self.truncated_thinking = truncated_thinking


class TurnFailed(TurnMessage):
    """The turn raised: one line for the user."""

    def __init__(self, turn: int, error: str) -> None:
        super().__init__(turn)
        self.error = error


class EngineReady(Message):
    """A model is loaded."""

    def __init__(self, info: EngineInfo, label: str) -> None:
        super().__init__()
        self.info = info
        self.label = label


class EngineFailed(Message):
    """Loading the model failed; `missing` when no model is installed (the setup screen takes over)."""

    def __init__(self, error: str, *, missing: bool = False) -> None:
        super().__init__()
        self.error = error
        self.missing = missing


class EngineStatus(Message):
    """A status line from the engine while it loads (e.g. a retry with fewer GPU layers)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class DownloadProgress(Message):
    """Bytes fetched so far of a model download, with the downloader's own report (speed, ETA, phase, note)."""

    def __init__(self, progress: Transfer) -> None:
        super().__init__()
        self.progress = progress

    @property
    def done(self) -> int:
        return self.progress.downloaded_bytes

    @property
    def total(self) -> int | None:
        return self.progress.total_bytes


class DownloadFinished(Message):
    """The model is downloaded and verified."""

    def __init__(self, model: InstalledModel) -> None:
        super().__init__()
        self.model = model


class DownloadFailed(Message):
    """The download stopped: cancelled by the user (resumable) or failed."""

    def __init__(self, error: str, *, cancelled: bool = False) -> None:
        super().__init__()
        self.error = error
        self.cancelled = cancelled
