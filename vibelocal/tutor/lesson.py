"""The offline tutor: the model solves privately, the checker judges attempts, hints never give the answer away.

`Tutor` is a plain class with no terminal I/O; the CLI loop (`vibelocal tutor`) and the chat app's Tutor screen
both drive it. Every method that runs the model blocks (front ends call it from a worker thread) and saves the
session afterwards, so a session can always be resumed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from vibelocal.answers.mathcheck import check
from vibelocal.errors import NoAnswerError
from vibelocal.tutor.hints import Judge, filter_hint
from vibelocal.tutor.store import AttemptRecord, HintRecord, KeySource, TutorRecord, TutorStore
from vibelocal.types import ChatMessage, GenerationSettings, InstalledModel, ModelSpec, StreamEvent

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from vibelocal.answers.extract import TurnRecord
    from vibelocal.config import BudgetSpec
    from vibelocal.engine.control import TurnControl
    from vibelocal.paths import Paths
    from vibelocal.problem import Problem


class Session(Protocol):
    """The part of `vibelocal.session.Session` the tutor drives (it sits below the session and never imports it)."""

    paths: Paths
    model: InstalledModel | None
    spec: ModelSpec | None

    def engine(self, *, parallel: int = 1) -> Any: ...

    def budget(self, override: str | None = None) -> BudgetSpec: ...

    def generation_settings(
        self, *, budget: BudgetSpec | None = None, force_boxed: bool = False
    ) -> GenerationSettings: ...

    def stream(
        self,
        messages: Sequence[ChatMessage],
        settings: GenerationSettings,
        control: TurnControl | None = None,
    ) -> Iterator[StreamEvent]: ...


OnProgress = Callable[[int], None]
"""Called with the running count of generated tokens; the text itself never leaves this module."""

HINT_LEVELS: tuple[tuple[str, str], ...] = (
    ("What to notice", "Point out what to notice in the problem: the key fact, quantity or structure."),
    ("Which method", "Name the method, formula or idea that solves it, without applying it."),
    ("The next step", "Give the next concrete step to take, without finishing the calculation."),
    ("Almost there", "Walk through the solution up to, but not including, the final computation."),
)
"""Hints get more specific with each request; past the last level the last one repeats with a further step."""

GENERIC_HINTS = (
    "Re-read the problem and write down what is given and what is asked.",
    "Think of a problem you have solved that looks like this one; which tool did it use?",
    "Write the first equation or expression the problem describes, then simplify it.",
    "Check each step of your work for an arithmetic slip.",
)
"""Used only when the model writes no usable hint (the record says so)."""

TUTOR_SYSTEM = (
    "You are a patient math tutor. You know the solution but the student must find the answer themselves. "
    "Never state the final answer or any value equal to it, and never finish the final computation."
)


@dataclass(frozen=True)
class TutorOptions:
    """How the tutor uses the model and the checker."""

    solve_budget: str | None = None
    """Thinking budget for the private solve (None: the user's `budget` setting)."""
    hint_budget: str = "1k"
    """Thinking budget for each hint."""
    hint_tokens: int = 200
    """Most answer tokens a hint may take."""
    hint_tries: int = 3
    """Hints that leak the answer are regenerated this many times in all before the leaks are redacted."""
    check_timeout_s: float | None = 5.0
    """Time limit for checking one attempt or one hint span (see mathcheck)."""
    solve_votes: int = 1
    """Samples of the private solve; with more than one (and a voter) the key is the answer most agree on."""


Voter = Callable[[list[ChatMessage], list[GenerationSettings], "TurnControl | None"], list["TurnRecord"]]
"""Runs a vote's samples and returns one record each, in order: the front end's side-by-side path
(cli/parallel.py `sample_vote`: batched where the engine forks, early stop), injected because the tutor sits
below the front ends."""


def run_turn(
    session: Session,
    messages: list[ChatMessage],
    budget: str | None,
    *,
    max_answer_tokens: int | None = None,
    force_boxed: bool = False,
    control: TurnControl | None = None,
    on_progress: OnProgress | None = None,
) -> tuple[str, str]:
    """One hidden model turn through the session: (answer text, stop reason). Thinking is never kept."""
    session.engine()
    settings = session.generation_settings(budget=session.budget(budget), force_boxed=force_boxed)
    if max_answer_tokens is not None:
        settings = replace(settings, max_answer_tokens=max_answer_tokens)
    answer: list[str] = []
    reason = "error"
    tokens = 0
    for event in session.stream(messages, settings, control):
        if event.kind == "answer":
            answer.append(event.text)
        elif event.kind == "reclassify":  # a bare </think>: the answer so far was reasoning
            answer.clear()
        elif event.kind == "done":
            reason = event.stop_reason or "answered"
        if event.kind in ("thinking", "answer") and on_progress is not None:
            tokens += 1
            on_progress(tokens)
    return "".join(answer).strip(), reason


class Tutor:
    """One tutoring session over a TutorRecord; `phase` says what the front end should offer next."""

    def __init__(
        self,
        session: Session,
        record: TutorRecord,
        *,
        options: TutorOptions | None = None,
        store: TutorStore | None = None,
        judge: Judge | None = None,
        voter: Voter | None = None,
    ) -> None:
        self.session = session
        self.record = record
        self.options = options or TutorOptions()
        self._voter = voter
        self.store = store if store is not None else TutorStore(session.paths)
        self._judge = judge
        self._lock = threading.RLock()  # a background solve and the student's attempts both save

    # ------------------------------------------------------------------ creation

    @classmethod
    def start(
        cls,
        session: Session,
        problem: Problem | str,
        *,
        key: str | None = None,
        **kw,
    ) -> Tutor:
        """A new session; the key is `key` (a flag), else the problem's `answer:` front matter, else the model's."""
        text, source, meta = (
            (problem, "-", {}) if isinstance(problem, str) else (problem.text, problem.source, problem.meta)
        )
        key_source: KeySource | None = None
        if key is not None and key.strip():
            key_source = "flag"
        elif meta.get("answer", "").strip():
            key, key_source = meta["answer"], "front matter"
        else:
            key = None
        record = TutorRecord(
            problem=text, source=source, key=key.strip() if key else None, key_source=key_source
        )
        return cls(session, record, **kw)

    @classmethod
    def resume(cls, session: Session, session_id: str | None = None, **kw) -> Tutor:
        """A saved session by id, or the newest unfinished one."""
        from vibelocal.errors import BadInputError

        store: TutorStore = kw.get("store") or TutorStore(session.paths)
        record = store.load(session_id) if session_id else store.latest_unfinished()
        if record is None:
            raise BadInputError(
                "no unfinished tutor session to resume", hint="start one: vibelocal tutor FILE"
            )
        kw["store"] = store
        return cls(session, record, **kw)

    # ------------------------------------------------------------------ state

    @property
    def phase(self) -> str:
        """`needs_solution` (run `solve`), `working`, `solved` or `revealed`."""
        if self.record.key is None:
            return "needs_solution"
        if self.record.outcome == "solved":
            return "solved"
        return "revealed" if self.record.revealed else "working"

    @property
    def key_unchecked(self) -> bool:
        """True when the reference answer is the model's own, not checked by a person."""
        return self.record.key_source == "model"

    @property
    def hints_used(self) -> int:
        return len(self.record.hints)

    def save(self) -> None:
        with self._lock:
            self.store.save(self.record)

    def set_key(self, key: str) -> None:
        """A key given by a person (`tutor --resume ID --key K`): earlier attempts are judged again against it."""
        with self._lock:
            self.record.key, self.record.key_source = key.strip(), "flag"
            for a in self.record.attempts:
                result = check(a.text, self.record.key, timeout_s=self.options.check_timeout_s)
                a.correct, a.normalized, a.error = result.equivalent, result.answer_normalized, result.error
            if self.record.outcome != "revealed":
                self.record.outcome = "solved" if any(a.correct for a in self.record.attempts) else "unsolved"
            self.save()

    # ------------------------------------------------------------------ the model's private solve

    def solve(self, *, control: TurnControl | None = None, on_progress: OnProgress | None = None) -> None:
        """Let the model solve the problem privately; its answer becomes the key when none was given."""
        from vibelocal.answers.extract import extract_final_answer
        from vibelocal.problem import Problem, build_messages

        votes = self.options.solve_votes if self._voter is not None else 1
        self.session.engine(parallel=votes)
        messages = build_messages(Problem(text=self.record.problem, kind="math"), self.session.spec)
        if votes > 1:
            answer, reason = self._vote(messages, votes, control)
        else:
            answer, reason = run_turn(
                self.session,
                messages,
                self.options.solve_budget,
                force_boxed=True,
                control=control,
                on_progress=on_progress,
            )
        if control is not None and control.cancelled:
            return  # the student left: keep no half solution
        with self._lock:
            self.record.model = self.session.model.label if self.session.model else "no model"
            self.record.solution = answer or None
            if self.record.key is None:
                final = extract_final_answer(answer, "math") if answer else None
                if not final:
                    self.save()
                    raise NoAnswerError(
                        f"the model gave no final answer to check against ({reason})",
                        hint=f"give one: vibelocal tutor --resume {self.record.id} --key ANSWER, or try a larger --budget",
                    )
                self.record.key, self.record.key_source = final, "model"
            self.save()

    def _vote(self, messages: list[ChatMessage], votes: int, control: TurnControl | None) -> tuple[str, str]:
        """The private solve as a vote, as `solve --votes K` runs it: (the winning sample's answer, its stop
        reason); the first sample's stop reason when no sample has a final answer."""
        import random

        from vibelocal.answers.votes import CUT, group_answers, math_equivalence, vote_seeds

        assert self._voter is not None
        settings = self.session.generation_settings(
            budget=self.session.budget(self.options.solve_budget), force_boxed=True
        )
        base = settings.seed if settings.seed is not None else random.SystemRandom().randrange(2**31)
        generations = [replace(settings, seed=seed, reuse_prefix=False) for seed in vote_seeds(base, votes)]
        records = self._voter(messages, generations, control)
        cut = [i for i, r in enumerate(records) if r.stop_reason == CUT]
        finals = [None if i in cut else r.final_answer("math") for i, r in enumerate(records)]
        winner = group_answers(finals, math_equivalence(), cut=cut).winner
        if winner is None:
            return "", (records[0].stop_reason if records else None) or "error"
        best = records[winner.members[0]]
        return best.answer.strip(), best.stop_reason or "answered"

    # ------------------------------------------------------------------ the student's attempts

    def attempt(self, text: str) -> AttemptRecord:
        """Judge one attempt with the checker (never the model); saved."""
        if self.record.key is None:
            raise RuntimeError("solve() must run before attempts can be checked")
        result = check(text, self.record.key, timeout_s=self.options.check_timeout_s)
        attempt = AttemptRecord(
            text=text, correct=result.equivalent, normalized=result.answer_normalized, error=result.error
        )
        with self._lock:
            self.record.attempts.append(attempt)
            if attempt.correct and self.record.outcome == "unsolved":
                self.record.outcome = "solved"
            self.save()
        return attempt

    # ------------------------------------------------------------------ hints

    def hint_messages(self, level: int, *, retry_note: str = "") -> list[ChatMessage]:
        """The prompt for hint number `level` (1-based): problem, hidden solution, hints so far, the level."""
        title, instruction = HINT_LEVELS[min(level, len(HINT_LEVELS)) - 1]
        parts = [f"Problem:\n{self.record.problem}"]
        if self.record.solution:
            parts.append(f"Worked solution (hidden from the student):\n{self.record.solution}")
        parts.append(f"Final answer (secret, never reveal it): {self.record.key}")
        if self.record.hints:
            parts.append("Hints already given:\n" + "\n".join(f"- {h.text}" for h in self.record.hints))
        wrong = [a.text for a in self.record.attempts if not a.correct][-3:]
        if wrong:
            parts.append("The student's wrong attempts so far: " + "; ".join(wrong))
        more = " Go one step further than the hints already given." if level > len(HINT_LEVELS) else ""
        parts.append(
            f"Write hint {level} ({title}). {instruction}{more} Reply with the hint only, in one or two sentences."
        )
        if retry_note:
            parts.append(retry_note)
        return [ChatMessage("system", TUTOR_SYSTEM), ChatMessage("user", "\n\n".join(parts))]

    def hint(
        self, *, control: TurnControl | None = None, on_progress: OnProgress | None = None
    ) -> HintRecord:
        """The next, more specific hint: generated from the hidden solution, regenerated or redacted if it leaks."""
        if self.record.key is None:
            raise RuntimeError("solve() must run before hints can be given")
        level = len(self.record.hints) + 1
        best, best_leaks, retry_note = "", -1, ""
        tries = 0
        while tries < max(self.options.hint_tries, 1):
            tries += 1
            text, _ = run_turn(
                self.session,
                self.hint_messages(level, retry_note=retry_note),
                self.options.hint_budget,
                max_answer_tokens=self.options.hint_tokens,
                control=control,
                on_progress=on_progress,
            )
            text = _clean_hint(text)
            if not text:
                continue
            filtered = filter_hint(text, self.record.key, self.record.problem, judge=self._check_span)
            if best_leaks < 0 or len(filtered.leaks) < best_leaks:
                best, best_leaks = filtered.text, len(filtered.leaks)
            if not filtered.leaked or (control is not None and control.cancelled):
                break
            retry_note = "Your previous hint gave the answer away. Write a different hint that does not."
        if not best:
            best, best_leaks = GENERIC_HINTS[min(level, len(GENERIC_HINTS)) - 1], 0
        record = HintRecord(level=level, text=best, redacted=max(best_leaks, 0), tries=tries)
        self.record.hints.append(record)
        self.save()
        return record

    def _check_span(self, candidate: str, reference: str) -> bool:
        if self._judge is not None:
            return self._judge(candidate, reference)
        return check(candidate, reference, timeout_s=self.options.check_timeout_s).equivalent

    # ------------------------------------------------------------------ the end

    def reveal(self) -> str:
        """The worked solution (and the key); an unsolved session ends as `revealed`."""
        self.record.revealed = True
        if self.record.outcome == "unsolved":
            self.record.outcome = "revealed"
        self.save()
        solution = self.record.solution or "(the model wrote no worked solution)"
        return f"{solution}\n\nAnswer: {self.record.key}"


def _clean_hint(text: str) -> str:
    text = text.strip().strip('"').strip()
    for prefix in ("hint:", "**hint:**", "**hint**:"):
        if text.lower().startswith(prefix):
            text = text[len(prefix) :].strip()
    return text
