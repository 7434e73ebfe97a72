"""Where a problem comes from on the command line: a file, `-` (stdin, with a prompt on a terminal), or `-p TEXT`."""

from __future__ import annotations

import io
import sys
from dataclasses import replace
from typing import TYPE_CHECKING

from vibelocal.errors import BadInputError, UsageError

if TYPE_CHECKING:
    from vibelocal.problem import Problem

TYPE_HINT = (
    "type the problem, end with Ctrl-D"
    if sys.platform != "win32"
    else "type the problem, end with Ctrl-Z Enter"
)


def read_cli_problem(file: str | None, prompt: str | None, *, kind: str | None = None) -> Problem:
    """The problem a command names: exactly one of FILE (`-` for stdin) or `-p TEXT`."""
    from vibelocal.problem import read_problem

    if file is not None and prompt is not None:
        raise UsageError("give the problem as FILE or as -p TEXT, not both")
    if prompt is not None:
        if not prompt.strip():
            raise BadInputError("the -p prompt is empty")
        problem = read_problem("-", kind=kind, stdin=io.BytesIO(prompt.encode("utf-8")))  # type: ignore[arg-type]
        return replace(problem, source="-p")
    if file is None:
        raise UsageError("no problem given: pass FILE, - to read stdin, or -p TEXT")
    if file == "-" and sys.stdin.isatty():
        print(TYPE_HINT, file=sys.stderr, flush=True)
    return read_problem(file, kind=kind)  # type: ignore[arg-type]


class LoadingNote:
    """`loading model…` on a terminal while a model loads, erased once it is ready; nothing when piped."""

    def __init__(self, label: str, *, quiet: bool = False) -> None:
        self.shown = not quiet and sys.stderr.isatty()
        self.label = label

    def __enter__(self) -> LoadingNote:
        if self.shown:
            sys.stderr.write(f"loading {self.label}…")
            sys.stderr.flush()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
