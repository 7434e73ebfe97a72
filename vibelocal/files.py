"""Reading what a user hands over: regular files only, size-capped up front, JSON parsed within bounds."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any, BinaryIO

from vibelocal.errors import BadInputError, VibelocalError

MAX_JSON_DEPTH = 64
"""Nesting deeper than this is refused before `json.loads` sees the text (it would raise RecursionError)."""
MAX_JSON_INT_DIGITS = 64
"""Integers longer than this are refused (Python refuses past 4,300 digits, with a ValueError)."""

_SPECIAL = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a directory"),
)


def count(n: int, unit: str = "bytes") -> str:
    """An exact number for a message: `1,000,001 bytes`."""
    return f"{n:,} {unit}"


def file_kind(mode: int) -> str | None:
    """What a non-regular file is ("a named pipe (FIFO)" ...), None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _SPECIAL if test(mode)), "not a regular file")


def regular_size(path: Path, what: str, error: type[VibelocalError] = BadInputError) -> int:
    """The size of `path` after checking it is a regular file; `error` (one line) when missing or special."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise error(f"{what} not found: {path}") from None
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    kind = file_kind(st.st_mode)
    if kind is not None:
        raise error(f"{path} is {kind}, not a {what}")
    return st.st_size


def too_large(label: str, size: int | None, max_bytes: int) -> str:
    """The one wording of every size refusal, with exact numbers."""
    have = f"{count(size)}" if size is not None else f"more than {count(max_bytes)}"
    return f"{label} is too large: {have} (the limit is {count(max_bytes)})"


def read_capped(path: Path, what: str, max_bytes: int, error: type[VibelocalError] = BadInputError) -> bytes:
    """A regular file's bytes, at most `max_bytes`; never blocks on a FIFO, never reads a device endlessly."""
    size = regular_size(path, what, error)
    if size > max_bytes:
        raise error(too_large(str(path), size, max_bytes))
    try:  # O_NONBLOCK: should the file be swapped for a FIFO after the check, open still returns at once
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as fh:
        if file_kind(os.fstat(fd).st_mode) is not None:
            raise error(f"{path} is not a regular file, not a {what}")
        try:
            raw = fh.read(max_bytes + 1)
        except OSError as exc:
            raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(raw) > max_bytes:  # it grew while we looked
        raise error(too_large(str(path), None, max_bytes))
    return raw


def read_stdin_capped(stream: BinaryIO | None, what: str, max_bytes: int) -> bytes:
    """Standard input's bytes, at most `max_bytes`; BadInputError when stdin is closed or too large."""
    if stream is None:
        raise BadInputError(f"stdin is closed: cannot read {what} from it")
    try:
        raw = stream.read(max_bytes + 1)
    except (OSError, ValueError) as exc:
        raise BadInputError(
            f"cannot read {what} from stdin: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    if len(raw) > max_bytes:
        raise BadInputError(too_large("stdin", None, max_bytes))
    return raw


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_BRACKET = re.compile(r"[\[\]{}]")


def json_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in JSON text (strings ignored)."""
    depth = deepest = 0
    for m in _JSON_BRACKET.finditer(_JSON_STRING.sub('""', text)):
        depth += 1 if m[0] in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def loads_bounded(
    text: str, *, max_depth: int = MAX_JSON_DEPTH, max_int_digits: int = MAX_JSON_INT_DIGITS
) -> Any:
    """`json.loads` that refuses deep nesting and huge integers with a ValueError naming the limit.

    json.JSONDecodeError (a ValueError) still reports malformed text; nothing else escapes.
    """
    depth = json_depth(text)
    if depth > max_depth:
        raise ValueError(f"nested {depth:,} levels deep (the limit is {max_depth})")

    def parse_int(digits: str) -> int:
        if len(digits.lstrip("-")) > max_int_digits:
            raise ValueError(
                f"an integer of {len(digits.lstrip('-')):,} digits (the limit is {max_int_digits})"
            )
        return int(digits)

    return json.loads(text, parse_int=parse_int)
