"""`vibelocal doctor --reinstall-backend`: the command it would run (dry run), and its usage errors."""

from __future__ import annotations

import sys

import pytest
from clirun import vibelocal

from vibelocal.errors import ExitCode


@pytest.mark.parametrize(
    ("backend", "flag"),
    [("cuda", "-DGGML_CUDA=on"), ("vulkan", "-DGGML_VULKAN=on"), ("metal", "-DGGML_METAL=on")],
)
def test_dry_run_prints_the_rebuild_for_this_interpreter_and_changes_nothing(backend, flag):
    out = vibelocal("doctor", "--reinstall-backend", backend, "--dry-run", env={"CMAKE_ARGS_EXTRA": "-DX=1"})
    assert out.returncode == 0, out.stderr
    running = next(line for line in out.stdout.splitlines() if line.startswith("running:"))
    assert f'CMAKE_ARGS="{flag} -DX=1"' in running
    assert (
        f"{sys.executable} -m pip install --force-reinstall --no-deps --no-cache-dir llama-cpp-python==0.3.36"
        in running
    )
    assert out.stdout.rstrip().endswith("(dry run: nothing was changed)")


def test_an_unknown_backend_is_one_usage_line():
    out = vibelocal("doctor", "--reinstall-backend", "rocm", "--dry-run")
    assert out.returncode == ExitCode.USAGE
    assert out.stderr.strip() == "error: unknown backend 'rocm': use cpu, cuda, metal, vulkan"
