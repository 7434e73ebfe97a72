"""The tutor core with a scripted engine: private solve, checked attempts, filtered hints, saved sessions."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest

from vibelocal.config import Settings
from vibelocal.engine.scripted import Script, ScriptedEngine
from vibelocal.errors import BadInputError, NoAnswerError
from vibelocal.problem import Problem
from vibelocal.session import Session
from vibelocal.tutor.hints import REDACTED, candidates, filter_hint
from vibelocal.tutor.lesson import GENERIC_HINTS, TUTOR_SYSTEM, Tutor, TutorOptions
from vibelocal.tutor.store import TutorStore
from vibelocal.types import ChatMessage

PROBLEM = "A box holds 6 rows of 7 eggs. How many eggs are in the box?"
SOLUTION = (
    "There are 6 rows with 7 eggs each, so we multiply: 6 \\times 7 = 42.\n\n**Final Answer** \\boxed{42}"
)


class TutorScript:
    """Solves with SOLUTION; answers hint prompts with the next of `hints` (then the last one again)."""

    def __init__(
        self, hints: Sequence[str] = ("Count the eggs in one row first.",), solution: str = SOLUTION
    ):
        self.hints = list(hints)
        self.solution = solution
        self.hint_prompts: list[str] = []

    def __call__(self, messages: Sequence[ChatMessage]) -> Script:
        if messages[0].role == "system" and messages[0].content == TUTOR_SYSTEM:
            self.hint_prompts.append(messages[-1].content)
            text = self.hints[min(len(self.hint_prompts), len(self.hints)) - 1]
            return Script(thinking="Let me think of a hint that keeps the answer secret.", answer=text)
        return Script(thinking="Rows times eggs per row.", answer=self.solution)


@pytest.fixture
def make_session(smollm2_path):
    """A session whose 'model' is the SmolLM2 file but whose engine is scripted (no inference)."""

    def make(script: TutorScript) -> Session:
        engine = ScriptedEngine(script)
        return Session(Settings(model=str(smollm2_path), budget="low"), engine_loader=lambda m, p, s: engine)

    return make


def test_key_from_front_matter_and_checked_attempts(make_session):
    session = make_session(TutorScript())
    tutor = Tutor.start(session, Problem(PROBLEM, "math", {"answer": "42"}, "eggs.md"))
    assert tutor.phase == "working" and tutor.record.key_source == "front matter"
    tutor.solve()
    assert tutor.record.solution and "\\boxed{42}" in tutor.record.solution
    assert not tutor.key_unchecked
    first = tutor.attempt("41")
    assert not first.correct and tutor.phase == "working"
    second = tutor.attempt(r"\frac{84}{2}")
    assert second.correct and tutor.phase == "solved"
    saved = TutorStore(session.paths).load(tutor.record.id)
    assert [a.correct for a in saved.attempts] == [False, True]
    assert saved.outcome == "solved" and saved.source == "eggs.md"


def test_flag_key_beats_front_matter(make_session):
    tutor = Tutor.start(make_session(TutorScript()), Problem(PROBLEM, "math", {"answer": "41"}), key="42")
    assert (tutor.record.key, tutor.record.key_source) == ("42", "flag")


def test_without_a_key_the_models_answer_is_the_unchecked_reference(make_session):
    tutor = Tutor.start(make_session(TutorScript()), PROBLEM)
    assert tutor.phase == "needs_solution"
    progress: list[int] = []
    tutor.solve(on_progress=progress.append)
    assert progress and progress == sorted(progress)
    assert tutor.record.key == "42" and tutor.key_unchecked
    assert tutor.attempt("forty-two").correct


def test_no_answer_and_no_key_is_an_error(make_session):
    tutor = Tutor.start(make_session(TutorScript(solution="I am not sure.")), PROBLEM)
    with pytest.raises(NoAnswerError):
        tutor.solve()
    assert tutor.phase == "needs_solution"


LEAKY_HINTS = [
    "The answer is 42.",
    r"You will get $\frac{84}{2}$, which is forty-two.",
    r"So $x = 42$; in other words 4.2 \times 10^1 or 42.0 eggs.",
]


def test_leaking_hints_are_regenerated_then_redacted(make_session):
    script = TutorScript(hints=LEAKY_HINTS)
    tutor = Tutor.start(make_session(script), PROBLEM, key="42")
    tutor.solve()
    hint = tutor.hint()
    assert hint.tries == 3 and len(script.hint_prompts) == 3
    assert "gave the answer away" in script.hint_prompts[1]
    assert hint.redacted >= 1 and REDACTED in hint.text
    for leak in ("42", "84", "forty", "4.2"):
        assert leak not in hint.text
    for number in re.findall(r"\d+(?:\.\d+)?", hint.text):
        assert not tutor._check_span(number, "42")


def test_a_clean_retry_is_used_as_is(make_session):
    script = TutorScript(hints=["It is 42.", "Count one row, then think about how many rows there are."])
    tutor = Tutor.start(make_session(script), PROBLEM, key="42")
    tutor.solve()
    hint = tutor.hint()
    assert (hint.tries, hint.redacted) == (2, 0)
    assert hint.text == "Count one row, then think about how many rows there are."


def test_hints_are_progressive_and_remember_earlier_ones(make_session):
    script = TutorScript(
        hints=["Notice the rows.", "Use multiplication.", "Multiply 6 by 7.", "Write 6 x 7 out."]
    )
    tutor = Tutor.start(make_session(script), PROBLEM, key="42")
    tutor.solve()
    tutor.attempt("36")
    texts = [tutor.hint().text for _ in range(5)]
    assert texts[:3] == ["Notice the rows.", "Use multiplication.", "Multiply 6 by 7."]
    assert "What to notice" in script.hint_prompts[0]
    assert "Which method" in script.hint_prompts[1] and "- Notice the rows." in script.hint_prompts[1]
    assert "The next step" in script.hint_prompts[2]
    assert "Go one step further" in script.hint_prompts[4]
    assert "wrong attempts so far: 36" in script.hint_prompts[0]
    assert "\\boxed{42}" in script.hint_prompts[0]  # generated from the hidden solution
    assert [h.level for h in tutor.record.hints] == [1, 2, 3, 4, 5]


def test_empty_model_hint_falls_back_to_a_generic_one(make_session):
    tutor = Tutor.start(
        make_session(TutorScript(hints=[""])), PROBLEM, key="42", options=TutorOptions(hint_tries=2)
    )
    tutor.solve()
    assert tutor.hint().text == GENERIC_HINTS[0]


def test_reveal_and_resume(make_session):
    session = make_session(TutorScript())
    tutor = Tutor.start(session, PROBLEM, key="42")
    tutor.solve()
    tutor.attempt("40")
    tutor.hint()
    resumed = Tutor.resume(session)  # the newest unfinished session
    assert resumed.record.id == tutor.record.id
    assert resumed.hints_used == 1 and resumed.record.attempts[0].text == "40"
    shown = resumed.reveal()
    assert "6 \\times 7" in shown and shown.endswith("Answer: 42")
    assert resumed.phase == "revealed"
    assert TutorStore(session.paths).latest_unfinished() is None
    with pytest.raises(BadInputError, match="no unfinished tutor session"):
        Tutor.resume(session)
    assert Tutor.resume(session, tutor.record.id).record.outcome == "revealed"


def test_store_rejects_bad_ids_and_skips_broken_files(make_session):
    session = make_session(TutorScript())
    store = TutorStore(session.paths)
    with pytest.raises(BadInputError, match="not a tutor session id"):
        store.load("../etc/passwd")
    with pytest.raises(BadInputError, match="no saved tutor session"):
        store.load("20240101-000000-abcd")
    store.dir.mkdir(parents=True)
    (store.dir / "20240101-000000-abcd.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(BadInputError, match="cannot be read"):
        store.load("20240101-000000-abcd")
    assert store.list() == []


@pytest.mark.parametrize(
    ("hint", "reference", "kept", "hidden"),
    [
        ("Multiply 6 \\times 7 as in the problem.", "42", "6 \\times 7", None),
        ("Forty-two is it.", "42", "is it", "Forty-two"),
        ("You get 2 \\cdot 21.", "42", "You get", "21"),
        ("The correct option is (C).", "C", "The correct option is", "(C)"),
        ("Half: 0.5, i.e. \\dfrac{1}{2}.", r"\frac12", "Half", "0.5"),
        ("The solutions are 2 and 3.", r"\{2, 3\}", "The solutions are", "2 and 3"),
        ("Use 3.14 for pi in a rough check.", r"\pi", "3.14", None),
    ],
)
def test_filter_hint_table(hint, reference, kept, hidden):
    problem = "What is 6 \\times 7?" if reference == "42" else ""
    filtered = filter_hint(hint, reference, problem)
    assert kept in filtered.text
    if hidden is None:
        assert not filtered.leaked
    else:
        assert hidden not in filtered.text and filtered.leaked


def test_a_command_span_ends_at_its_own_closing_brace():
    hint = r"Try \frac{\left\{ 1 \right.}{2} first, then 7."
    assert r"\frac{\left\{ 1 \right.}{2}" in [hint[s:e] for s, e in candidates(hint)]


@pytest.mark.real_model
@pytest.mark.slow
def test_end_to_end_with_the_real_model(smollm2_path):
    """SmolLM2 through the real engine: private solve, a filtered hint, checked attempts, a saved session."""
    settings = Settings(
        model=str(smollm2_path),
        prefill_think=True,
        budget="16",
        answer_budget=24,
        seed=7,
        temperature=0.0,
        ctx=1024,
    )
    session = Session(settings)
    options = TutorOptions(solve_budget="16", hint_budget="16", hint_tokens=24, hint_tries=2)
    problem = Problem("What is 6 times 7?", "math", {"answer": "42"}, "six-sevens.md")
    try:
        tutor = Tutor.start(session, problem, options=options)
        progress: list[int] = []
        tutor.solve(on_progress=progress.append)
        assert progress, "the real model generated nothing"
        assert tutor.record.model and "SmolLM2" in tutor.record.model
        assert not tutor.attempt("41").correct
        hint = tutor.hint()
        assert hint.text and hint.level == 1
        assert not filter_hint(hint.text, "42", problem.text).leaked
        assert not re.search(r"(?<![\d.])42(?![\d.])", hint.text)
        assert tutor.attempt("6 \\times 7").correct
        saved = TutorStore(session.paths).load(tutor.record.id)
        assert saved.outcome == "solved" and len(saved.hints) == 1 and saved.solution == tutor.record.solution
    finally:
        session.close()
