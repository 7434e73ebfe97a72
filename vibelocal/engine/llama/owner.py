"""The one thread that makes every llama.cpp call of a model's life, and the coalesced event hand-over from it.

Why one thread: the pinned llama-cpp-python builds ggml's CPU backend with OpenMP. Once `llama_decode` has run
on two host threads (say, the load probe on the main thread and the turn in a worker), two OpenMP thread teams
exist and fight for the cores: decoding fell to 0.35-0.47x the bare binding with 2 threads. So load, probe,
tokenize, prompt evaluation, decode, sampling, KV edits and free all run on the `EngineThread` that loaded the
model; front ends talk to it through its job queue and read events from an `EventHandoff`.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from vibelocal.types import StreamEvent

T = TypeVar("T")

HANDOFF_INTERVAL_S = 0.04
"""Longest a decoded event waits on the engine thread before its batch is handed to the consumer."""

HANDOFF_MAX_EVENTS = 64
"""A batch is handed over at this many events even sooner."""

_TEXT_KINDS = frozenset({"thinking", "answer", "stats"})
"""Events that are coalesced; any other kind (status, budget, loop) is handed over at once."""


class EngineThread:
    """A daemon thread running submitted jobs one at a time, in order: the owner of one model and context.

    Jobs are serial, so a job submitted while a turn runs (such as the free of `close()`) starts only after
    that turn has returned: nothing can free the context under a running `llama_decode`.
    """

    def __init__(self, name: str = "vibelocal-engine") -> None:
        self._jobs: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]] | None]
        self._jobs = queue.SimpleQueue()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        try:
            self._thread.start()
        except BaseException:  # Ctrl-C while starting: the thread may run; let it end
            self._jobs.put(None)
            raise

    @property
    def ident(self) -> int | None:
        return self._thread.ident

    @property
    def on_thread(self) -> bool:
        """True when the caller is this engine thread itself."""
        return threading.get_ident() == self._thread.ident

    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            future, fn, args = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args)
            except BaseException as exc:  # handed to whoever waits on the future
                future.set_exception(exc)
            else:
                future.set_result(result)

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Queue `fn(*args)` for the engine thread; its result or exception arrives in the future."""
        if self._stopped:
            raise RuntimeError("the engine thread has stopped")
        future: Future[T] = Future()
        self._jobs.put((future, fn, args))
        return future

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on the engine thread and wait for it (directly when already on it)."""
        if self.on_thread:
            return fn(*args)
        return self.submit(fn, *args).result()

    def stop(self) -> None:
        """No more jobs: the thread ends after the ones already queued."""
        if not self._stopped:
            self._stopped = True
            self._jobs.put(None)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end; True when it has."""
        if not self.on_thread:
            self._thread.join(timeout)
        return not self._thread.is_alive()


class _End:
    """The last item of a hand-over: the turn is over, normally or with `error` (re-raised to the consumer)."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


class EventHandoff:
    """Events from the engine thread to one consumer thread, in batches: a consumer wakes about every
    `interval` seconds (or every `max_events` events, or at once for a rare event), never per token.

    The engine thread never waits for the consumer: a slow renderer cannot slow decoding down.
    """

    def __init__(
        self,
        interval: float = HANDOFF_INTERVAL_S,
        max_events: int = HANDOFF_MAX_EVENTS,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._box: queue.SimpleQueue[list[StreamEvent] | _End] = queue.SimpleQueue()
        self._batch: list[StreamEvent] = []
        self._interval, self._max, self._clock = interval, max_events, clock
        self._last = clock()
        self._ended = threading.Event()

    # ---------------------------------------------------------------- engine side

    def put(self, event: StreamEvent) -> None:
        batch = self._batch
        batch.append(event)
        if event.kind == "done":
            return  # handed over by end(), after the engine is free for the next turn
        now = self._clock()
        if event.kind not in _TEXT_KINDS or len(batch) >= self._max or now - self._last >= self._interval:
            self._box.put(batch)
            self._batch = []
            self._last = now

    def end(self, error: BaseException | None = None) -> None:
        """The turn is over: hand over what is left, then the end mark."""
        if self._batch:
            self._box.put(self._batch)
            self._batch = []
        self._box.put(_End(error))
        self._ended.set()

    # ---------------------------------------------------------------- consumer side

    def batches(self) -> Any:
        """The batches in order; raises the turn's error, if any, after the events before it."""
        while True:
            item = self._box.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item

    def wait_end(self, timeout: float | None) -> bool:
        """Wait until the engine thread has finished the turn; True when it has."""
        return self._ended.wait(timeout)


class EventStream:
    """A turn's events as the consumer reads them: iterate it for single events, or read `batches()` for the
    engine's batches as they were handed over (a consumer that renders a batch at once wakes once per batch).

    Either way, a consumer that stops early (closes it, or is interrupted) cancels the turn and waits for the
    engine thread to end it (at most `wait_s`), so nothing is freed under a running decode.
    """

    def __init__(self, handoff: EventHandoff, cancel: Callable[[], None], wait_s: float) -> None:
        self._handoff, self._cancel, self._wait_s = handoff, cancel, wait_s
        self._reader: Any = None

    def batches(self) -> Any:
        """The events in the engine's batches (lists, in order)."""
        ended = False
        try:
            yield from self._handoff.batches()
            ended = True
        finally:
            if not ended:
                self._cancel()
                self._handoff.wait_end(self._wait_s)

    def _events(self) -> Any:
        for batch in self.batches():
            yield from batch

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> StreamEvent:
        if self._reader is None:
            self._reader = self._events()
        return next(self._reader)

    def close(self) -> None:
        """Stop reading: the turn is cancelled and waited for, as when a generator is closed."""
        if self._reader is None:
            self._reader = self._events()
            self._cancel()
            self._handoff.wait_end(self._wait_s)
        self._reader.close()
