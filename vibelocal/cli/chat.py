"""`vibelocal chat` and the bare `vibelocal` (being built)."""

from __future__ import annotations

import typer


def open_chat_app() -> None:
    from vibelocal.errors import UsageError

    raise UsageError("the chat app is not built yet", hint="use vibelocal solve FILE")


def register(app: typer.Typer) -> None:
    return None
