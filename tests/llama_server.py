"""A real llama-server on a free loopback port, for the remote-backend tests.

The binary is built by .ci/run from the llama.cpp source vendored in the pinned llama-cpp-python sdist
(`.cache/llama-server/llama-server`), or named by VIBELOCAL_TEST_LLAMA_SERVER.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from testpaths import ROOT

BINARY_ENV = "VIBELOCAL_TEST_LLAMA_SERVER"
_FROM_ENV = os.environ.get(
    BINARY_ENV
)  # read at import: each test's isolated home clears VIBELOCAL_* variables


def binary() -> Path:
    env = _FROM_ENV
    candidates = [Path(env)] if env else []
    candidates.append(ROOT / ".cache" / "llama-server" / "llama-server")
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return c
    raise RuntimeError(f"llama-server is missing: run .ci/run once (it builds it), or set {BINARY_ENV}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def llama_server(
    model: Path, *, api_key: str | None = None, slots: int = 1, ctx: int = 2048, exe: Path | None = None
) -> Iterator[tuple[str, subprocess.Popen]]:
    """Start llama-server on 127.0.0.1 and wait for /health; yields (base URL, process)."""
    port = free_port()
    cmd = [
        str(exe or binary()), "-m", str(model), "--host", "127.0.0.1", "--port", str(port),
        "-c", str(ctx * slots), "-np", str(slots), "-t", "2", "--no-webui", "--log-disable",
    ]  # fmt: skip
    if api_key:
        cmd += ["--api-key", api_key]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace")[-2000:] if proc.stderr else ""
                raise RuntimeError(f"llama-server exited with {proc.returncode}: {err}")
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("llama-server did not become healthy in 60 s")
            time.sleep(0.2)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr:
            proc.stderr.close()
