"""What every remote engine shares: one turn at a time, and a server that fails mid-turn ends it cleanly."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

from vibelocal.engine.control import TurnControl
from vibelocal.engine.remote.client import Client
from vibelocal.errors import BackendError
from vibelocal.types import ChatMessage, GenerationSettings, StreamEvent, TurnStats


class RemoteEngine:
    """A ChatEngine (engine/contract.py) over one server; subclasses implement `_turn`."""

    parallel: int = 4
    """How many turns the server runs side by side (llama-server: its slots); `--votes` samples that many at once."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._busy = threading.Lock()

    def fork(self) -> RemoteEngine:
        """The same server on a connection of its own, so a second turn can run while this one does."""
        raise NotImplementedError

    def stream(
        self,
        messages: Sequence[ChatMessage],
        settings: GenerationSettings,
        control: TurnControl | None = None,
    ) -> Iterator[StreamEvent]:
        if not self._busy.acquire(blocking=False):
            raise RuntimeError("the engine is already generating a turn")
        stats = TurnStats(budget_tokens=settings.max_thinking_tokens, seed=settings.seed)
        try:
            yield from self._turn(messages, settings, control or TurnControl(), stats)
        except BackendError as exc:  # the server went away mid-turn: say so, keep the promise of `done`
            yield StreamEvent("status", text=str(exc))
            yield StreamEvent("done", stop_reason="error", stats=stats)
        finally:
            self._busy.release()

    def _turn(
        self,
        messages: Sequence[ChatMessage],
        settings: GenerationSettings,
        control: TurnControl,
        stats: TurnStats,
    ) -> Iterator[StreamEvent]:
        raise NotImplementedError

    def close(self) -> None:
        self.client.close()
