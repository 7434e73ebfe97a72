"""`vibelocal solve FILE|-`: one problem; thinking on stderr, the answer on stdout, documented exit codes."""

from __future__ import annotations

import contextlib
import os
import queue
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from enum import Enum
from typing import TYPE_CHECKING, Any

import typer

from vibelocal.cli import options
from vibelocal.cli.output import ReaderGone, escape_controls, print_json, report_error
from vibelocal.errors import ExitCode, NoAnswerError, OutputError, UsageError, VibelocalError

if TYPE_CHECKING:  # pydantic stays off the `--help` path
    from vibelocal.answers.extract import TurnRecord
    from vibelocal.engine.contract import ChatEngine
    from vibelocal.types import ChatMessage, GenerationSettings, StreamEvent


class Kind(str, Enum):
    math = "math"
    code = "code"
    other = "other"


@dataclass(frozen=True)
class SolveOptions:
    """The command line of one `vibelocal solve`, as typed."""

    file: str
    kind: str | None = None
    hide_thinking: bool = False
    show_thinking: bool = False
    raw: bool = False
    answer_only: bool = False
    as_json: bool = False
    budget: str | None = None
    model: str | None = None
    temperature: float | None = None
    seed: int | None = None
    prefill_think: bool | None = None
    votes: int = 1
    yes: bool = False
    ctx: int | None = None
    answer_budget: int | None = None
    prompt: str | None = None
    backend: str | None = None
    api_key: str | None = None


def _make_session(settings: Any, on_status: Callable[[str], None]) -> Any:
    from vibelocal.session import Session

    return Session(settings, on_status=on_status)


make_session = _make_session
"""Builds the Session; tests swap it to inject a scripted engine."""

CANCEL_GRACE_S = 2.0
"""After a second Ctrl-C, how long solve still waits for the engine to stop before it exits anyway."""


def register(app: typer.Typer) -> None:
    @app.command("solve")
    def solve(
        file: str | None = typer.Argument(
            None, metavar="FILE|-", help="A problem in Markdown (LaTeX and code fine); - reads stdin."
        ),
        prompt: str | None = options.PROMPT,
        kind: Kind | None = typer.Option(
            None, "--kind", metavar="KIND", help="math, code or other; guessed from the text when not given."
        ),
        hide_thinking: bool = typer.Option(
            False, "--hide-thinking", help="Show a one-line counter instead of the thinking."
        ),
        show_thinking: bool = typer.Option(
            False, "--show-thinking", help="Stream the thinking to stderr even when it is not a terminal."
        ),
        raw: bool = typer.Option(False, "--raw", help="Print the text as generated (no LaTeX to Unicode)."),
        answer_only: bool = typer.Option(
            False, "--answer-only", help="Print only the final answer (the last \\boxed{} or code block)."
        ),
        as_json: bool = typer.Option(
            False, "--json", help="Print one JSON object with the answer, thinking, usage and timings."
        ),
        budget: str | None = options.BUDGET,
        model: str | None = options.MODEL,
        temperature: float | None = typer.Option(
            None, "--temperature", "-t", metavar="T", help="Sampling temperature (default: the model's, 0.6)."
        ),
        seed: int | None = typer.Option(
            None, "--seed", metavar="N", help="Random seed (default: a fresh one, reported in --json)."
        ),
        prefill_think: bool | None = options.PREFILL_THINK,
        votes: int = typer.Option(
            1,
            "--votes",
            min=1,
            max=64,
            metavar="K",
            help="Sample K answers and keep the one most samples agree on.",
        ),
        yes: bool = options.YES,
        ctx: int | None = typer.Option(
            None,
            "--ctx",
            min=512,
            metavar="TOKENS",
            help="Context length in tokens (default: the planner's).",
        ),
        answer_budget: int | None = typer.Option(
            None,
            "--answer-budget",
            min=16,
            metavar="TOKENS",
            help="Most tokens the answer may take after thinking.",
        ),
        backend: str | None = options.BACKEND,
        api_key: str | None = options.API_KEY,
    ) -> None:
        """Solve one problem: thinking streams to stderr, the answer goes to stdout.

        Exit codes: 0 answer produced, 2 usage error, 3 bad problem input, 4 model not available,
        5 model failed to load, 6 no answer (partial output still printed), 7 output not written, 130 interrupted.
        """
        options = SolveOptions(
            file, kind.value if kind else None, hide_thinking, show_thinking, raw, answer_only, as_json,
            budget, model, temperature, seed, prefill_think, votes, yes, ctx, answer_budget, prompt, backend, api_key,
        )  # fmt: skip
        try:
            code = run_solve(options)
        except VibelocalError as exc:
            report_error(exc)
            raise typer.Exit(exc.exit_code) from None
        raise typer.Exit(code)


