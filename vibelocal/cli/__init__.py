"""The `vibelocal` command: thin typer commands, one output helper, one error mapper."""

from __future__ import annotations

import sys

import typer

from vibelocal import __version__
from vibelocal.cli import chat, config_cmd, doctor, models_cmd, pull, solve, tutor
from vibelocal.cli.helpstyle import make_plain
from vibelocal.cli.output import report_error
from vibelocal.errors import ExitCode, VibelocalError

app = typer.Typer(
    name="vibelocal",
    help="Run the VibeThinker-3B reasoning model on this machine, offline. With no command, opens the chat app.",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"vibelocal {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(
        False, "--version", "-V", help="Print the version and exit.", callback=_version, is_eager=True
    ),
) -> None:
    """Run the VibeThinker-3B reasoning model on this machine, offline. With no command, opens the chat app."""
    if ctx.invoked_subcommand is None:
        chat.open_chat_app()


for module in (pull, models_cmd, doctor, solve, chat, tutor, config_cmd):
    module.register(app)
make_plain(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app and turn every known failure into one stderr line and an exit code."""
    try:
        rc = app(args=argv, standalone_mode=False)
    except VibelocalError as exc:
        report_error(exc)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        sys.exit(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        sys.exit(ExitCode.OK)
    except Exception as exc:
        # Typer vendors its own click, so match click's exceptions by shape rather than by class.
        if type(exc).__name__ == "Abort":  # click turns Ctrl-C into Abort
            sys.exit(ExitCode.INTERRUPTED)
        if hasattr(exc, "show") and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            sys.exit(exc.exit_code)
        raise
    sys.exit(rc if isinstance(rc, int) else ExitCode.OK)
