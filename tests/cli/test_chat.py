"""`vibelocal chat` and the bare `vibelocal`: bad flags and missing models fail before the screen opens."""

from __future__ import annotations

import os
import subprocess
import sys


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vibelocal", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


def assert_one_line(out: subprocess.CompletedProcess[str], code: int, *fragments: str) -> None:
    assert out.returncode == code, out.stderr
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_bad_budget_is_a_usage_error():
    assert_one_line(run("chat", "--budget", "lots"), 2, "invalid budget 'lots'")


def test_missing_model_file_is_exit_4(tmp_path):
    assert_one_line(run("chat", "--model", str(tmp_path / "nope.gguf")), 4, "does not exist")


def test_a_file_that_is_not_gguf_is_exit_5(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf at all" * 10)
    assert_one_line(run("chat", "--model", str(bad)), 5)


def test_without_a_terminal_chat_explains_itself(smollm2_path):
    assert_one_line(run("chat", "--model", str(smollm2_path), "--prefill-think"), 2, "interactive terminal")
    assert_one_line(run(), 2, "interactive terminal")


def test_help_lists_the_flags():
    out = run("chat", "--help")
    assert out.returncode == 0
    for flag in ("--model", "--budget", "--prefill-think"):
        assert flag in out.stdout


def test_importing_the_cli_does_not_load_textual():
    code = "import sys, vibelocal.cli; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False"
