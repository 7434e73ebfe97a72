"""The one place the CLI writes: stdout for results, stderr for errors, progress and thinking."""

from __future__ import annotations

import json
import sys
from typing import Any

from vibelocal.errors import VibelocalError


def report_error(exc: VibelocalError) -> None:
    """One line on stderr: `error: message (hint)`."""
    line = f"error: {exc.message}"
    if exc.hint:
        line += f" ({exc.hint})"
    print(line, file=sys.stderr, flush=True)


def print_json(obj: Any) -> None:
    """Pretty JSON on stdout; pydantic models and paths are serialised."""
    print(json.dumps(obj, indent=2, ensure_ascii=False, default=_default))


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
