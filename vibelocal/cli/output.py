"""The one place the CLI writes: stdout for results, stderr for errors, progress and thinking.

`guard_streams` makes writing safe whatever the other end does: a reader that goes away (`| head`) ends the
command quietly (ReaderGone), a closed or full stdout (`>&-`, `/dev/full`) is one OutputError line (exit 7),
and a closed or broken stderr is silently replaced by /dev/null (nothing could be shown there anyway).
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any

from vibelocal.errors import OutputError, VibelocalError

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROL_AND_LINES = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class ReaderGone(Exception):
    """stdout's reader closed the pipe: stop at once, quietly, exit 0."""


def escape_controls(text: str, *, one_line: bool = False) -> str:
    """Control characters (ESC, BEL, CR, C1 ...) written as `\\x1b`, so no input can drive the terminal.

    Tabs and newlines are kept, unless `one_line` (then they are escaped too).
    """
    pattern = _CONTROL_AND_LINES if one_line else _CONTROL
    return pattern.sub(lambda m: f"\\x{ord(m[0]):02x}", text)


def report_error(exc: VibelocalError) -> None:
    """One line on stderr: `error: message (hint)`."""
    line = f"error: {exc.message}"
    if exc.hint:
        line += f" ({exc.hint})"
    print(escape_controls(line, one_line=True), file=sys.stderr, flush=True)


def print_json(obj: Any) -> None:
    """Pretty JSON on stdout; pydantic models and paths are serialised."""
    print(json.dumps(obj, indent=2, ensure_ascii=False, default=_default), flush=True)


def _default(obj: Any) -> Any:
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if hasattr(obj, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(obj)
    return str(obj)


def info(message: str, *, quiet: bool = False) -> None:
    """A status line on stderr (never stdout, which carries results)."""
    if not quiet:
        print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- safe standard streams


def _silence(fd: int) -> None:
    """Point `fd` at /dev/null, so the interpreter's last flush at exit cannot fail (no "Exception ignored")."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, fd)
        os.close(null)
    except OSError:
        pass


class _Wrapped:
    """A standard stream (None when closed at start-up) that delegates all but write and flush."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def isatty(self) -> bool:
        return self._stream is not None and self._stream.isatty()

    def __getattr__(self, name: str) -> Any:
        if self._stream is None:
            raise AttributeError(name)
        return getattr(self._stream, name)


class _GuardedStdout(_Wrapped):
    """sys.stdout, with write failures turned into ReaderGone or OutputError."""

    def _failed(self, exc: OSError) -> BaseException:
        _silence(1)
        if isinstance(exc, BrokenPipeError):
            return ReaderGone()
        return OutputError(f"cannot write the output to stdout: {exc.strerror or exc}")

    def write(self, text: str) -> int:
        if not isinstance(text, str):  # click probes for a binary stream with write(b"")
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if not text:  # and with write(""): a probe must not spend the one error report
            return 0
        if self._stream is None:
            raise OutputError("cannot write the output: stdout is closed", hint="run without >&-")
        try:
            return self._stream.write(text)
        except OSError as exc:
            raise self._failed(exc) from None

    def flush(self) -> None:
        if self._stream is None:
            return
        try:
            self._stream.flush()
        except OSError as exc:
            raise self._failed(exc) from None


class _QuietStderr(_Wrapped):
    """sys.stderr that never raises: after one failed write it goes to /dev/null for good."""

    def _drop(self) -> None:
        _silence(2)
        self._stream = None

    def write(self, text: str) -> int:
        if self._stream is not None:
            try:
                return self._stream.write(text)
            except OSError:
                self._drop()
        return len(text)

    def flush(self) -> None:
        if self._stream is not None:
            try:
                self._stream.flush()
            except OSError:
                self._drop()


class ClosedStdin:
    """What sys.stdin is when fd 0 was closed at start-up (`<&-`): no terminal, no bytes, no `buffer`.

    Readers that need stdin check `stdin_is_closed()` and say so in one line; `input()` sees end of file.
    """

    closed = True
    buffer = None

    def isatty(self) -> bool:
        return False

    def read(self, size: int = -1) -> str:
        return ""

    def readline(self, size: int = -1) -> str:
        return ""


def stdin_is_closed() -> bool:
    return sys.stdin is None or isinstance(sys.stdin, ClosedStdin)


def guard_streams() -> None:
    """Install the guards on sys.stdout and sys.stderr, and a stand-in for a closed stdin (None at start-up)."""
    if sys.stdin is None:
        sys.stdin = ClosedStdin()  # type: ignore[assignment]
    if not isinstance(sys.stdout, _GuardedStdout):
        sys.stdout = _GuardedStdout(sys.stdout)  # type: ignore[assignment]
    if not isinstance(sys.stderr, _QuietStderr):
        sys.stderr = _QuietStderr(sys.stderr)  # type: ignore[assignment]


def finish_stdout() -> None:
    """Flush stdout inside the error handling (a full disk often shows only here)."""
    sys.stdout.flush()
