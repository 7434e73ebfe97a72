"""`vibelocal doctor --reinstall-backend cpu|cuda|metal|vulkan`: rebuild llama-cpp-python where vibelocal runs.

packaging/reinstall-backend.sh does the same from a clone; this one ships in the wheel, so pipx and uv users have
it, and it targets the environment of the running interpreter whatever installed it.
"""

from __future__ import annotations

import os
import shlex
import subprocess

from vibelocal.cli.output import info
from vibelocal.errors import ExitCode, UsageError, VibelocalError


def reinstall_backend(backend: str, *, dry_run: bool) -> int:
    """Print the command, then (unless `dry_run`) run it with the backend's CMAKE_ARGS; returns the exit code."""
    from vibelocal.placement.build import SWITCHABLE, cmake_args, reinstall_argv

    if backend not in SWITCHABLE:
        raise UsageError(f"unknown backend {backend!r}: use {', '.join(SWITCHABLE)}")
    flags = " ".join(f for f in (cmake_args(backend), os.environ.get("CMAKE_ARGS_EXTRA", "")) if f)
    argv = reinstall_argv(backend)
    shown = f'CMAKE_ARGS="{flags}" FORCE_CMAKE=1 {shlex.join(argv)}'
    print(f"backend:    {backend}")
    print(f"running:    {shown}")
    if dry_run:
        print("(dry run: nothing was changed)")
        return ExitCode.OK
    info("building llama.cpp takes several minutes (about 6 on two cores) and prints nothing meanwhile…")
    try:
        done = subprocess.run(argv, env={**os.environ, "CMAKE_ARGS": flags, "FORCE_CMAKE": "1"}, check=False)
    except FileNotFoundError:
        raise VibelocalError(
            f"cannot run {argv[0]}: this environment has no pip and uv is not on PATH",
            hint="install pip into it, or run the command above with the tool that installed vibelocal",
        ) from None
    if done.returncode != 0:
        raise VibelocalError(
            f"the rebuild failed (exit {done.returncode}); the previous build may be gone",
            hint="see the compiler output above; packaging/README.md lists what each backend needs",
        )
    print("done. Check the backend with: vibelocal doctor")
    return ExitCode.OK
