"""The budget meter (thinking tokens against the budget, ETA), the stats line (tok/s, TTFT, device, quant) and the
open conversation's totals."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Static

from vibelocal.types import EngineInfo, TurnStats

if TYPE_CHECKING:
    from vibelocal.history import StoredMessage

BAR_WIDTH = 24


def _bar(fraction: float, width: int = BAR_WIDTH) -> str:
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "█" * filled + "░" * (width - filled)


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def budget_line(
    tokens: int,
    budget: int | None,
    rate: float | None,
    *,
    time_budget_s: float | None = None,
    elapsed_s: float | None = None,
    note: str = "",
    answering: bool = False,
) -> str:
    """`Thinking ███░░ 1,234 / 8,192 tokens · ETA 0:35` (ETA at the current rate); time and unlimited budgets too.

    Once the answer has started (`answering`) thinking is over: `Thought …`, and no ETA."""
    head = "Thought" if answering else "Thinking"
    if budget is not None and budget > 0:
        eta = (
            f" · ETA {_duration((budget - tokens) / rate)}"
            if rate and budget > tokens and not answering
            else ""
        )
        line = f"{head} {_bar(tokens / budget)} {tokens:,} / {budget:,} tokens{eta}"
    elif time_budget_s:
        spent = elapsed_s or 0.0
        line = f"{head} {_bar(spent / time_budget_s)} {_duration(spent)} / {_duration(time_budget_s)} · {tokens:,} tokens"
    else:
        line = f"{head} {tokens:,} tokens · no budget"
    return f"{line} · {note}" if note else line


def stats_line(stats: TurnStats | None, info: EngineInfo | None, *, live: bool = False) -> str:
    """`23.4 tok/s · TTFT 0.41s · 812 tokens · CPU · Q4_K_M`; missing numbers are left out."""
    parts: list[str] = []
    if stats is not None:
        if stats.decode_tok_s:
            parts.append(f"{stats.decode_tok_s:.1f} tok/s")
        if stats.ttft_s is not None:
            parts.append(f"TTFT {stats.ttft_s:.2f}s")
        total = stats.thinking_tokens + stats.answer_tokens
        if total:
            parts.append(f"{total:,} tokens ({stats.thinking_tokens:,} thinking)")
    if info is not None:
        parts.append(info.device)
        if info.quant:
            parts.append(info.quant)
    return ("… " if live else "") + " · ".join(parts)


def record_footer(record: dict[str, Any]) -> str:
    """The stats line of a stored reply, from its reproducibility record."""
    stats = TurnStats(
        thinking_tokens=int(record.get("thinking_tokens") or 0),
        answer_tokens=int(record.get("answer_tokens") or 0),
        ttft_s=record.get("ttft_s"),
        decode_tok_s=record.get("tok_s"),
    )
    info = EngineInfo(model_path="", quant=record.get("quant"), device=record.get("device") or "")
    return stats_line(stats, info if record.get("device") else None).strip(" ·")


def conversation_line(messages: Iterable[StoredMessage]) -> str:
    """`4 messages · 1,234 thought · 56 answered · last 23.4 tok/s` for the open conversation; "" when empty."""
    count = thought = answered = 0
    last_rate: float | None = None
    for message in messages:
        count += 1
        if message.role == "assistant":
            thought += int(message.record.get("thinking_tokens") or 0)
            answered += int(message.record.get("answer_tokens") or 0)
            last_rate = message.record.get("tok_s") or last_rate
    if not count:
        return ""
    parts = [
        f"{count} message" + ("" if count == 1 else "s"),
        f"{thought:,} thought",
        f"{answered:,} answered",
    ]
    if last_rate:
        parts.append(f"last {last_rate:.1f} tok/s")
    return " · ".join(parts)


class BudgetMeter(Widget):
    """Shown while a turn thinks; the screen feeds it counts, the widget only formats."""

    line: reactive[str] = reactive("")

    def render(self) -> Text:
        return Text(self.line, no_wrap=True, overflow="ellipsis")


class StatsBar(Static):
    """The bottom line: the loaded model, the open conversation's totals, then the live or last turn's numbers."""

    def show(self, model: str, detail: str = "", conversation: str = "") -> None:
        head = f"{model} │ {conversation}" if conversation else model
        self.update(Text(f"{head}  {detail}".rstrip(), no_wrap=True, overflow="ellipsis"))
