"""Helpers for Pilot tests: a fixed hardware profile, the scripted conversation, waiting for a state."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from vibelocal.engine.scripted import ScriptedEngine
from vibelocal.types import HardwareProfile

GB = 1024**3

HARDWARE = HardwareProfile(
    os="linux",
    arch="x86_64",
    cpu_name="Test CPU",
    cpu_cores_physical=4,
    cpu_cores_logical=8,
    cpu_features=["avx2"],
    ram_total_bytes=16 * GB,
    ram_available_bytes=12 * GB,
    disk_free_bytes=100 * GB,
    source="profile",
)

THINKING = "First, 6 times 7 is 42. Let me double-check: 7 times 6 is also 42. " * 3
ANSWER = "The product is $6 \\times 7 = 42$, so the answer is $\\boxed{42}$."


class HeldEngine(ScriptedEngine):
    """A scripted engine that stops before its `hold_at`-th token (counting thinking then answer) until released.

    A key pressed while it is held reaches the engine before its next token, however slow the machine is: the
    tests of live keys (extend, wrap up, stop, quit) do not race the token rate.
    """

    def __init__(self, *args, hold_at: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.hold_at = hold_at
        self.held = threading.Event()
        self._go = threading.Event()
        self._ticks = 0

    def _tick(self) -> None:
        self._ticks += 1
        if self._ticks == self.hold_at:
            self.held.set()
            self._go.wait(timeout=60)
            self._due = time.perf_counter()  # no burst to catch up the time spent held
        super()._tick()

    def release(self) -> None:
        self._go.set()


async def hold_press(pilot, engine: HeldEngine, *keys: str) -> None:
    """Wait until `engine` is held, press `keys`, then let it go on."""
    await wait_for(pilot, engine.held.is_set)
    await pilot.press(*keys)
    engine.release()


async def wait_for(pilot, condition: Callable[[], object], *, steps: int = 4000, pause: float = 0.02) -> None:
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
