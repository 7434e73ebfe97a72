"""`vibelocal chat` and the bare `vibelocal`: check the flags, then open the Textual app (imported lazily)."""

from __future__ import annotations

import sys

import typer

from vibelocal.cli import options


def open_chat_app(
    model: str | None = None,
    budget: str | None = None,
    prefill_think: bool | None = None,
    *,
    backend: str | None = None,
    api_key: str | None = None,
) -> None:
    """Validate what can be checked before the screen takes over, then run the chat app."""
    from vibelocal.config import load_settings, parse_budget
    from vibelocal.errors import UsageError
    from vibelocal.session import Session

    if budget is not None:
        parse_budget(budget)  # a malformed --budget is a usage error (exit 2) before anything opens
    settings = load_settings(
        {
            "model": model,
            "budget": budget,
            "prefill_think": prefill_think,
            "backend": backend,
            "api_key": api_key,
        }
    )
    parse_budget(settings.budget)
    session = Session(settings)
    ref = session.resolve()  # an unknown reference: exit 4
    if session.remote:
        session.engine()  # a server that is down or refuses the key: one line, exit 4, before the screen opens
    elif ref.kind == "path":
        session.find_installed()  # a missing file (exit 4) or a file that is not a GGUF (exit 5)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError(
            "the chat app needs an interactive terminal", hint="for scripts use: vibelocal solve FILE"
        )
    from vibelocal.tui.app import VibelocalApp

    VibelocalApp(session).run()


def register(app: typer.Typer) -> None:
    @app.command("chat")
    def chat(
        model: str | None = options.MODEL,
        budget: str | None = options.BUDGET,
        prefill_think: bool | None = options.PREFILL_THINK,
        backend: str | None = options.BACKEND,
        api_key: str | None = options.API_KEY,
    ) -> None:
        """Open the chat app (the same as running vibelocal with no command)."""
        open_chat_app(
            model=model, budget=budget, prefill_think=prefill_think, backend=backend, api_key=api_key
        )
