"""Turns on the engine: a bounded FIFO of waiting requests, dispatched in order to the engine's free handles.

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
    """FIFO over one engine: at most `max_waiting` jobs wait; up to `parallel` jobs run at once.

    One dispatcher thread takes the jobs in order and hands each to a free engine handle: the engine itself and,
    when it can `fork()` (several sequences of one batch, or a server's slots), `parallel - 1` forks of it; each
    handle runs its job on a thread of its own. An engine that cannot fork gives one handle: one job at a time,
    exactly as before `--parallel`. The handles are made when the first job arrives (the model loads after the
    server starts) and the forks are closed with the queue; the engine stays with its owner.
    """

    def __init__(
        self, engine: Callable[[], ChatEngine | None], *, max_waiting: int = 16, parallel: int = 1
    ) -> None:
        self._engine = engine
        self.max_waiting = max_waiting
        self.parallel = max(1, parallel)
        self._lock = threading.RLock()
        self._waiting: queue.Queue[Job | None] = queue.Queue()
        self._jobs: dict[str, Job] = {}
        self.running: dict[str, Job] = {}
        self.served = 0
        self._free: queue.Queue[ChatEngine] | None = None
        self._forks: list[ChatEngine] = []
        self._runners: list[threading.Thread] = []
        self._thread = threading.Thread(target=self._dispatch, name="vibelocal-serve-turns", daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        with self._lock:
            return bool(self.running)

    @property
    def slots(self) -> int:
        """Jobs that can run at once: 1 until the handles exist, then one per handle."""
        return 1 + len(self._forks)

    def submit(self, job: Job) -> None:
        """Queue a job, or raise a 429 when `max_waiting` jobs already wait."""
        with self._lock:
            # counted against the slots, not the jobs marked running: a job the dispatcher has not picked up yet
            # is not waiting behind anything, so two clients arriving together are both taken with one slot free
            capacity = self.slots if self._free is not None else max(self.parallel, 1)
            if len(self._jobs) - capacity >= self.max_waiting:
                raise ApiError(
                    429,
                    f"the server is busy: {self.max_waiting} requests are already waiting; retry shortly",
                    code="queue_full",
                )
            self._jobs[job.id] = job
            self._waiting.put(job)

    def waiting(self) -> int:
        """Jobs queued behind the running ones."""
        with self._lock:
            return len(self._jobs) - len(self.running)

    def find(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def close(self, timeout: float = 5.0) -> None:
        """Cancel every job, stop the dispatcher and the running jobs, close the forks (the server is shutting
        down)."""
        with self._lock:
            for job in self._jobs.values():
                job.control.cancel()
        self._waiting.put(None)
        self._thread.join(timeout)
        for runner in list(self._runners):
            runner.join(timeout)
        for fork in self._forks:
            fork.close()
        self._forks = []

    def _handles(self, engine: ChatEngine | None) -> queue.Queue[ChatEngine] | None:
        """The free handles, made on first use: the engine and its forks (as many as it decodes at once)."""
        if self._free is None and engine is not None:
            free: queue.Queue[ChatEngine] = queue.Queue()
            free.put(engine)
            fork = getattr(engine, "fork", None)
            if callable(fork):
                for _ in range(min(self.parallel, getattr(engine, "parallel", 1)) - 1):
                    handle = fork()
                    self._forks.append(handle)
                    free.put(handle)
            self._free = free
        return self._free

    def _dispatch(self) -> None:
        while (job := self._waiting.get()) is not None:
            free = self._handles(self._engine())
            handle = free.get() if free is not None else None
            with self._lock:
                self.running[job.id] = job
            runner = threading.Thread(
                target=self._work, args=(job, handle, free), name="vibelocal-serve-turn", daemon=True
            )
            self._runners = [r for r in self._runners if r.is_alive()] + [runner]
            runner.start()

    def _work(self, job: Job, handle: ChatEngine | None, free: queue.Queue[ChatEngine] | None) -> None:
        try:
            self._run(job, handle)
        finally:
            with self._lock:
                self.running.pop(job.id, None)
                self._jobs.pop(job.id, None)
                self.served += 1
            job.push(None)
            if handle is not None and free is not None:
                free.put(handle)

    def _run(self, job: Job, engine: ChatEngine | None) -> None:
        if job.control.cancelled or engine is None:  # the client left while it waited, or no model
            job.push(StreamEvent("done", stop_reason="cancelled", stats=TurnStats()))
            return
        try:
            for event in run_job(engine, job):
                job.push(event)
        except Exception as exc:  # an engine failure ends this turn, not the server
            job.push(StreamEvent("status", text=f"generation failed: {exc}"))
            job.push(StreamEvent("done", stop_reason="error", stats=TurnStats()))
