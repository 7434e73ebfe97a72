"""Inline prompts (`solve -p`, `tutor -p`), the stdin hint on a terminal, and `loading model…` while it loads."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from vibelocal.cli import app
from vibelocal.cli import solve as solve_cli
from vibelocal.cli.problem_input import TYPE_HINT, read_cli_problem
from vibelocal.engine.scripted import Script, ScriptedEngine
from vibelocal.errors import BadInputError, ExitCode, UsageError
from vibelocal.session import Session


def test_an_inline_prompt_is_the_problem():
    problem = read_cli_problem(None, "What is $2+3$?")
    assert (problem.text, problem.kind, problem.source) == ("What is $2+3$?", "math", "-p")


@pytest.mark.parametrize(
    ("file", "prompt", "error"),
    [("p.md", "2+3?", UsageError), (None, None, UsageError), (None, "   ", BadInputError)],
)
def test_exactly_one_source(file, prompt, error):
    with pytest.raises(error):
        read_cli_problem(file, prompt)


def test_solve_dash_p_answers_on_stdout(monkeypatch, smollm2_path):
    engine = ScriptedEngine(Script(thinking="two plus three", answer="It is \\boxed{5}."))
    seen = []

    def factory(settings, on_status):
        return Session(settings, on_status=on_status, engine_loader=lambda m, p, s: engine)

    monkeypatch.setattr(solve_cli, "make_session", factory)
    result = CliRunner().invoke(
        app, ["solve", "-p", "What is 2+3?", "--model", str(smollm2_path), "--answer-only"]
    )
    seen.append(engine.turns[0][-1].content)
    assert result.exit_code == 0, result.output
    assert result.stdout == "5\n"
    assert "What is 2+3?" in seen[0]


def test_solve_with_both_a_file_and_dash_p_is_a_usage_error(tmp_path):
    problem = tmp_path / "p.md"
    problem.write_text("1+1?\n", encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "vibelocal", "solve", str(problem), "-p", "2+2?"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == ExitCode.USAGE and out.stderr.startswith(
        "error: give the problem as FILE or as -p"
    )


def _on_a_terminal(args: list[str], send: bytes, until: bytes, timeout_s: float = 90) -> bytes:
    """Run vibelocal with stdin/stdout/stderr on a pseudo-terminal; returns what it wrote up to `until`."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vibelocal", *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=dict(os.environ),
    )
    os.close(follower)
    seen = b""
    sent = False
    try:
        while until not in seen:
            ready, _, _ = select.select([leader], [], [], timeout_s)
            if not ready:
                break
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
            if not sent and TYPE_HINT.encode() in seen:
                os.write(leader, send)
                sent = True
    finally:
        proc.kill()
        proc.wait()
        os.close(leader)
    return seen


def test_solve_dash_on_a_terminal_says_how_to_end_the_problem_and_that_the_model_loads(smollm2_path):
    seen = _on_a_terminal(
        ["solve", "-", "--model", str(smollm2_path), "--budget", "off", "--answer-budget", "16"],
        send=b"What is 2+3?\n\x04",
        until=b"loading ",
    )
    assert TYPE_HINT.encode() in seen
    assert f"loading {smollm2_path.name}…".encode() in seen
