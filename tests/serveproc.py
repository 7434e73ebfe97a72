"""A real `python -m vibelocal serve` subprocess on a free loopback port, for the serve tests."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from testpaths import ROOT

_LISTENING = re.compile(r"serve: listening on http://(?P<host>[^:/]+):(?P<port>\d+)/v1")
START_TIMEOUT_S = 180.0


class ServeProcess:
    """Starts the server with `args`, waits until /health says the model is loaded; `log()` is its stderr."""

    def __init__(self, args: list[str], home: Path, *, env: dict[str, str] | None = None) -> None:
        self.home = home
        self.err_path = home / "serve.stderr"
        environ = {**os.environ, "VIBELOCAL_HOME": str(home), "HF_HOME": str(home / "hf"), **(env or {})}
        environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), environ.get("PYTHONPATH", "")])
        self._err = self.err_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vibelocal", "serve", "--port", "0", *args],
            stdout=subprocess.DEVNULL,
            stderr=self._err,
            env=environ,
            cwd=str(home),
        )
        self.port = self._wait_listening()
        self.root = f"http://127.0.0.1:{self.port}"
        self.base_url = self.root + "/v1"

    def log(self) -> str:
        return self.err_path.read_text(encoding="utf-8", errors="replace")

    def _wait_listening(self) -> int:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if m := _LISTENING.search(self.log()):
                return int(m["port"])
            if self.proc.poll() is not None:
                raise RuntimeError(f"vibelocal serve exited with {self.proc.returncode}:\n{self.log()}")
            time.sleep(0.1)
        raise RuntimeError(f"vibelocal serve did not start:\n{self.log()}")

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict]:
        req = urllib.request.Request(self.root + path, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, dict]:
        req = urllib.request.Request(
            self.root + path, data=body, headers={"content-type": "application/json", **(headers or {})}
        )
        try:
            with urllib.request.urlopen(req, timeout=300) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def wait_ready(self, headers: dict[str, str] | None = None) -> dict:
        """Poll /health until the model is loaded (503 while it loads)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            status, body = self.get("/health", headers)
            if status == 200:
                return body
            assert status == 503, (status, body)
            time.sleep(0.2)
        raise RuntimeError(f"the model did not load:\n{self.log()}")

    def wait_until(self, check, timeout: float = 120.0) -> dict:
        """Poll /health until `check(body)` holds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, body = self.get("/health")
            if status == 200 and check(body):
                return body
            time.sleep(0.05)
        raise AssertionError(f"/health never satisfied the check: {body}")

    def wait_log(self, needle: str, timeout: float = 120.0) -> str:
        """The first log line containing `needle` (the line is written when its request ends)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log().splitlines():
                if needle in line:
                    return line
            time.sleep(0.1)
        raise AssertionError(f"no log line with {needle!r}:\n{self.log()}")

    def stop(self, sig: int = signal.SIGINT, timeout: float = 120.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._err.close()