# --------------------------------------------------------------------------- the command's work


def run_solve(opts: SolveOptions) -> int:
    """Everything `vibelocal solve` does; returns the exit code or raises a VibelocalError."""
    from vibelocal.cli.problem_input import read_cli_problem
    from vibelocal.cli.render import terminal_options
    from vibelocal.config import load_settings, parse_budget
    from vibelocal.problem import build_messages, ensure_fits

    if opts.hide_thinking and opts.show_thinking:
        raise UsageError("--hide-thinking and --show-thinking contradict each other")
    if opts.as_json and opts.answer_only:
        raise UsageError("--json and --answer-only contradict each other; the JSON holds final_answer")
    settings = load_settings(
        {
            "model": opts.model,
            "budget": opts.budget,
            "temperature": opts.temperature,
            "seed": opts.seed,
            "prefill_think": opts.prefill_think,
            "ctx": opts.ctx,
            "answer_budget": opts.answer_budget,
            "backend": opts.backend,
            "api_key": opts.api_key,
        }
    )
    budget = parse_budget(settings.budget)
    problem = read_cli_problem(opts.file, opts.prompt, kind=opts.kind)
    for warning in problem.warnings:
        print(f"warning: {escape_controls(warning, one_line=True)}", file=sys.stderr, flush=True)
    quiet = opts.as_json or opts.answer_only
    render = terminal_options(
        hide_thinking=opts.hide_thinking or (not settings.show_thinking and not opts.show_thinking),
        show_thinking=opts.show_thinking,
        raw=opts.raw,
        answer=not quiet and opts.votes == 1,
    )
    session = make_session(settings, lambda msg: print(f"note: {msg}", file=sys.stderr, flush=True))
    try:
        try:
            engine = _load_engine(session, opts, quiet=quiet)
        except KeyboardInterrupt as exc:  # Ctrl-C while llama.cpp loads: the load stops, nothing to keep
            print("interrupted while loading the model", file=sys.stderr, flush=True)
            if getattr(exc, "engine_stopped", True) is False:
                _exit_now(ExitCode.INTERRUPTED)
            return ExitCode.INTERRUPTED
        messages = build_messages(problem, session.spec)
        ensure_fits(messages, engine.count_tokens, engine.info.n_ctx, engine.info.n_ctx_train)
        base_seed = settings.seed if settings.seed is not None else random.SystemRandom().randrange(2**31)
        generation = session.generation_settings(
            budget=budget, force_boxed=problem.kind == "math", seed=base_seed
        )
        if opts.votes > 1:
            return run_votes(opts, session, engine, messages, generation, problem.kind, render, budget.label)
        record = run_turn(engine, messages, generation, render, time_budget_s=budget.seconds)
        final = record.final_answer(problem.kind)
        if opts.as_json:
            print_json(envelope(record, final, session, engine, generation, problem.kind, budget.label))
        elif opts.answer_only and final is not None:
            _print_final(final, problem.kind, render)
        return exit_code(record, final, answer_only=opts.answer_only)
    finally:
        _release(session)


def _release(session: Any) -> None:
    """Unload the model. The engine frees it only once its turn has stopped; should the turn still run after
    the engine's bounded wait, exit at once instead of letting interpreter shutdown race llama.cpp."""
    if session.close() is False:
        failing = sys.exc_info()[1]
        interrupted = failing is None or isinstance(failing, KeyboardInterrupt)
        _exit_now(ExitCode.INTERRUPTED if interrupted else ExitCode.ERROR)


