"""Reading a running job: its events become reasoning and content deltas, `stop` strings end the turn, and
the outcome (texts, stats, why it stopped) is kept for the final chunk, the usage and the log line."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal

from vibelocal.serve.turns import Job
from vibelocal.types import StreamEvent, TurnStats

_FINISH = {"budget_exhausted": "length", "context_full": "length"}


class StopFilter:
    """Holds back text that could start a stop string; `hit` once one appeared (the text before it is kept)."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self.stops = stops
        self.keep = max((len(s) for s in stops), default=1) - 1
        self.buffer = ""
        self.hit = False

    def feed(self, text: str) -> str:
        """The part of `text` that is safe to send now."""
        if self.hit:
            return ""
        if not self.stops:
            return text
        self.buffer += text
        found = [i for s in self.stops if (i := self.buffer.find(s)) >= 0]
        if found:
            self.hit = True
            out, self.buffer = self.buffer[: min(found)], ""
            return out
        cut = max(0, len(self.buffer) - self.keep)
        out, self.buffer = self.buffer[:cut], self.buffer[cut:]
        return out

    def flush(self) -> str:
        out, self.buffer = ("" if self.hit else self.buffer), ""
        return out


@dataclass(frozen=True)
class Delta:
    kind: Literal["reasoning", "content"]
    text: str


@dataclass
class Outcome:
    """What a finished turn produced."""

    reasoning: str = ""
    content: str = ""
    stats: TurnStats = field(default_factory=TurnStats)
    stop_reason: str = "error"
    notices: list[str] = field(default_factory=list)
    finished: bool = False

    @property
    def finish_reason(self) -> str:
        return _FINISH.get(self.stop_reason, "stop")


class TurnReader:
    """Async reader of one job's events; `outcome` is complete once `deltas()` is exhausted."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.stops = StopFilter(job.request.stop)
        self.outcome = Outcome()

    async def deltas(self) -> AsyncIterator[Delta]:
        while (event := await self.job.events.get()) is not None:
            delta = self._take(event)
            if delta is not None:
                yield delta
        tail = self.stops.flush()
        if tail:
            self.outcome.content += tail
            yield Delta("content", tail)
        self.outcome.finished = True

    def _take(self, event: StreamEvent) -> Delta | None:
        """Fold one event into the outcome; the text to send, if any."""
        out = self.outcome
        if event.kind == "thinking" and event.text:
            out.reasoning += event.text
            return Delta("reasoning", event.text)
        if event.kind == "answer" and event.text:
            text = self.stops.feed(event.text)
            if self.stops.hit:
                self.job.control.cancel()  # a stop string: end the turn within one token
            out.content += text
            return Delta("content", text) if text else None
        if event.kind in ("budget", "loop", "status"):
            out.notices.append(event.note or event.text)
        elif event.kind == "done":
            out.stop_reason = "stop_sequence" if self.stops.hit else (event.stop_reason or "error")
            if event.stats is not None:
                out.stats = event.stats
        elif event.kind == "stats" and event.stats is not None:
            out.stats = event.stats
        return None

    async def rest(self) -> Outcome:
        """After the client left mid-stream (and the turn was cancelled): read the remaining events, so the
        outcome has the engine's final counts and stop reason."""
        while (event := await self.job.events.get()) is not None:
            self._take(event)
        self.outcome.finished = True
        return self.outcome

    async def drain(self) -> Outcome:
        """Read to the end (non-streaming requests)."""
        async for _ in self.deltas():
            pass
        return self.outcome
