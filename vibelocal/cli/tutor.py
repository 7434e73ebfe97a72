"""`vibelocal tutor FILE` (work a problem with hints and exact checking) and `vibelocal tutor check` (grade answers).

Exit codes of `tutor check`: 0 every pair equivalent, 1 at least one not (or unreadable), 2 usage error,
3 the pairs file cannot be read. `tutor FILE`: 0 (solved or not: the session is saved), 3 bad problem file or
session id, 4 model not available, 5 model failed to load, 6 the model found no answer and no key was given.
`tutor rm`: 0, 2 nothing named, 3 a bad or unknown id (nothing is deleted then).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from typing import Any

import typer
from typer.core import TyperGroup

from vibelocal.cli import options
from vibelocal.cli.output import escape_controls, info, print_json, stdin_is_closed
from vibelocal.errors import ModelLoadError, ModelUnavailableError, UsageError

DEFAULT_COMMAND = "start"
HINT_WORDS = {"hint", "h", "?", "help me"}
SOLUTION_WORDS = {"solution", "show solution", "s", "reveal"}
QUIT_WORDS = {"quit", "q", "exit", "bye"}


class _TutorGroup(TyperGroup):
    """`vibelocal tutor FILE` means `vibelocal tutor start FILE`; a bare `--resume` means the latest session."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("-h", "--help")):
            args = [DEFAULT_COMMAND, *args]
        for flag in ("--resume", "-r"):
            if flag in args:
                i = args.index(flag)
                if i + 1 == len(args) or args[i + 1].startswith("-"):
                    args.insert(i + 1, "latest")
        return super().parse_args(ctx, args)


def _make_session(settings: Any) -> Any:
    from vibelocal.session import Session

    return Session(settings)


make_session: Callable[[Any], Any] = _make_session
"""Builds the Session; tests swap it to inject a scripted engine."""


def register(app: typer.Typer) -> None:
    tutor_app = typer.Typer(
        cls=_TutorGroup,
        help="Work a math problem with hints and exact answer checking (offline). `vibelocal tutor FILE` starts one "
        "(options: vibelocal tutor start --help).",
        no_args_is_help=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    @tutor_app.command(DEFAULT_COMMAND)
    def start(
        file: str | None = typer.Argument(None, metavar="[FILE]", help="The problem (Markdown; front matter `answer: ...` gives the key)."),
        key: str | None = typer.Option(None, "--key", "-k", metavar="ANSWER", help="The answer key (beats the file's `answer:`); with --resume, sets or fixes it."),
        resume: str | None = typer.Option(None, "--resume", "-r", metavar="[ID]", help="Resume a saved session (the newest unfinished one without ID)."),
        list_sessions: bool = typer.Option(False, "--list", "-l", help="List saved tutor sessions and exit."),
        as_json: bool = typer.Option(False, "--json", help="With --list: one JSON array."),
        model: str | None = options.MODEL,
        budget: str | None = typer.Option(None, "--budget", "-b", metavar="BUDGET", help="Thinking budget for the private solve (off, low, 8000, 90s ...)."),
        hint_budget: str = typer.Option("1k", "--hint-budget", metavar="BUDGET", help="Thinking budget for each hint."),
        votes: int = typer.Option(1, "--votes", min=1, max=64, metavar="K", help="Solve privately K times; the key is the answer most samples agree on."),
        prefill_think: bool | None = options.PREFILL_THINK,
        prompt: str | None = options.PROMPT,
        backend: str | None = options.BACKEND,
        api_key: str | None = options.API_KEY,
    ) -> None:  # fmt: skip
        """Work a problem: the model solves it privately, you type answers, ask for hints, see the solution at the end.

        At the prompt type an answer, `hint`, `solution` or `quit` (Ctrl-D also saves and quits).
        """
        from vibelocal.config import parse_budget

        if list_sessions:
            _list_sessions(as_json)
            return
        parse_budget(hint_budget)
        settings = _settings(model, budget, prefill_think, backend=backend, api_key=api_key)
        run_session(
            settings, file, key=key, resume=resume, hint_budget=hint_budget, prompt=prompt, votes=votes
        )

    @tutor_app.command("rm")
    def rm_cmd(
        ids: list[str] | None = typer.Argument(
            None, metavar="[ID]...", help="Sessions to delete (see --list)."
        ),
        all_unsolved: bool = typer.Option(False, "--all-unsolved", help="Delete every unsolved session."),
    ) -> None:
        """Delete saved tutor sessions, by id or every unsolved one."""
        remove_sessions(ids or [], all_unsolved=all_unsolved)

    @tutor_app.command("check")
    def check_cmd(
        answer: str | None = typer.Option(None, "--answer", "-a", metavar="ANSWER", help="The answer to check."),
        key: str | None = typer.Option(None, "--key", "-k", metavar="KEY", help="The answer key."),
        pairs: str | None = typer.Option(None, "--pairs", "-p", metavar="FILE|-", help="One `answer<TAB>key` per line (further columns ignored; blank and # lines skipped)."),
        as_json: bool = typer.Option(False, "--json", help="JSON out: one object per pair, one per line."),
        timeout: float = typer.Option(5.0, "--timeout", min=0.01, max=3600, metavar="SECONDS", help="Seconds allowed per pair (0.01 to 3600)."),
    ) -> None:  # fmt: skip
        """Is an answer mathematically equivalent to the key? Exact: 0.5 = 1/2, but 3.14 is not pi.

        Exit codes: 0 every pair equivalent, 1 at least one not equivalent or unreadable, 2 usage error,
        3 the pairs file cannot be read.
        """
        code = run_check(answer, key, pairs, as_json=as_json, timeout_s=timeout)
        raise typer.Exit(code)

    app.add_typer(tutor_app, name="tutor")


def _settings(model: str | None, budget: str | None, prefill_think: bool | None, **remote: str | None) -> Any:
    from vibelocal.config import load_settings, parse_budget

    if budget is not None:
        parse_budget(budget)
    return load_settings({"model": model, "budget": budget, "prefill_think": prefill_think, **remote})


# --------------------------------------------------------------------------- tutor check


MAX_PAIRS_BYTES = 10_000_000
"""A pairs sheet larger than this (or a FIFO, /dev/zero) is refused before it is read."""


def read_pairs_text(source: str) -> str:
    """The pairs file as text; BadInputError (exit 3) when missing, special, too large, binary or not UTF-8."""
    from pathlib import Path

    from vibelocal.files import read_capped, read_stdin_capped
    from vibelocal.problem import decode_problem_bytes

    if source == "-":
        stream = getattr(sys.stdin, "buffer", None)
        return decode_problem_bytes(read_stdin_capped(stream, "pairs", MAX_PAIRS_BYTES), "stdin")
    return decode_problem_bytes(read_capped(Path(source), "pairs file", MAX_PAIRS_BYTES), source)


def iter_pairs(text: str) -> Iterator[tuple[int, str | None, str | None, str | None]]:
    """(line number, answer, key, error) for each non-blank, non-# line."""
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) < 2:
            yield number, line.strip(), None, f"line {number} has no TAB between answer and key"
        elif not fields[0].strip() or not fields[1].strip():
            yield number, fields[0].strip(), fields[1].strip(), f"line {number} has an empty answer or key"
        else:
            yield number, fields[0].strip(), fields[1].strip(), None


