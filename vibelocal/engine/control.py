"""Live control of a running turn from another thread: extend the budget, wrap up now, cancel."""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class PendingCommands:
    """Commands that arrived since the engine last looked."""

    extend_tokens: int = 0
    wrap_up: bool = False
    cancel: bool = False


class TurnControl:
    """Thread-safe mailbox between a front end and the generating thread.

    The engine calls `take()` once per token; `cancelled` is cheap enough to check anywhere.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._extend = 0
        self._wrap_up = False
        self._cancel = threading.Event()

    def extend(self, tokens: int = 2048) -> None:
        """Give the thinking budget `tokens` more (also undoes a pending wrap-up)."""
        with self._lock:
            self._extend += tokens
            self._wrap_up = False

    def wrap_up(self) -> None:
        """Stop thinking as soon as the current sentence ends and answer."""
        with self._lock:
            self._wrap_up = True

    def cancel(self) -> None:
        """Stop generating within one token; the partial output is kept."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def take(self) -> PendingCommands:
        """Return and clear pending extend/wrap-up commands (cancel stays set)."""
        with self._lock:
            cmds = PendingCommands(self._extend, self._wrap_up, self._cancel.is_set())
            self._extend = 0
            self._wrap_up = False
        return cmds
