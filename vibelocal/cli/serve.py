"""`vibelocal serve`: an OpenAI-compatible server on this machine (loopback unless an API key guards it)."""

from __future__ import annotations

import signal
import sys
from dataclasses import dataclass, field
from typing import Any

import typer

from vibelocal.cli import options
from vibelocal.cli.output import report_error
from vibelocal.errors import ExitCode, ModelLoadError, UsageError, VibelocalError

API_KEY_ENV = "VIBELOCAL_API_KEY"


@dataclass(frozen=True)
class ServeOptions:
    """The command line of one `vibelocal serve`, as typed."""

    model: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    budget: str | None = None
    api_key: str | None = None
    prefill_think: bool | None = None
    ctx: int | None = None
    effort: list[str] = field(default_factory=list)
    reasoning_field: str = "both"
    max_queue: int = 16
    answer_budget: int | None = None
    parallel: int = 1


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        model: str | None = options.MODEL,
        host: str = typer.Option(
            "127.0.0.1", "--host", help="Address to bind; beyond loopback needs --api-key."
        ),
        port: int = typer.Option(8080, "--port", "-p", min=0, max=65535, help="Port (0: any free one)."),
        budget: str | None = options.BUDGET,
        api_key: str | None = typer.Option(
            None,
            "--api-key",
            help=f"Require Authorization: Bearer KEY on every route (or set {API_KEY_ENV}).",
        ),
        prefill_think: bool | None = options.PREFILL_THINK,
        ctx: int | None = typer.Option(None, "--ctx", min=512, help="Context length in tokens."),
        effort: list[str] = typer.Option(  # noqa: B006 - typer reads the default
            [],
            "--effort",
            metavar="LEVEL=BUDGET",
            help="What a reasoning_effort means, e.g. low=1k (repeatable).",
        ),
        reasoning_field: str = typer.Option(
            "both", "--reasoning-field", help="Where thinking goes: both, reasoning_content or reasoning."
        ),
        max_queue: int = typer.Option(16, "--max-queue", min=1, help="Requests that may wait; more get 429."),
        answer_budget: int | None = typer.Option(
            None, "--answer-budget", min=16, help="Answer tokens when a request sets no max_tokens."
        ),
        parallel: int = typer.Option(
            1,
            "--parallel",
            min=1,
            max=64,
            metavar="N",
            help="Decode up to N requests at once, as sequences of one batch (when memory and the engine allow).",
        ),
    ) -> None:
        """Serve the model over the OpenAI chat-completions API (reasoning split, budgets, live control).

        Exit codes: 0 stopped (Ctrl-C drains running requests first), 2 usage error, 4 model not available,
        5 model failed to load.
        """
        opts = ServeOptions(
            model, host, port, budget, api_key, prefill_think, ctx, list(effort), reasoning_field, max_queue,
            answer_budget, parallel,
        )  # fmt: skip
        try:
            code = run_serve(opts)
        except VibelocalError as exc:
            report_error(exc)
            raise typer.Exit(exc.exit_code) from None
        raise typer.Exit(code)


def _check(opts: ServeOptions, settings: Any) -> str | None:
    """The API key in force: --api-key, else VIBELOCAL_API_KEY, else `api_key` in config.toml (load_settings
    merges them in that order); a non-loopback bind without one is a usage error."""
    from vibelocal.serve.auth import is_loopback

    key = settings.api_key or None
    if not key and not is_loopback(opts.host):
        raise UsageError(
            f"binding to {opts.host} exposes the model to the network: set --api-key, {API_KEY_ENV} "
            "or api_key in config.toml",
            hint="or bind to 127.0.0.1",
        )
    if opts.reasoning_field not in ("both", "reasoning_content", "reasoning"):
        raise UsageError(
            f"invalid --reasoning-field {opts.reasoning_field!r}: use both, reasoning_content or reasoning"
        )
    return key


def _state(session: Any, model: Any, opts: ServeOptions, budget: Any) -> Any:
    from vibelocal.serve.budgets import parse_effort_map
    from vibelocal.serve.requests import ServeDefaults
    from vibelocal.serve.routes import ServerState

    spec = session.spec_for(model)
    generation = session.generation_settings(budget=budget, spec=spec)
    defaults = ServeDefaults(generation, budget, parse_effort_map(opts.effort), opts.reasoning_field)  # type: ignore[arg-type]
    think_open = spec.chat.think_open if spec else "<think>"
    return ServerState(defaults, model.label, think_open, max_waiting=opts.max_queue, parallel=opts.parallel)


def run_serve(opts: ServeOptions) -> int:
    """Everything `vibelocal serve` does; returns the exit code or raises a VibelocalError."""
    from vibelocal.config import load_settings, parse_budget
    from vibelocal.session import Session

    overrides = {"model": opts.model, "budget": opts.budget, "prefill_think": opts.prefill_think}
    overrides.update(ctx=opts.ctx, answer_budget=opts.answer_budget, api_key=opts.api_key)
    settings = load_settings(overrides)
    key = _check(opts, settings)
    budget = parse_budget(settings.budget)
    session = Session(settings, on_status=lambda msg: print(f"note: {msg}", file=sys.stderr, flush=True))
    model = session.find_installed(opts.model)
    if model is None:
        ref = session.resolve(opts.model)
        raise VibelocalError(
            f"model {ref.display} is not installed", hint=f"run: vibelocal pull {ref.raw}", exit_code=4
        )
    state = _state(session, model, opts, budget)
    try:
        loader = lambda: session.engine(opts.model, model=model, parallel=opts.parallel)  # noqa: E731
        return _run_uvicorn(opts, state, key, loader)
    finally:
        session.close()


def _run_uvicorn(opts: ServeOptions, state: Any, key: str | None, loader: Any) -> int:
    import uvicorn

    from vibelocal.serve.app import build_app

    failure: list[Exception] = []

    def on_load_error(exc: Exception) -> None:
        failure.append(exc)
        server.should_exit = True

    app = build_app(state, loader, api_key=key, on_load_error=on_load_error)
    config = uvicorn.Config(app, host=opts.host, port=opts.port, log_level="warning", access_log=False)
    server = _announcing_server(config)
    signal.signal(signal.SIGTERM, _exit_ok)  # uvicorn re-raises the signal once it has drained
    try:
        server.run()
    except KeyboardInterrupt:  # Ctrl-C: uvicorn has drained the running requests; a clean stop
        pass
    except SystemExit:
        if server.started:
            raise  # SIGTERM, after the drain: exit 0
    if failure:
        exc = failure[0]
        err = exc if isinstance(exc, VibelocalError) else ModelLoadError(f"cannot load the model: {exc}")
        report_error(err)
        return err.exit_code
    if not server.started:
        raise VibelocalError(f"cannot listen on {opts.host}:{opts.port}", hint="is the port already in use?")
    print("serve: stopped", file=sys.stderr, flush=True)
    return ExitCode.OK


def _exit_ok(_sig: int, _frame: Any) -> None:
    raise SystemExit(ExitCode.OK)


def _announcing_server(config: Any) -> Any:
    """A uvicorn.Server that says where it listens once the socket is bound (port 0 picks a free one)."""
    import uvicorn

    class AnnouncingServer(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            for server in getattr(self, "servers", []):
                for sock in server.sockets:
                    host, port = sock.getsockname()[:2]
                    print(f"serve: listening on http://{host}:{port}/v1", file=sys.stderr, flush=True)

    return AnnouncingServer(config)
