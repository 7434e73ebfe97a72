"""Time bounds for answer checks, safe from any thread (math-verify's own SIGALRM timeout is not).

- On the main thread (the CLI), a SIGALRM interval timer interrupts the check at the deadline: cheap, and sympy is
  pure Python, so the interrupt lands between bytecodes.
- On any other thread (the chat app's thread workers) signals cannot be used, so the check runs in one helper
  process (`python -m vibelocal.answers.deadline`, JSON lines over pipes) that is killed at the deadline and
  started again on the next call. Starting it costs one interpreter start plus the sympy import; it is then reused.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
from typing import IO, Any

from vibelocal.answers.mathcheck import CheckResult, CheckTimeout, compare

STARTUP_TIMEOUT_S = 60.0
"""How long the helper process may take to import math-verify and sympy (not counted in a check's deadline)."""


def _timed_out(timeout_s: float) -> CheckResult:
    return CheckResult(
        False, error=f"the check took longer than {timeout_s:g}s and was stopped", reason="timed out"
    )


def run_bounded(answer: str, key: str, timeout_s: float) -> CheckResult:
    """`compare(answer, key)` within `timeout_s` seconds, or a result with a timeout error."""
    on_main = threading.current_thread() is threading.main_thread()
    if on_main and hasattr(signal, "setitimer"):
        return _with_alarm(answer, key, timeout_s)
    return HELPER.check(answer, key, timeout_s)


def _with_alarm(answer: str, key: str, timeout_s: float) -> CheckResult:
    def on_alarm(signum: int, frame: Any) -> None:
        raise CheckTimeout()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, max(timeout_s, 0.001))
    try:
        return compare(answer, key)
    except CheckTimeout:
        return _timed_out(timeout_s)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class HelperProcess:
    """One long-lived checking process; calls are serialised; a call past its deadline kills the process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()

    def _start(self) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vibelocal.answers.deadline"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
        )
        self._lines = queue.Queue()
        lines = self._lines
        stdout = proc.stdout
        assert stdout is not None

        def pump(stream: IO[str]) -> None:
            for line in stream:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, args=(stdout,), daemon=True, name="mathcheck-helper").start()
        try:
            ready = lines.get(timeout=STARTUP_TIMEOUT_S)
        except queue.Empty:
            ready = None
        if ready is None or json.loads(ready).get("ready") is not True:
            proc.kill()
            raise RuntimeError("the answer-checking helper process did not start")
        self._proc = proc
        return proc

    def check(self, answer: str, key: str, timeout_s: float) -> CheckResult:
        with self._lock:
            try:
                proc = self._proc if self._proc and self._proc.poll() is None else self._start()
                assert proc.stdin is not None
                proc.stdin.write(json.dumps({"answer": answer, "key": key}) + "\n")
                proc.stdin.flush()
                line = self._lines.get(timeout=timeout_s)
            except queue.Empty:
                self.close_locked()
                return _timed_out(timeout_s)
            except (OSError, RuntimeError) as exc:
                self.close_locked()
                return CheckResult(False, error=f"the check could not run: {exc}", reason="error")
            if line is None:
                self.close_locked()
                return CheckResult(False, error="the answer-checking helper process stopped", reason="error")
            return CheckResult(**json.loads(line))

    def close_locked(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def close(self) -> None:
        with self._lock:
            self.close_locked()


HELPER = HelperProcess()


def serve(stdin: IO[str], stdout: IO[str]) -> None:
    """The helper process's loop: one JSON request per line in, one CheckResult per line out."""
    import vibelocal.answers.mathcheck as mathcheck

    mathcheck._parse("1")  # import math-verify and sympy before saying ready
    stdout.write(json.dumps({"ready": True}) + "\n")
    stdout.flush()
    for line in stdin:
        try:
            request = json.loads(line)
            result = compare(str(request["answer"]), str(request["key"]))
        except Exception as exc:  # a bad request or a library bug must not kill the helper
            result = CheckResult(False, error=f"the check failed: {type(exc).__name__}", reason="error")
        stdout.write(json.dumps(result.to_dict()) + "\n")
        stdout.flush()


if __name__ == "__main__":
    serve(sys.stdin, sys.stdout)
