"""`vibelocal chat` and the bare `vibelocal`: check the flags, then open the Textual app (imported lazily)."""

from __future__ import annotations

import sys

import typer


def open_chat_app(model: str | None = None, budget: str | None = None, prefill_think: bool = False) -> None:
    """Validate what can be checked before the screen takes over, then run the chat app."""
    from vibelocal.budget import parse_budget
    from vibelocal.config import load_settings
    from vibelocal.errors import UsageError
    from vibelocal.session import Session

    if budget is not None:
        parse_budget(budget)  # a malformed --budget is a usage error (exit 2) before anything opens
    settings = load_settings(
        {"model": model, "budget": budget, "prefill_think": True if prefill_think else None}
    )
    parse_budget(settings.budget)
    session = Session(settings)
    ref = session.resolve()  # an unknown reference: exit 4
    if ref.kind == "path":
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
        model: str | None = typer.Option(
            None,
            "--model",
            "-m",
            help="Model reference (vibethinker-3b, vibethinker-3b:Q8_0, OWNER/REPO:QUANT) or a .gguf path.",
        ),
        budget: str | None = typer.Option(
            None,
            "--budget",
            "-b",
            help="Thinking budget per turn: off, low, medium, high, unlimited, 8000, 2k, 90s.",
        ),
        prefill_think: bool = typer.Option(
            False,
            "--prefill-think",
            help="Start each reply inside <think> (models that do not think on their own).",
        ),
    ) -> None:
        """Open the chat app (the same as running vibelocal with no command)."""
        open_chat_app(model=model, budget=budget, prefill_think=prefill_think)
