"""The `vibelocal` command: thin typer commands, one output helper, one error mapper."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import typer

from vibelocal import __version__
from vibelocal.cli import bench, chat, config_cmd, doctor, models_cmd, pull, serve, solve, tutor
from vibelocal.cli.helpstyle import make_plain
from vibelocal.cli.output import ReaderGone, finish_stdout, guard_streams, report_error
from vibelocal.errors import ExitCode, UsageError, VibelocalError

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


for module in (pull, models_cmd, doctor, solve, chat, tutor, config_cmd, bench, serve):
    module.register(app)
make_plain(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point: every failure, known or not, ends as one stderr line and a documented exit code."""
    guard_streams()
    code = _run(argv)
    if code == ExitCode.OK:
        code = _run_step(finish_stdout)  # a full disk often surfaces only at the last flush
    sys.exit(code)


def _run(argv: list[str] | None) -> int:
    return _run_step(lambda: app(args=argv, standalone_mode=False))


def _run_step(step: Callable[[], object]) -> int:
    try:
        rc = step()
    except VibelocalError as exc:
        report_error(exc)
        return exc.exit_code
    except ReaderGone:  # `| head` has what it wanted
        return ExitCode.OK
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return ExitCode.INTERRUPTED
    except Exception as exc:
        # Typer vendors its own click, so match click's exceptions by shape rather than by class.
        if type(exc).__name__ == "Abort":  # click turns Ctrl-C into Abort
            return ExitCode.INTERRUPTED
        if isinstance(getattr(exc, "exit_code", None), int) and hasattr(exc, "format_message"):
            report_usage_error(exc)
            return int(exc.exit_code)
        return report_crash(exc)
    return rc if isinstance(rc, int) else ExitCode.OK


def report_usage_error(exc: Exception) -> None:
    """click's `Usage:` / `Try ...` / `Error: ...` as one `error:` line naming the command's --help."""
    ctx = getattr(exc, "ctx", None)
    where = getattr(ctx, "command_path", None) or "vibelocal"
    message = " ".join(str(exc.format_message()).split()).rstrip(".")  # type: ignore[attr-defined]
    report_error(UsageError(message[:1].lower() + message[1:], hint=f"see: {where} --help"))


def report_crash(exc: BaseException) -> int:
    """The last resort: the traceback goes to a crash log, one line names it. Exit 1."""
    import time
    import traceback

    from vibelocal.paths import get_paths

    summary = " ".join(str(exc).split())[:200] or "(no message)"
    text = "".join(traceback.format_exception(exc))
    try:
        log_dir = get_paths().log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        log = log_dir / f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        log.write_text(f"vibelocal {__version__}\nargv: {sys.argv!r}\n\n{text}", encoding="utf-8")
        where = f"the details are in {log}"
    except Exception as log_exc:  # noqa: BLE001 - the report itself must not crash
        where = f"no crash log could be written: {log_exc}"
    report_error(
        VibelocalError(
            f"unexpected {type(exc).__name__}: {summary}", hint=f"a bug in vibelocal {__version__}; {where}"
        )
    )
    return ExitCode.ERROR
