"""Run `python -m vibelocal ...` as a user does: a fresh process, stdout and stderr apart, this test's environment."""

from __future__ import annotations

import os
import subprocess
import sys


def vibelocal(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vibelocal", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )
