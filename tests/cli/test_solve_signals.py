"""`vibelocal solve` as a real process on the real SmolLM2: Ctrl-C twice while decoding, Ctrl-C while loading,
and stdout closed under a streaming answer. None of them may end in a signal death (139 was a use-after-free:
the model freed under a running llama_decode)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from testpaths import ROOT

pytestmark = pytest.mark.real_model


def start(smollm2_path: Path, problem: Path, *args: str, **popen) -> subprocess.Popen:
    env = dict(os.environ, VIBELOCAL_LOOP_DETECTION="false", VIBELOCAL_MIN_THINKING="100000")
    cmd = [sys.executable, "-m", "vibelocal", "solve", str(problem), "--model", str(smollm2_path),
           "--ctx", "2048", "--seed", "3", *args]  # fmt: skip
    popen.setdefault("stdout", subprocess.PIPE)
    return subprocess.Popen(
        cmd, stderr=subprocess.PIPE, env=env, cwd=ROOT,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **popen,
    )  # fmt: skip


def read_until(proc: subprocess.Popen, n: int, timeout: float = 120) -> bytes:
    """Read stderr without blocking until it holds `n` bytes (or the process ends)."""
    assert proc.stderr is not None
    os.set_blocking(proc.stderr.fileno(), False)
    seen = b""
    deadline = time.monotonic() + timeout
    while len(seen) < n and time.monotonic() < deadline and proc.poll() is None:
        seen += proc.stderr.read() or b""
        time.sleep(0.02)
    return seen


@pytest.fixture
def counting(tmp_path) -> Path:
    problem = tmp_path / "count.md"
    problem.write_text("Count from 1 to 500, one number per line, then say done.\n")
    return problem


def test_ctrl_c_twice_while_decoding_exits_130_with_the_partial_output(smollm2_path, counting):
    for _ in range(3):  # the old crash needed the second signal to land while llama_decode ran
        proc = start(smollm2_path, counting, "--prefill-think", "--budget", "unlimited", "--show-thinking")
        seen = read_until(proc, 100)
        proc.send_signal(signal.SIGINT)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        seen += err
        assert proc.returncode == 130, (proc.returncode, seen.decode()[-2000:])
        assert len(seen) >= 100  # the partial thinking was kept
        assert seen.decode().rstrip().endswith("interrupted: partial output kept")
        assert b"Traceback" not in seen


def in_load(pid: int, model: Path) -> bool:
    """llama.cpp has mapped the model file: the load is under way (or just done)."""
    try:
        return str(model) in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc to see the model being mapped")
def test_ctrl_c_while_the_model_loads_exits_130(smollm2_path, counting):
    """The signal is sent as soon as llama.cpp maps the file. A load that wins the race ends in the decode's
    Ctrl-C instead (also 130); the load's own path must be seen at least once."""
    during_load = 0
    for _ in range(6):
        proc = start(smollm2_path, counting, "--prefill-think", "--budget", "unlimited", "--hide-thinking")
        deadline = time.monotonic() + 60
        while not in_load(proc.pid, smollm2_path) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.001)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, (proc.returncode, err.decode()[-2000:])
        assert b"Traceback" not in err and out == b""
        if b"interrupted while loading the model" in err:
            during_load += 1
            if during_load >= 2:
                break
    assert during_load >= 1


def test_stdout_closed_under_a_long_answer_is_no_signal_death(smollm2_path, tmp_path):
    """`solve … | head -c1`: the reader goes away while the answer streams. What solve then prints is the
    CLI's business; here the engine must stop and be freed without racing the decode."""
    problem = tmp_path / "essay.md"
    problem.write_text("Write a long essay about the history of Rome.\n")
    for _ in range(2):
        proc = start(smollm2_path, problem, "--budget", "off", "--answer-budget", "1500")
        assert proc.stdout is not None
        assert proc.stdout.read(1)
        proc.stdout.close()
        _, err = proc.communicate(timeout=120)
        assert proc.returncode >= 0 and proc.returncode != 139, (proc.returncode, err.decode()[-2000:])
        assert b"Segmentation fault" not in err and b"Fatal Python error" not in err
