"""The tutor's private solve in a worker thread, so a student with a key can answer while the model works."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from vibelocal.engine.control import TurnControl

if TYPE_CHECKING:
    from vibelocal.tutor.lesson import Tutor


class BackgroundSolve:
    """Runs `tutor.solve()` in a daemon thread; `wait()` joins it and re-raises what it raised.

    The tutor's checker needs only the key, so attempts are judged meanwhile; hints and the worked solution need
    the solution, so the front end calls `wait()` first (and says so). Nothing of the text leaves the thread.
    """

    def __init__(self, tutor: Tutor) -> None:
        self.tutor = tutor
        self.control = TurnControl()
        self.tokens = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="tutor-private-solve", daemon=True)

    def start(self) -> BackgroundSolve:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self.tutor.solve(control=self.control, on_progress=self._count)
        except BaseException as exc:  # handed to the front end's thread by wait()
            self.error = exc

    def _count(self, tokens: int) -> None:
        self.tokens = tokens

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the solve ends (True) or `timeout_s` passes (False); re-raises the solve's error once."""
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            return False
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        return True

    def stop(self) -> None:
        """Cancel the solve (the student quit) and let the thread finish its current token."""
        self.control.cancel()
        self._thread.join(10)
