"""Helpers for Pilot tests: a fixed hardware profile, the scripted conversation, waiting for a state."""

from __future__ import annotations

from collections.abc import Callable

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
