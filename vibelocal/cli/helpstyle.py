"""`--help` as plain click text: no rich import on the help path (about half of its start-up), 80-column friendly.

Typer's rich help draws boxed tables that squeeze the help text into a narrow column at 80 columns and prints
`<bool>` / `<str>` beside every flag. Plain click help wraps to the terminal and names each value by its metavar.
"""

from __future__ import annotations

import typer
import typer.core

_argument_type = typer.core.TyperArgument.display_type_rich


def _argument_placeholder(self: typer.core.TyperArgument, ctx: object) -> str | None:
    """An argument with a metavar (`FILE|-`, `PATH.gguf`) needs no `<str>` after it."""
    if self.metavar is not None:
        return None
    return _argument_type(self, ctx)  # type: ignore[arg-type]


def make_plain(app: typer.Typer) -> None:
    """Switch `app` and every sub-app to plain help (call after all commands are registered)."""
    typer.core.TyperArgument.display_type_rich = _argument_placeholder  # type: ignore[method-assign]
    app.rich_markup_mode = None
    for group in app.registered_groups:
        if group.typer_instance is not None:
            group.typer_instance.rich_markup_mode = None