def run_check(
    answer: str | None, key: str | None, pairs: str | None, *, as_json: bool, timeout_s: float
) -> int:
    from vibelocal.answers.mathcheck import check

    if pairs is not None and (answer is not None or key is not None):
        raise UsageError("give either --pairs FILE or --answer and --key, not both")
    if pairs is None:
        if answer is None or key is None:
            raise UsageError("give --answer and --key, or --pairs FILE")
        result = check(answer, key, timeout_s=timeout_s)
        if as_json:
            print(json.dumps({"answer": answer, "key": key, **result.to_dict()}, ensure_ascii=False))
        else:
            print("equivalent" if result.equivalent else "not equivalent")
            if result.error:
                info(f"note: {result.error}")
        return 0 if result.equivalent else 1
    all_equal = True
    for number, a, k, error in iter_pairs(read_pairs_text(pairs)):
        row: dict[str, Any] = {"line": number, "answer": a, "key": k}
        if error is None:
            row.update(check(a or "", k or "", timeout_s=timeout_s).to_dict())
        else:
            row.update(equivalent=False, error=error, reason="malformed line")
        all_equal = all_equal and row["equivalent"]
        if as_json:
            print(json.dumps(row, ensure_ascii=False), flush=True)
        else:
            verdict = "equivalent" if row["equivalent"] else "not equivalent"
            print("\t".join([str(number), verdict, row.get("error") or ""]).rstrip("\t"), flush=True)
    return 0 if all_equal else 1


# --------------------------------------------------------------------------- tutor sessions


def remove_sessions(ids: list[str], *, all_unsolved: bool) -> None:
    from vibelocal.paths import get_paths
    from vibelocal.tutor.store import TutorStore

    if not ids and not all_unsolved:
        raise UsageError("give the session IDs to delete, or --all-unsolved (see: vibelocal tutor --list)")
    store = TutorStore(get_paths())
    doomed = [store.load(i) for i in ids]  # every id checked before anything is deleted
    if all_unsolved:
        doomed += [r for r in store.list() if r.outcome == "unsolved" and r.id not in ids]
    for r in doomed:
        store.remove(r.id)
        print(f"removed {r.id}  {r.outcome}  {r.title}")
    if not doomed:
        info("no unsolved tutor sessions to delete")


