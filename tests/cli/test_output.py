"""Hostile ends of the standard streams, as a shell makes them: `| head -c1`, `>&-`, `2>&-`, `/dev/full`, `<&-`,
and FIFOs or devices where a file is expected. Every case: the documented exit code, at most one stderr line,
no traceback and no "Exception ignored" noise at interpreter exit. Subprocesses, because only a real process
has real file descriptors."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from testpaths import FIXTURES, ROOT

from vibelocal.cli.output import escape_controls

PROBLEM = FIXTURES / "problems" / "add.md"
LONG_ANSWER = "'The answer is \\\\boxed{4}. ' + 'Long explanation. ' * 20_000"  # far more than a pipe buffer

SCRIPTED = """
import sys
import vibelocal.cli.solve as solve_cli
from vibelocal.engine.scripted import Script, ScriptedEngine
from vibelocal.session import Session

engine = ScriptedEngine(Script("Two and two.", {answer}))
solve_cli.make_session = lambda settings, on_status: Session(
    settings, on_status=on_status, engine_loader=lambda m, p, s: engine
)
from vibelocal.cli import main
main(sys.argv[1:])
"""


def _command(args: list[str], scripted_answer: str | None) -> list[str]:
    if scripted_answer is None:
        return [sys.executable, "-m", "vibelocal", *args]
    return [sys.executable, "-c", SCRIPTED.format(answer=scripted_answer), *args]


def shell(
    args: list[str], redirect: str, *, scripted_answer: str | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run vibelocal through bash (`scripted_answer`: a Python expression for the scripted engine's answer) with `redirect` (e.g. `>&-`); stderr comes back unless it is redirected."""
    line = " ".join(shlex.quote(a) for a in _command(args, scripted_answer)) + f" {redirect}"
    return subprocess.run(
        ["bash", "-c", line],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=180,
        cwd=ROOT,
        env=os.environ,
    )


def clean(out: subprocess.CompletedProcess[str], code: int, lines: int) -> list[str]:
    assert out.returncode == code, (out.returncode, out.stderr[-2000:])
    assert "Traceback" not in out.stderr and "Exception ignored" not in out.stderr, out.stderr[-2000:]
    errors = [ln for ln in out.stderr.splitlines() if not ln.startswith("note:")]
    assert len(errors) == lines, out.stderr[-2000:]
    return errors


def head_c1(args: list[str], *, scripted_answer: str | None = None) -> tuple[int, bytes, str]:
    """`vibelocal ARGS | head -c1`: read one byte, close the pipe; (exit code, the byte, stderr)."""
    proc = subprocess.Popen(
        _command(args, scripted_answer),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=os.environ,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.read(1)
    proc.stdout.close()
    err = proc.stderr.read().decode("utf-8", "replace")
    return proc.wait(timeout=180), first, err


# --------------------------------------------------------------------------- stdout


@pytest.fixture
def smol(smollm2_path) -> list[str]:
    return ["--model", str(smollm2_path), "--budget", "16", "--answer-budget", "16", "--seed", "1"]


def test_reader_gone_mid_answer_is_a_quiet_exit_0(smol):
    code, first, err = head_c1(["solve", str(PROBLEM), *smol], scripted_answer=LONG_ANSWER)
    assert (code, first) == (0, b"T"), err
    assert "Traceback" not in err and "Exception ignored" not in err and "error:" not in err


@pytest.mark.real_model
def test_reader_gone_with_the_real_model(smollm2_path):
    """The reader is gone before the first answer token: the write fails while llama.cpp is decoding."""
    args = ["solve", str(PROBLEM), "--model", str(smollm2_path), "--budget", "off", "--answer-budget", "400"]
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            _command(args, None),
            stdout=write_end,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            env=os.environ,
            timeout=180,
        )
    finally:
        os.close(write_end)
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "Exception ignored" not in err and "error:" not in err


def test_tutor_check_into_head_exits_0_quietly(tmp_path):
    sheet = tmp_path / "pairs.tsv"
    sheet.write_text("".join(f"{i}\t{i}\n" for i in range(12_000)), encoding="utf-8")
    code, first, err = head_c1(["tutor", "check", "--pairs", str(sheet)])
    assert (code, first, err) == (0, b"1", "")


@pytest.mark.parametrize(("redirect", "message"), [
    (">&-", "error: cannot write the output: stdout is closed (run without >&-)"),
    (">/dev/full", "error: cannot write the output to stdout: No space left on device"),
])  # fmt: skip
def test_closed_or_full_stdout_is_one_line_exit_7(redirect, message):
    assert clean(shell(["config", "show", "--json"], redirect), 7, 1) == [message]


def test_solve_json_to_a_full_disk_is_one_line_exit_7(smol):
    out = shell(["solve", str(PROBLEM), "--json", *smol], ">/dev/full", scripted_answer=repr("\\boxed{4}"))
    assert clean(out, 7, 1) == ["error: cannot write the output to stdout: No space left on device"]


def test_closed_stderr_keeps_stdout_clean(smol):
    out = shell(
        ["solve", str(PROBLEM), "--show-thinking", *smol], "2>&-", scripted_answer=repr("It is \\boxed{4}.")
    )
    assert out.returncode == 0
    assert out.stdout == "It is \\boxed{4}.\n"  # the answer alone: the thinking did not fall back to stdout


