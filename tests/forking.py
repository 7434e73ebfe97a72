"""A test double of an engine that decodes several turns at once: `parallel` handles from `fork()`, scripted.

It stands in for the local engine loaded with `n_parallel` sequences (and for a server's slots): the front
ends only see `parallel`, `fork()`, `stream()` on each handle, and `close()`. Every handle plays the script the
turn's settings and messages pick (`by_seed`: the seed); a script marked `HANG` thinks one token and then waits until the turn is cancelled, so a
test can tell a cut sample from a finished one without racing a clock. `overlap` makes each turn wait, before
its first token, until that many turns are streaming at once: a test that asks for it fails (the barrier
breaks) unless the turns really run side by side.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence

from vibelocal.engine.control import TurnControl
from vibelocal.engine.scripted import Script, ScriptedEngine
from vibelocal.types import ChatMessage, GenerationSettings, StreamEvent, TurnStats

HANG = Script(thinking="<hang>")
"""A turn that never ends on its own (only a cancel stops it)."""

HANG_LIMIT_S = 30.0


class _Shared:
    def __init__(self, overlap: int) -> None:
        self.lock = threading.Lock()
        self.active = 0
        self.most_active = 0
        self.seeds: list[int | None] = []
        self.cancelled: list[int | None] = []
        self.threads: set[int] = set()
        self.handles_open = 0
        self.barrier = threading.Barrier(overlap, timeout=10.0) if overlap > 1 else None


class ForkingEngine(ScriptedEngine):
    """`parallel` handles over one shared record of the turns (seeds started, most turns at once, cancels)."""

    def __init__(
        self,
        scripts: Callable[[GenerationSettings, Sequence[ChatMessage]], Script] | Script,
        *,
        parallel: int = 4,
        overlap: int = 0,
        shared: _Shared | None = None,
    ) -> None:
        super().__init__(Script())
        self.parallel = parallel
        self._scripts = scripts
        self.shared = shared or _Shared(overlap)
        with self.shared.lock:
            self.shared.handles_open += 1

    def fork(self) -> ForkingEngine:
        return ForkingEngine(self._scripts, parallel=self.parallel, shared=self.shared)

    def close(self) -> None:
        if not self.closed:
            with self.shared.lock:
                self.shared.handles_open -= 1
        super().close()

    def stream(
        self,
        messages: Sequence[ChatMessage],
        settings: GenerationSettings,
        control: TurnControl | None = None,
    ) -> Iterator[StreamEvent]:
        control = control or TurnControl()
        script = self._scripts(settings, messages) if callable(self._scripts) else self._scripts
        shared = self.shared
        with shared.lock:
            shared.active += 1
            shared.most_active = max(shared.most_active, shared.active)
            shared.seeds.append(settings.seed)
            shared.threads.add(threading.get_ident())
        try:
            if shared.barrier is not None:
                shared.barrier.wait()
            if script is HANG:
                yield from self._hang(settings, control)
                return
            self._script = script
            yield from super().stream(messages, settings, control)
        finally:
            with shared.lock:
                shared.active -= 1

    def _hang(self, settings: GenerationSettings, control: TurnControl) -> Iterator[StreamEvent]:
        stats = TurnStats(seed=settings.seed, thinking_tokens=1)
        yield StreamEvent("thinking", text="hmm", thinking_tokens=1)
        deadline = time.monotonic() + HANG_LIMIT_S
        while not control.cancelled:
            if time.monotonic() > deadline:
                raise AssertionError("a hanging turn was never cancelled")
            time.sleep(0.01)
        with self.shared.lock:
            self.shared.cancelled.append(settings.seed)
        yield StreamEvent("done", stop_reason="cancelled", stats=stats)


def by_seed(scripts: dict[int, Script]) -> Callable[[GenerationSettings, Sequence[ChatMessage]], Script]:
    return lambda settings, _messages: scripts[settings.seed]  # type: ignore[index]