def _list_sessions(as_json: bool) -> None:
    from vibelocal.paths import get_paths
    from vibelocal.tutor.store import TutorStore

    store = TutorStore(get_paths())
    records = store.list()
    for path, aside in store.set_aside:
        info(f"note: tutor session file {path.name} was unreadable and was set aside as {aside.name}")
    if as_json:
        print_json(
            [
                {"id": r.id, "title": r.title, "outcome": r.outcome, "attempts": len(r.attempts),
                 "hints": len(r.hints), "created": r.created, "updated": r.updated, "source": r.source}
                for r in records
            ]
        )  # fmt: skip
        return
    if not records:
        info("no saved tutor sessions")
        return
    for r in records:
        print(
            f"{r.id}  {r.outcome:<8}  {_plural(len(r.attempts), 'attempt')}  {_plural(len(r.hints), 'hint')}  {escape_controls(r.title)}"
        )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class _QuietInput:
    """While the model works in the foreground, typed keys neither echo into the progress line nor pile up."""

    def __enter__(self) -> _QuietInput:
        self.saved = None
        if sys.stdin.isatty() and sys.stderr.isatty():
            try:
                import termios

                fd = sys.stdin.fileno()
                self.saved = termios.tcgetattr(fd)
                quiet = termios.tcgetattr(fd)
                quiet[3] &= ~termios.ECHO
                termios.tcsetattr(fd, termios.TCSANOW, quiet)
            except (ImportError, OSError, ValueError):
                self.saved = None
        return self

    def __exit__(self, *exc: object) -> None:
        if sys.stderr.isatty():
            print("\r\033[K", end="", file=sys.stderr, flush=True)
        if self.saved is not None:
            import termios

            fd = sys.stdin.fileno()
            termios.tcflush(fd, termios.TCIFLUSH)  # what was typed meanwhile is dropped, not answered
            termios.tcsetattr(fd, termios.TCSANOW, self.saved)


def _progress(label: str) -> Callable[[int], None]:
    tty = sys.stderr.isatty()

    def show(tokens: int) -> None:
        if tty and tokens % 8 == 0:
            print(f"\r{label}… {tokens} tokens", end="", file=sys.stderr, flush=True)

    return show


def _shown(text: str) -> str:
    """The problem as `solve` shows text: LaTeX as Unicode on a terminal, as written otherwise."""
    if not sys.stdout.isatty():
        return text
    from vibelocal.answers.latex import to_unicode

    return to_unicode(text)


def _open_tutor(session: Any, settings: Any, file: str | None, prompt: str | None, **kw: Any) -> Any:
    """The Tutor to work: resumed (with a new key when given) or started from FILE / -p; nothing saved yet."""
    from vibelocal.cli.problem_input import read_cli_problem
    from vibelocal.tutor.lesson import Tutor

    resume, key, options, voter = kw["resume"], kw["key"], kw["options"], kw.get("voter")
    if resume is not None:
        if file is not None or prompt is not None:
            raise UsageError("--resume continues a saved session; do not give FILE or -p with it")
        tutor = Tutor.resume(session, None if resume == "latest" else resume, options=options, voter=voter)
        if key is not None and key.strip():
            tutor.set_key(key)
        return tutor
    if file is None and prompt is None:
        raise UsageError("give a problem FILE (or - for stdin, or -p TEXT), --resume [ID] or --list")
    problem = read_cli_problem(file, prompt, kind="math")
    for warning in problem.warnings:
        info(f"warning: {escape_controls(warning, one_line=True)}")
    if session.find_installed() is None:  # say so before the student sees a problem nobody can tutor
        session.engine()
    return Tutor.start(session, problem, key=key, options=options, voter=voter)


def private_voter(session: Any, votes: int) -> Any:
    """The tutor's private vote through solve's path (cli/parallel.py): K sequences side by side where the engine
    forks, one after another otherwise, early stop either way; silent, as the student is typing meanwhile."""
    from vibelocal.answers.extract import TurnRecord
    from vibelocal.answers.votes import math_equivalence
    from vibelocal.cli.parallel import sample_vote

    def vote(messages: Any, generations: Any, control: Any) -> list[TurnRecord]:
        engine = session.engine(parallel=votes)

        def one(generation: Any) -> TurnRecord:
            record = TurnRecord()
            for event in engine.stream(messages, generation, control):
                record.add(event)
            return record

        equivalent = math_equivalence()
        return sample_vote(engine, messages, generations, kind="math", equivalent=equivalent, run_one=one,
                           note=lambda _text: None, cancel=control)  # fmt: skip

    return vote