def test_full_stderr_is_not_an_error(smol):
    out = shell(
        ["solve", str(PROBLEM), "--show-thinking", *smol], "2>/dev/full", scripted_answer=repr("\\boxed{4}")
    )
    assert out.returncode == 0 and "4" in out.stdout


# --------------------------------------------------------------------------- stdin


@pytest.mark.parametrize(("args", "code", "message"), [
    (["solve", "-"], 3, "error: stdin is closed: cannot read a problem from it"),
    (["tutor", "check", "--pairs", "-"], 3, "error: stdin is closed: cannot read pairs from it"),
    (["tutor", str(PROBLEM), "--key", "4"], 2, "error: stdin is closed: the tutor reads your answers from it"),
])  # fmt: skip
def test_closed_stdin_is_one_line(args, code, message):
    assert clean(shell(args, "<&-"), code, 1) == [message]


# --------------------------------------------------------------------------- FIFOs and devices


@pytest.fixture
def fifo(tmp_path) -> Path:
    path = tmp_path / "pipe.gguf"
    os.mkfifo(path)  # nobody ever writes: a reader that opens it blocks forever
    return path


@pytest.mark.parametrize(("args", "code", "what"), [
    (["solve", "{fifo}"], 3, "a problem file"),
    (["tutor", "check", "--pairs", "{fifo}"], 3, "a pairs file"),
    (["doctor", "--hardware", "{fifo}"], 2, "a hardware profile"),
    (["solve", str(PROBLEM), "--model", "{fifo}"], 5, "a GGUF model file"),
])  # fmt: skip
def test_a_fifo_is_refused_at_once(fifo, args, code, what):
    argv = [a.format(fifo=fifo) for a in args]
    line = clean(shell(argv, ""), code, 1)[0]
    assert line.startswith(f"error: {fifo} is a named pipe (FIFO), not {what}")


@pytest.mark.parametrize(("args", "code"), [
    (["tutor", "check", "--pairs", "/dev/zero"], 3),
    (["doctor", "--hardware", "/dev/zero"], 2),
    (["solve", "/dev/zero"], 3),
])  # fmt: skip
def test_dev_zero_is_refused_without_reading(args, code):
    assert "/dev/zero is a character device, not a" in clean(shell(args, ""), code, 1)[0]


def test_a_config_fifo_is_refused_at_once():
    from vibelocal.paths import get_paths

    config = get_paths().config_file
    config.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(config)
    line = clean(shell(["config", "show"], ""), 2, 1)[0]
    assert line == f"error: {config} is a named pipe (FIFO), not a config file"


# --------------------------------------------------------------------------- crafted model files and values


def test_a_crafted_gguf_is_exit_5_before_llama_cpp_sees_it(tmp_path):
    sys.path.insert(0, str(ROOT / "tests" / "models"))
    try:
        from test_gguf import write_crafted
    finally:
        sys.path.pop(0)
    model = write_crafted(tmp_path / "zero-layers.gguf", fields={"block_count": 0})
    line = clean(shell(["solve", str(PROBLEM), "--model", str(model)], ""), 5, 1)[0]
    assert "llama.block_count = 0 (expected 1 to 512)" in line


@pytest.mark.parametrize(("args", "fragment"), [
    (["--budget", "9" * 400], "a number longer than 12 characters"),
    (["--budget", "9" * 400 + "s"], "a number longer than 12 characters"),
    (["--seed", str(2**32)], "invalid setting 'seed'"),
])  # fmt: skip
def test_huge_values_are_one_line_exit_2(args, fragment):
    line = clean(shell(["solve", str(PROBLEM), *args], ""), 2, 1)[0]
    assert fragment in line and len(line) < 300


def test_control_characters_are_escaped():
    assert escape_controls("a\x1b[31mb\x07c\nd\te") == "a\\x1b[31mb\\x07c\nd\te"
    assert escape_controls("a\nb\x9b", one_line=True) == "a\\x0ab\\x9b"


def test_control_characters_in_a_profile_are_not_echoed_raw(tmp_path):
    import json

    profile = json.loads((FIXTURES / "profiles" / "rtx4060_32gb.json").read_text(encoding="utf-8"))
    profile["cpu_name"] = "Evil\x1b]0;pwned\x07CPU"
    path = tmp_path / "evil.json"
    path.write_text(json.dumps(profile), encoding="utf-8")
    out = shell(["doctor", "--hardware", str(path)], "")
    assert out.returncode == 0, out.stderr
    assert "\x1b" not in out.stdout and "Evil\\x1b]0;pwned\\x07CPU" in out.stdout


def test_malformed_front_matter_is_a_warning_line(tmp_path, smol):
    problem = tmp_path / "p.md"
    problem.write_text("---\nkind: math\nanswer 4\n---\nWhat is 2+2?\n", encoding="utf-8")
    out = shell(["solve", str(problem), *smol], "", scripted_answer=repr("\\boxed{4}"))
    assert out.returncode == 0 and out.stdout == "\\boxed{4}\n"
    (warning,) = clean(out, 0, 1)
    assert warning == (
        f"warning: {problem}: malformed front matter at line 3 (not `key: value`); "
        "it is sent to the model as problem text"
    )


def test_closed_stdin_when_a_download_would_be_asked_for():
    out = shell(["solve", str(PROBLEM)], "<&-")
    assert out.returncode == 4 and "Traceback" not in out.stderr
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "is not downloaded" in errors[0] and "--yes" in errors[0]
