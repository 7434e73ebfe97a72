"""`vibelocal tutor check` (exit codes, --pairs with malformed lines) and the interactive `vibelocal tutor FILE`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

import vibelocal.cli.tutor as tutor_cli
from vibelocal.cli import app
from vibelocal.engine.scripted import Script, ScriptedEngine
from vibelocal.errors import NoAnswerError
from vibelocal.session import Session
from vibelocal.tutor.lesson import TUTOR_SYSTEM
from vibelocal.tutor.store import TutorStore

THINKING = "SECRET-THINKING rows times eggs."
SOLUTION = "Six rows of seven: 6 \\times 7 = 42. \\boxed{42}"
PROBLEM_FILE = "---\nanswer: 42\n---\nA box holds 6 rows of 7 eggs. How many eggs are in the box?\n"


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vibelocal", *args],
        capture_output=True,
        text=True,
        input=stdin,
        env=os.environ,
        timeout=120,
    )


# --------------------------------------------------------------------------- tutor check


def test_check_single_pair_exit_codes():
    runner = CliRunner()
    same = runner.invoke(app, ["tutor", "check", "--answer", "0.5", "--key", r"\frac{1}{2}"])
    assert (same.exit_code, same.stdout) == (0, "equivalent\n")
    differ = runner.invoke(app, ["tutor", "check", "--answer", "3.14", "--key", r"\pi", "--json"])
    assert differ.exit_code == 1
    row = json.loads(differ.stdout)
    assert row["equivalent"] is False and row["error"] is None
    assert (row["answer"], row["key"], row["answer_normalized"]) == ("3.14", r"\pi", "3.14")


def test_check_pairs_json_one_object_per_line_in_order(tmp_path):
    sheet = tmp_path / "sheet.tsv"
    sheet.write_text(
        "# answer\tkey\n"
        "0.5\t1/2\n"
        "no tab on this line\n"
        "\n"
        "3.14\t\\pi\tAda\n"  # a further column (a name) is ignored
        "\t5\n"
        "\\frac{\t1\n"
        "x = 3\t3\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["tutor", "check", "--pairs", str(sheet), "--json"])
    assert result.exit_code == 1
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["line"] for r in rows] == [2, 3, 5, 6, 7, 8]
    assert [r["equivalent"] for r in rows] == [True, False, False, False, False, True]
    assert "no TAB" in rows[1]["error"]
    assert rows[2]["error"] is None and rows[2]["key"] == "\\pi"
    assert "empty" in rows[3]["error"]
    assert "could not read the answer" in rows[4]["error"]
    assert all("equivalent" in r for r in rows)


def test_check_pairs_gives_a_reason_for_every_refusal(tmp_path):
    sheet = tmp_path / "reasons.tsv"
    rows_in = [
        ("x = 3, x = 1 \\pm \\sqrt{2}", "1", "list vs single value"),
        ("3.14", "\\pi", "approximation of an exact value"),
        ("x = 7 = 11", "11", "inconsistent chain"),
        ("1 1/2", "1", "not equal"),
        ("4 2", "42", "numbers side by side"),
        ("no tab", None, "malformed line"),
    ]
    sheet.write_text("".join(a + (f"\t{k}" if k else "") + "\n" for a, k, _ in rows_in), encoding="utf-8")
    result = CliRunner().invoke(app, ["tutor", "check", "--pairs", str(sheet), "--json"])
    assert result.exit_code == 1
    rows = [json.loads(line) for line in result.stdout.splitlines()]  # still one JSON object per line
    assert len(rows) == len(rows_in)
    for row, (_, _, reason) in zip(rows, rows_in, strict=True):
        assert row["equivalent"] is False and row["reason"].startswith(reason), row


def test_check_pairs_all_equal_is_exit_0_and_plain_output(tmp_path):
    sheet = tmp_path / "ok.tsv"
    sheet.write_text("1/2\t0.5\n(1,2)\t\\left(1, 2\\right)\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["tutor", "check", "--pairs", str(sheet)])
    assert result.exit_code == 0
    assert result.stdout.splitlines() == ["1\tequivalent", "2\tequivalent"]


def test_check_pairs_from_stdin():
    result = CliRunner().invoke(app, ["tutor", "check", "--pairs", "-", "--json"], input="2\t4/2\n")
    assert result.exit_code == 0 and json.loads(result.stdout)["equivalent"] is True


def test_bad_pairs_file_and_usage_are_one_stderr_line(tmp_path):
    binary = tmp_path / "sheet.tsv"
    binary.write_bytes(b"1\t1\n\x00\x01")
    for args, code, words in [
        (["--pairs", str(tmp_path / "missing.tsv")], 3, "pairs file not found"),
        (["--pairs", str(binary)], 3, "binary"),
        (["--pairs", str(tmp_path)], 3, "is a directory"),
        (["--answer", "1"], 2, "give --answer and --key"),
        (["--answer", "1", "--key", "1", "--pairs", "x"], 2, "not both"),
    ]:
        out = run("tutor", "check", *args)
        assert out.returncode == code, (args, out.stderr)
        assert out.stdout == ""
        assert len(out.stderr.strip().splitlines()) == 1 and words in out.stderr
        assert "Traceback" not in out.stderr


# --------------------------------------------------------------------------- the interactive tutor


class Script2:
    """Solves privately; hints first leak the answer, then are clean."""

    def __init__(self) -> None:
        self.hints = 0

    def __call__(self, messages) -> Script:
        if messages[0].content == TUTOR_SYSTEM:
            self.hints += 1
            text = "It is 42." if self.hints == 1 else "Count the eggs in one row, then the rows."
            return Script(thinking=THINKING, answer=text)
        return Script(thinking=THINKING, answer=SOLUTION)


@pytest.fixture
def scripted(monkeypatch, smollm2_path):
    engine = ScriptedEngine(Script2())

    def make(settings):
        settings = settings.model_copy(update={"model": str(smollm2_path)})
        return Session(settings, engine_loader=lambda m, p, s: engine)

    monkeypatch.setattr(tutor_cli, "make_session", make)
    return engine


def test_interactive_session_hides_the_work_checks_hints_and_saves(tmp_path, scripted):
    problem = tmp_path / "eggs.md"
    problem.write_text(PROBLEM_FILE, encoding="utf-8")
    result = CliRunner().invoke(app, ["tutor", str(problem)], input="41\nhint\n\\frac{84}{2}\nsolution\n")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "SECRET-THINKING" not in result.output
    before_solution = out.split("Worked solution")[0]
    assert "42" not in before_solution and "boxed" not in before_solution
    assert "Not yet." in out and "Hint 1 (what to notice): Count the eggs" in out
    assert "Correct! (2 attempts, 1 hint)" in out
    assert "\\boxed{42}" in out.split("Worked solution")[1]
    assert "not checked by a person" not in out
    record = TutorStore(scripted_paths()).list()[0]
    assert record.outcome == "solved" and record.key_source == "front matter"
    assert record.hints[0].tries == 2 and [a.correct for a in record.attempts] == [False, True]


def scripted_paths():
    from vibelocal.paths import get_paths

    return get_paths()


def test_model_key_is_flagged_then_resume_and_list(tmp_path, scripted):
    problem = tmp_path / "eggs.md"
    problem.write_text("A box holds 6 rows of 7 eggs. How many eggs?\n", encoding="utf-8")
    runner = CliRunner()
    first = runner.invoke(app, ["tutor", str(problem)], input="40\n")  # EOF: saved, unfinished
    assert first.exit_code == 0, first.output
    assert "not checked by a person" in first.stdout
    record = TutorStore(scripted_paths()).list()[0]
    assert record.outcome == "unsolved" and record.key == "42" and record.key_source == "model"

    listed = runner.invoke(app, ["tutor", "--list", "--json"])
    assert [r["id"] for r in json.loads(listed.stdout)] == [record.id]

    again = runner.invoke(app, ["tutor", "-r"], input="hint\nforty-two\nquit\n")
    assert again.exit_code == 0, again.output
    assert "(earlier attempt) 40: not yet" in again.stdout
    assert "Correct!" in again.stdout
    resumed = TutorStore(scripted_paths()).load(record.id)
    assert resumed.outcome == "solved" and len(resumed.hints) == 1 and len(resumed.attempts) == 2


def test_resume_unknown_id_is_bad_input():
    out = run("tutor", "--resume", "20240101-000000-abcd")
    assert out.returncode == 3 and "no saved tutor session" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_missing_problem_file_is_bad_input(tmp_path):
    out = run("tutor", str(tmp_path / "nope.md"))
    assert out.returncode == 3 and "problem file not found" in out.stderr


def test_model_not_installed_is_exit_4_and_leaves_no_session(tmp_path):
    problem = tmp_path / "p.md"
    problem.write_text("What is 2+2?\n", encoding="utf-8")
    out = run("tutor", str(problem), stdin="")
    assert out.returncode == 4, out.stderr
    assert "not installed" in out.stderr and "Traceback" not in out.stderr
    assert TutorStore(scripted_paths()).list() == []


# --------------------------------------------------------------------------- sessions: rm, resume --key, answers first


def _run_tutor(smollm2_path, engine, read_line, **kw):
    from vibelocal.config import load_settings

    settings = load_settings({"model": str(smollm2_path)})
    session = Session(settings, engine_loader=lambda m, p, s: engine)
    original = tutor_cli.make_session
    tutor_cli.make_session = lambda _settings: session
    try:
        tutor_cli.run_session(settings, kw.pop("file", None), hint_budget="1k", read_line=read_line, **kw)
    finally:
        tutor_cli.make_session = original


def test_with_a_key_answers_are_judged_while_the_private_solve_still_runs(tmp_path, smollm2_path, capsys):
    import threading

    release = threading.Event()
    seen_unsolved = []

    def scripter(messages):
        if messages[0].content == TUTOR_SYSTEM:
            return Script(answer="Count the eggs in one row first.")
        assert release.wait(30), "the test never released the private solve"
        return Script(thinking=THINKING, answer=SOLUTION)

    engine = ScriptedEngine(scripter)
    replies = iter(["41", "42", "hint", "quit"])

    def read_line(_prompt):
        reply = next(replies)
        if reply == "hint":  # two answers judged, and the model has not been allowed to finish
            seen_unsolved.append(TutorStore(scripted_paths()).list()[0].solution is None)
            release.set()
        return reply

    problem = tmp_path / "eggs.md"
    problem.write_text("A box holds 6 rows of 7 eggs. How many eggs?\n", encoding="utf-8")
    _run_tutor(smollm2_path, engine, read_line, file=str(problem), key="42", resume=None)
    out = capsys.readouterr()
    assert seen_unsolved == [True]
    assert "Not yet." in out.out and "Correct! (2 attempts, 0 hints)" in out.out
    assert "solving it privately in the background" in out.err
    assert "Hint 1 (what to notice): Count the eggs in one row first." in out.out
    record = TutorStore(scripted_paths()).list()[0]
    assert record.outcome == "solved" and record.solution == SOLUTION and record.key_source == "flag"


def test_hints_wait_for_the_background_solve_and_say_so(tmp_path, smollm2_path, capsys):
    import threading

    release = threading.Event()

    def scripter(messages):
        if messages[0].content == TUTOR_SYSTEM:
            return Script(answer="Think about rows.")
        release.wait(30)
        return Script(thinking=THINKING, answer=SOLUTION)

    def read_line(_prompt, replies=iter(["hint", "quit"])):
        reply = next(replies)
        if reply == "hint":
            threading.Timer(0.2, release.set).start()
        return reply

    _run_tutor(
        smollm2_path,
        ScriptedEngine(scripter),
        read_line,
        prompt="6 rows of 7 eggs: how many?",
        key="42",
        resume=None,
    )
    out = capsys.readouterr()
    assert "The hint needs the model's private solution; waiting for it" in out.err
    assert "Hint 1 (what to notice): Think about rows." in out.out


def test_resume_with_a_key_sets_it_and_judges_earlier_attempts_again(tmp_path, scripted):
    problem = tmp_path / "eggs.md"
    problem.write_text("A box holds 6 rows of 7 eggs. How many eggs?\n", encoding="utf-8")
    runner = CliRunner()
    assert runner.invoke(app, ["tutor", str(problem)], input="40\n").exit_code == 0  # the model's key: 42
    record = TutorStore(scripted_paths()).list()[0]
    assert record.key_source == "model" and record.attempts[0].correct is False
    fixed = runner.invoke(app, ["tutor", "--resume", record.id, "--key", "40"], input="quit\n")
    assert fixed.exit_code == 0, fixed.output
    assert "(earlier attempt) 40: correct" in fixed.stdout and "not checked by a person" not in fixed.stdout
    again = TutorStore(scripted_paths()).load(record.id)
    assert (again.key, again.key_source, again.outcome) == ("40", "flag", "solved")


def test_tutor_rm_by_id_and_all_unsolved(tmp_path, scripted):
    problem = tmp_path / "eggs.md"
    problem.write_text(PROBLEM_FILE, encoding="utf-8")
    runner = CliRunner()
    for answers in ("42\nquit\n", "1\n", "2\n"):
        assert runner.invoke(app, ["tutor", str(problem)], input=answers).exit_code == 0
    records = TutorStore(scripted_paths()).list()
    assert sorted(r.outcome for r in records) == ["solved", "unsolved", "unsolved"]
    unsolved = [r.id for r in records if r.outcome == "unsolved"]
    one = runner.invoke(app, ["tutor", "rm", unsolved[0]])
    assert one.exit_code == 0 and one.stdout.startswith(f"removed {unsolved[0]}")
    rest = runner.invoke(app, ["tutor", "rm", "--all-unsolved"])
    assert rest.exit_code == 0 and unsolved[1] in rest.stdout
    assert [r.outcome for r in TutorStore(scripted_paths()).list()] == ["solved"]


def test_tutor_rm_of_an_unknown_id_deletes_nothing_and_exits_3(tmp_path, scripted):
    problem = tmp_path / "eggs.md"
    problem.write_text(PROBLEM_FILE, encoding="utf-8")
    assert CliRunner().invoke(app, ["tutor", str(problem)], input="1\n").exit_code == 0
    kept = TutorStore(scripted_paths()).list()[0].id
    out = run("tutor", "rm", kept, "20240101-000000-abcd")
    assert out.returncode == 3 and "no saved tutor session" in out.stderr
    assert [r.id for r in TutorStore(scripted_paths()).list()] == [kept]
    assert run("tutor", "rm").returncode == 2


def test_tutor_takes_an_inline_problem(scripted):
    result = CliRunner().invoke(
        app, ["tutor", "-p", "A box holds 6 rows of 7 eggs. How many?"], input="42\nquit\n"
    )
    assert result.exit_code == 0, result.output
    assert (
        "Problem:\nA box holds 6 rows of 7 eggs. How many?" in result.stdout and "Correct!" in result.stdout
    )
    assert TutorStore(scripted_paths()).list()[0].source == "-p"


def test_a_keyless_session_is_not_what_a_bare_resume_picks(tmp_path, monkeypatch, smollm2_path):
    engine = ScriptedEngine(Script(thinking=THINKING, answer="I am not sure."))

    def make(settings):
        return Session(
            settings.model_copy(update={"model": str(smollm2_path)}), engine_loader=lambda m, p, s: engine
        )

    monkeypatch.setattr(tutor_cli, "make_session", make)
    result = CliRunner().invoke(app, ["tutor", "-p", "What is 6 times 7?"], input="")
    assert isinstance(result.exception, NoAnswerError)  # exit 6 once main() maps it
    record = TutorStore(scripted_paths()).list()[0]  # the student saw it: kept, to be given a key
    assert record.key is None and TutorStore(scripted_paths()).latest_unfinished() is None
    assert f"vibelocal tutor --resume {record.id} --key ANSWER" in (result.exception.hint or "")


# --------------------------------------------------------------------------- the private solve as a vote


def _vote_scripts(answers: dict[int, str]):
    def pick(settings, messages) -> Script:
        if messages[0].content == TUTOR_SYSTEM:
            return Script(thinking=THINKING, answer="Count the eggs in one row, then the rows.")
        return Script(thinking=THINKING, answer=f"So \\boxed{{{answers[settings.seed]}}}")

    return pick


def _vote_session(monkeypatch, smollm2_path, engine):
    monkeypatch.setenv("VIBELOCAL_SEED", "20")

    def make(settings):
        settings = settings.model_copy(update={"model": str(smollm2_path)})
        return Session(settings, engine_loader=lambda m, p, s: engine)

    monkeypatch.setattr(tutor_cli, "make_session", make)


def test_the_private_solve_votes_side_by_side(tmp_path, monkeypatch, smollm2_path):
    from forking import ForkingEngine

    engine = ForkingEngine(_vote_scripts({20: "41", 21: "42", 22: "42"}), parallel=3, overlap=3)
    _vote_session(monkeypatch, smollm2_path, engine)
    problem = tmp_path / "eggs.md"
    problem.write_text("A box holds 6 rows of 7 eggs. How many eggs?\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["tutor", str(problem), "--votes", "3"], input="42\nquit\n")
    assert result.exit_code == 0, result.output
    assert "Correct!" in result.stdout and "SECRET-THINKING" not in result.output
    record = TutorStore(scripted_paths()).list()[0]
    assert record.key == "42" and record.key_source == "model"  # the answer two of three samples gave
    assert record.solution == "So \\boxed{42}"
    assert sorted(engine.shared.seeds) == [20, 21, 22] and engine.shared.most_active == 3


def test_the_private_vote_stops_early_without_fork(tmp_path, monkeypatch, smollm2_path):
    seeds: list[int] = []
    pick = _vote_scripts({20: "42", 21: "42", 22: "41"})

    class BySeed(ScriptedEngine):
        def stream(self, messages, settings, control=None):
            if messages[0].content != TUTOR_SYSTEM:
                seeds.append(settings.seed)
            self._script = pick(settings, messages)
            return super().stream(messages, settings, control)

    _vote_session(monkeypatch, smollm2_path, BySeed(Script()))
    result = CliRunner().invoke(
        app, ["tutor", "-p", "How many eggs are 6 rows of 7?", "--votes", "3"], input="quit\n"
    )
    assert result.exit_code == 0, result.output
    assert seeds == [20, 21]  # two agree: the third sample cannot change the key and never runs
    assert TutorStore(scripted_paths()).list()[0].key == "42"