def _begin(tutor: Any, resumed: bool) -> Any:
    """Show the problem, save the session, and start the private solve: in the background when a key is known."""
    from vibelocal.tutor.background import BackgroundSolve

    print(f"Problem:\n{_shown(escape_controls(tutor.record.problem))}\n")
    tutor.save()  # the student has seen it: from now on it is a session worth resuming
    if tutor.record.solution is not None:
        return None
    if tutor.record.key is not None:
        info("The model is solving it privately in the background: answer whenever you are ready "
             "(hints and the worked solution wait for it).")  # fmt: skip
        return BackgroundSolve(tutor).start()
    info("The model is solving the problem privately (its work stays hidden)…")
    try:
        with _QuietInput():
            tutor.solve(on_progress=_progress("solving privately"))
    except (ModelUnavailableError, ModelLoadError):
        if not tutor.record.attempts and not resumed:
            tutor.store.delete(tutor.record.id)  # nothing happened yet: leave no empty session behind
        raise
    return None


def _await(background: Any, what: str) -> None:
    """Hints and the solution need the private solve: wait for it, saying so."""
    if background is None:
        return
    if not background.done:
        info(
            f"The {what} needs the model's private solution; waiting for it ({background.tokens} tokens so far)…"
        )
    with _QuietInput():
        background.wait()


def _shown(text: str) -> str:
    """Model text for the terminal: LaTeX as Unicode (matrices and cases as aligned blocks) on a TTY, raw on a pipe."""
    if not sys.stdout.isatty():
        return text
    from vibelocal.answers.latex import to_unicode

    return to_unicode(text)


def run_session(
    settings: Any,
    file: str | None,
    *,
    key: str | None,
    resume: str | None,
    hint_budget: str,
    prompt: str | None = None,
    read_line: Callable[[str], str] = input,
    votes: int = 1,
) -> None:
    """The interactive loop: every verdict comes from the checker, every hint through the leak filter."""
    from vibelocal.tutor.lesson import TutorOptions

    if read_line is input and stdin_is_closed():
        raise UsageError("stdin is closed: the tutor reads your answers from it")
    session = make_session(settings)
    options = TutorOptions(solve_budget=settings.budget, hint_budget=hint_budget, solve_votes=votes)
    voter = private_voter(session, votes) if votes > 1 else None
    tutor = _open_tutor(session, settings, file, prompt, resume=resume, key=key, options=options, voter=voter)
    background = _begin(tutor, resumed=resume is not None)
    try:
        _converse(tutor, background, read_line)
    finally:
        if background is not None and not background.done:
            background.stop()
    tutor.save()
    info(
        f"Session {tutor.record.id} saved ({tutor.record.outcome}); resume: vibelocal tutor --resume {tutor.record.id}"
    )


def _converse(tutor: Any, background: Any, read_line: Callable[[str], str]) -> None:
    from vibelocal.tutor.lesson import HINT_LEVELS

    if tutor.key_unchecked:
        print("Note: the reference answer is the model's own; it was not checked by a person.")
    for a in tutor.record.attempts:
        print(f"(earlier attempt) {a.text}: {'correct' if a.correct else 'not yet'}")
    for h in tutor.record.hints:
        print(f"(earlier hint {h.level}) {h.text}")
    print("Type an answer, or: hint, solution, quit.")
    while True:
        try:
            line = read_line("answer> ").strip()
        except EOFError:
            print()
            return
        word = line.lower()
        if not line:
            continue
        if word in QUIT_WORDS:
            return
        if word in HINT_WORDS:
            _await(background, "hint")
            level = tutor.hints_used + 1
            title = HINT_LEVELS[min(level, len(HINT_LEVELS)) - 1][0]
            with _QuietInput():
                hint = tutor.hint(on_progress=_progress("writing a hint"))
            print(f"Hint {hint.level} ({title.lower()}): {_shown(hint.text)}")
            continue
        if word in SOLUTION_WORDS:
            _await(background, "worked solution")
            print("Worked solution:\n" + _shown(tutor.reveal()))
            return
        attempt = tutor.attempt(line)
        if attempt.correct:
            print(
                f"Correct! ({_plural(len(tutor.record.attempts), 'attempt')}, {_plural(tutor.hints_used, 'hint')})"
            )
            print("Type `solution` to see the worked solution, or `quit`.")
        else:
            print(
                "Not yet."
                + (f" ({attempt.error})" if attempt.error else "")
                + " Try again, or ask for a hint."
            )