def _exit_now(code: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def _load_engine(session: Any, opts: SolveOptions, *, quiet: bool) -> ChatEngine:
    """The engine for --model (or the default); offers to pull a catalog model that is not installed."""
    if session.remote:
        return session.engine()
    model = session.find_installed(opts.model)
    if model is None and session.resolve(opts.model).kind != "path":
        from vibelocal.cli.pull import pull_with_progress

        model = pull_with_progress(session, opts.model, yes=opts.yes, quiet=quiet)
    from vibelocal.cli.problem_input import LoadingNote

    with LoadingNote(model.label if model else "model", quiet=quiet):
        # --votes K: K sequences of one batch where the engine can decode them (the planner may fit fewer)
        return session.engine(opts.model, model=model, parallel=opts.votes)


def _print_final(final: str, kind: str, render: Any) -> None:
    from vibelocal.answers.latex import math_to_unicode

    text = math_to_unicode(final) if kind != "code" and render.unicode_answer else final
    print(text, flush=True)


# --------------------------------------------------------------------------- one turn, interruptible


class EventPump:
    """Runs a blocking event stream in a worker thread so Ctrl-C reaches the main thread between events.

    The queue is unbounded: a slow terminal never holds the engine back. A stream that hands its events over in
    batches (the local engine's `batches()`) is passed on a batch at a time, so the main thread wakes once per
    batch (about every 40 ms), not once per token: on a laptop whose cores all decode, every wake-up is taken
    from the model.
    """

    def __init__(self, events: Iterator[StreamEvent]) -> None:
        self._box: queue.SimpleQueue[list[StreamEvent] | BaseException | None] = queue.SimpleQueue()
        self._events = events
        threading.Thread(target=self._work, name="vibelocal-solve", daemon=True).start()

    def _work(self) -> None:
        try:
            batches = getattr(self._events, "batches", None)
            if callable(batches):
                for batch in batches():
                    self._box.put(batch)
            else:
                for event in self._events:
                    self._box.put([event])
        except BaseException as exc:  # handed to the main thread
            self._box.put(exc)
        finally:
            self._box.put(None)

    def next(self, timeout: float | None = None) -> list[StreamEvent] | None:
        """The next batch of events, None at the end; queue.Empty after `timeout` s. A KeyboardInterrupt while
        waiting leaves the pump usable."""
        item = self._box.get(timeout=timeout)
        if isinstance(item, BaseException):
            raise item
        return item


class _Interrupts:
    """Ctrl-C during a turn: the first cancels it (the engine stops within a token and the turn ends
    normally); a second gives the engine `CANCEL_GRACE_S` more, then solve stops waiting."""

    def __init__(self, control: Any) -> None:
        self._control = control
        self.count = 0
        self._deadline: float | None = None

    def interrupt(self) -> None:
        self.count += 1
        self._control.cancel()
        if self.count >= 2 and self._deadline is None:
            self._deadline = time.monotonic() + CANCEL_GRACE_S

    def timeout(self) -> float | None:
        return None if self._deadline is None else max(0.0, self._deadline - time.monotonic())


def run_turn(
    engine: ChatEngine,
    messages: list[ChatMessage],
    generation: GenerationSettings,
    render: Any,
    *,
    time_budget_s: float | None = None,
) -> TurnRecord:
    """Stream one turn through the terminal renderer; Ctrl-C cancels it and keeps what was produced."""
    from vibelocal.cli.render import StreamRenderer
    from vibelocal.engine.control import TurnControl

    control = TurnControl()
    renderer = StreamRenderer(render, time_budget_s=time_budget_s)
    from vibelocal.answers.extract import TurnRecord

    record = TurnRecord()
    events = EventPump(engine.stream(messages, generation, control))
    interrupts = _Interrupts(control)
    while True:
        try:
            batch = events.next(interrupts.timeout())
            if batch is None:
                break
            for event in batch:
                record.add(event)
            renderer.handle_batch(batch)
        except queue.Empty:  # the grace after a second Ctrl-C ran out
            break
        except KeyboardInterrupt:
            interrupts.interrupt()
        except (ReaderGone, OutputError):  # stop the engine before the session closes under it
            control.cancel()
            _drain(events)
            raise
    renderer.finish()
    if interrupts.count:
        record.stop_reason = "cancelled"
    return record


def _drain(events: EventPump) -> None:
    """Wait (bounded) for a cancelled turn's last events, so nothing is freed under a running decode."""
    try:
        while events.next(CANCEL_GRACE_S) is not None:
            pass
    except queue.Empty:
        pass


# --------------------------------------------------------------------------- results


_NO_ANSWER = {
    "budget_exhausted": "the thinking and answer budgets ran out",
    "context_full": "the context filled up",
    "loop": "the model was stuck in a loop",
    "error": "generation failed",
    "answered": "the model gave no answer text",
}


def exit_code(record: TurnRecord, final: str | None, *, answer_only: bool = False) -> int:
    """0 with an answer, 130 when interrupted; NoAnswerError (6) otherwise, after the output was printed."""
    if record.stop_reason == "cancelled":
        print("interrupted: partial output kept", file=sys.stderr, flush=True)
        return ExitCode.INTERRUPTED
    if final is not None or (not answer_only and record.stop_reason == "answered" and record.answer.strip()):
        return ExitCode.OK
    if answer_only and record.answer.strip():
        raise NoAnswerError("no final answer found in the answer", hint="run without --answer-only to see it")
    why = _NO_ANSWER.get(record.stop_reason or "error", "generation stopped")
    raise NoAnswerError(f"no answer: {why}", hint="try a larger --budget" if record.budget_hit else None)


def usage_dict(record: TurnRecord) -> dict[str, Any]:
    s = record.stats
    usage = {
        "prompt_tokens": s.prompt_tokens,
        "thinking_tokens": s.thinking_tokens,
        "answer_tokens": s.answer_tokens,
        "forced_tokens": s.forced_tokens,
        "evaluated_tokens": s.evaluated_tokens,
    }
    if s.server_requests:  # a remote backend: what its cache saved, by its own counters
        usage.update(reprocessed_tokens=s.reprocessed_tokens, server_requests=s.server_requests)
    return usage


def timings_dict(record: TurnRecord) -> dict[str, Any]:
    s = record.stats
    values = {
        "ttft_s": s.ttft_s,
        "prefill_tok_s": s.prefill_tok_s,
        "decode_tok_s": s.decode_tok_s,
        "total_s": s.total_s,
    }
    return {k: None if v is None else round(v, 4) for k, v in values.items()}


def envelope(
    record: TurnRecord,
    final: str | None,
    session: Any,
    engine: ChatEngine,
    generation: GenerationSettings,
    kind: str,
    budget_label: str,
) -> dict[str, Any]:
    """The `--json` object (schema in docs/solve.md)."""
    model = session.model
    info = engine.info
    seed = record.stats.seed if record.stats.seed is not None else generation.seed
    return {
        "answer": record.answer.strip(),
        "final_answer": final,
        "thinking": record.thinking.strip(),
        "stop_reason": record.stop_reason,
        "budget_hit": record.budget_hit,
        "usage": usage_dict(record),
        "timings": timings_dict(record),
        "model": {
            "path": str(model.path) if model else info.model_path,
            "sha256": (model.sha256 if model else None) or info.sha256,
            "quant": (model.quant if model else None) or info.quant,
            "think_tags": info.extra.get("think_tags"),
            **(
                {"server": info.extra.get("server"), "backend": info.extra.get("url")}
                if info.backend == "remote"
                else {}
            ),
        },
        "plan": session.plan_used.model_dump(mode="json") if session.plan_used is not None else None,
        "settings": {"budget": budget_label, "kind": kind, **asdict(replace(generation, seed=seed))},
        "seed": seed,
    }


# --------------------------------------------------------------------------- --votes K


def run_votes(
    opts: SolveOptions,
    session: Any,
    engine: ChatEngine,
    messages: list[ChatMessage],
    generation: GenerationSettings,
    kind: str,
    render: Any,
    budget_label: str,
) -> int:
    """K samples with seeds base..base+K-1; final answers grouped by equivalence; the largest group wins. The
    vote stops early once the leading group can no longer be overtaken (the rest are cut)."""
    from vibelocal.answers.votes import group_answers, math_equivalence, text_equivalence, vote_seeds
    from vibelocal.cli.parallel import CUT
    from vibelocal.cli.render import StreamRenderer

    assert generation.seed is not None
    seeds = vote_seeds(generation.seed, opts.votes)
    # each sample from an empty cache, as `solve --seed SEED` alone would run it
    generations = [replace(generation, seed=seed, reuse_prefix=False) for seed in seeds]
    equivalent = text_equivalence if kind == "code" else math_equivalence()
    started = time.monotonic()
    records = _sample(engine, messages, generations, render, kind, equivalent)
    wall_s = time.monotonic() - started
    cut = [i for i, r in enumerate(records) if r.stop_reason == CUT]
    finals = [None if i in cut else r.final_answer(kind) for i, r in enumerate(records)]
    result = group_answers(finals, equivalent, cut=cut)
    winner = result.winner
    best = records[winner.members[0]] if winner else _last_judged(records)
    final = winner.answer if winner else None
    if cut:
        _note(f"{len(cut)} of {len(records)} samples cut: the leading answer could no longer be overtaken")
    _note(f"agreement {result.agreement}" + (f": {final}" if final and kind != "code" else ""))
    if opts.as_json:
        data = envelope(best, final, session, engine, generation, kind, budget_label)
        data["timings"]["total_s"] = round(wall_s, 4)  # the whole vote, not the winning sample alone
        data["samples"] = [
            sample_dict(r, f, seed) for r, f, seed in zip(records, finals, seeds[: len(records)], strict=True)
        ]
        data["agreement"] = result.to_dict()
        print_json(data)
    elif opts.answer_only:
        if final is not None:
            _print_final(final, kind, render)
    elif best.answer.strip():
        renderer = StreamRenderer(
            replace(render, answer=True, thinking_text=False, live_counter=False, summary=False)
        )
        from vibelocal.types import StreamEvent

        renderer.handle(StreamEvent("answer", text=best.answer))
        renderer.finish()
    if any(r.stop_reason == "cancelled" for r in records):
        return exit_code(next(r for r in records if r.stop_reason == "cancelled"), None)
    if winner is None:
        raise NoAnswerError(
            f"no answer: none of the {len(records)} samples gave a final answer", hint="try a larger --budget"
        )
    return ExitCode.OK


def _last_judged(records: list[TurnRecord]) -> TurnRecord:
    from vibelocal.cli.parallel import CUT

    return next((r for r in reversed(records) if r.stop_reason != CUT), records[-1])


def _sample(
    engine: ChatEngine,
    messages: list[ChatMessage],
    generations: list[GenerationSettings],
    render: Any,
    kind: str,
    equivalent: Any,
) -> list[TurnRecord]:
    """The vote's samples (cli/parallel.py); one after another, each streams through the terminal renderer."""
    from vibelocal.cli.parallel import sample_vote

    def one(generation: GenerationSettings) -> TurnRecord:
        return run_turn(engine, messages, generation, render, time_budget_s=generation.thinking_time_s)

    return sample_vote(
        engine, messages, generations, kind=kind, equivalent=equivalent, run_one=one, note=_note
    )


def sample_dict(record: TurnRecord, final: str | None, seed: int | None = None) -> dict[str, Any]:
    """One sample of --votes in the JSON: its answer, final answer, stop reason, seed, usage and timings. A cut
    sample keeps what it wrote before it was stopped (nothing when it never started) and its seed."""
    return {
        "answer": record.answer.strip(),
        "final_answer": final,
        "stop_reason": record.stop_reason,
        "budget_hit": record.budget_hit,
        "seed": record.stats.seed if record.stats.seed is not None else seed,
        "usage": usage_dict(record),
        "timings": timings_dict(record),
    }


def _note(text: str) -> None:
    print(f"note: {text}", file=sys.stderr, flush=True)
