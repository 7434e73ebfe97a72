"""One turn at a time on the engine: a bounded FIFO of waiting requests and one worker thread that runs them.

Each request is a `Job` with its own `TurnControl` (live control by id, cancel on disconnect) and an asyncio
queue its events are handed to from the worker thread. A full queue refuses new work at once (429) instead
of letting clients pile up.
"""

from __future__ import annotations

import asyncio
import itertools
import queue
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from vibelocal.engine.contract import ChatEngine
from vibelocal.engine.control import TurnControl
from vibelocal.serve.errors import ApiError
from vibelocal.serve.requests import TurnRequest
from vibelocal.types import StreamEvent, TurnStats

_serial = itertools.count(1)


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(6)}{next(_serial):04d}"


@dataclass
class Job:
    """A request waiting for or holding the engine; its events cross to the event loop through `events`."""

    id: str
    request: TurnRequest
    loop: asyncio.AbstractEventLoop
    control: TurnControl = field(default_factory=TurnControl)
    events: asyncio.Queue[StreamEvent | None] = field(default_factory=asyncio.Queue)
    queued_at: float = field(default_factory=time.monotonic)

    def push(self, event: StreamEvent | None) -> None:
        """From the worker thread: hand one event (None: the end) to the request's coroutine."""
        try:
            self.loop.call_soon_threadsafe(self.events.put_nowait, event)
        except RuntimeError:  # the event loop is gone (server shutting down): nobody is listening
            self.control.cancel()


def run_job(engine: ChatEngine, job: Job) -> Iterator[StreamEvent]:
    """The engine's events for a job: a chat turn, or a raw-prompt turn on engines that take one."""
    req = job.request
    if req.prompt is not None:
        stream_prompt = getattr(engine, "stream_prompt", None)
        if stream_prompt is None:
            yield StreamEvent("status", text="this engine takes no raw prompts")
            yield StreamEvent("done", stop_reason="error", stats=TurnStats())
            return
        yield from stream_prompt(req.prompt, req.settings, job.control)
        return
    yield from engine.stream(list(req.messages), req.settings, job.control)


class TurnQueue:
    """FIFO over one engine: at most `max_waiting` jobs wait; the worker runs one job at a time."""

    def __init__(self, engine: Callable[[], ChatEngine | None], *, max_waiting: int = 16) -> None:
        self._engine = engine
        self.max_waiting = max_waiting
        self._lock = threading.RLock()
        self._waiting: queue.Queue[Job | None] = queue.Queue()
        self._jobs: dict[str, Job] = {}
        self.running: Job | None = None
        self.served = 0
        self._thread = threading.Thread(target=self._work, name="vibelocal-serve-turns", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        """Queue a job, or raise a 429 when `max_waiting` jobs already wait."""
        with self._lock:
            if self.waiting() >= self.max_waiting:
                raise ApiError(
                    429,
                    f"the server is busy: {self.max_waiting} requests are already waiting; retry shortly",
                    code="queue_full",
                )
            self._jobs[job.id] = job
            self._waiting.put(job)

    def waiting(self) -> int:
        """Jobs queued behind the running one."""
        with self._lock:
            return len(self._jobs) - (1 if self.running is not None else 0)

    def find(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def close(self, timeout: float = 5.0) -> None:
        """Cancel every job and stop the worker (the server is shutting down)."""
        with self._lock:
            for job in self._jobs.values():
                job.control.cancel()
        self._waiting.put(None)
        self._thread.join(timeout)

    def _work(self) -> None:
        while (job := self._waiting.get()) is not None:
            with self._lock:
                self.running = job
            try:
                self._run(job)
            finally:
                with self._lock:
                    self.running = None
                    self._jobs.pop(job.id, None)
                    self.served += 1
                job.push(None)

    def _run(self, job: Job) -> None:
        engine = self._engine()
        if job.control.cancelled or engine is None:  # the client left while it waited, or no model
            job.push(StreamEvent("done", stop_reason="cancelled", stats=TurnStats()))
            return
        try:
            for event in run_job(engine, job):
                job.push(event)
        except Exception as exc:  # an engine failure ends this turn, not the server
            job.push(StreamEvent("status", text=f"generation failed: {exc}"))
            job.push(StreamEvent("done", stop_reason="error", stats=TurnStats()))
