"""Helpers for Pilot tests: wait until the app reaches a state (never a timed assertion)."""

from __future__ import annotations

from collections.abc import Callable


async def wait_for(pilot, condition: Callable[[], object], *, steps: int = 1500, pause: float = 0.02) -> None:
    """Let the app run until `condition()` holds (a wait, not a timed assertion: it fails only if it never holds)."""
    for _ in range(steps):
        if condition():
            return
        await pilot.pause(pause)
    assert condition(), "the app never reached the expected state"


async def wait_idle(pilot, app) -> None:
    """Until the open turn (if any) has finished and its messages are handled."""
    await wait_for(pilot, lambda: app.chat.active is None)
    await pilot.pause()
