"""The CLI shell: version, config commands, and the error mapper (one stderr line, documented exit code)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from vibelocal import __version__
from vibelocal.paths import get_paths


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vibelocal", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


def test_version():
    out = run("--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"vibelocal {__version__}"
    assert out.stderr == ""


def test_config_path_points_into_vibelocal_home():
    out = run("config", "path")
    assert out.returncode == 0
    assert out.stdout.strip() == str(get_paths().config_file)


def test_config_show_json_reflects_env():
    out = run("config", "show", "--json", env={"VIBELOCAL_BUDGET": "low"})
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["budget"] == "low"
    assert data["model"] == "vibethinker-3b"


def test_config_show_describe_explains_settings():
    out = run("config", "show", "--describe")
    assert out.returncode == 0
    assert "# Reasoning budget per turn" in out.stdout
    assert 'budget = "medium"' in out.stdout


def test_bad_config_is_one_line_and_exit_2():
    paths = get_paths()
    paths.config_dir.mkdir(parents=True)
    paths.config_file.write_text("temperature = 'hot'\n", encoding="utf-8")
    out = run("config", "show")
    assert out.returncode == 2
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: invalid setting 'temperature'")
    assert "Traceback" not in out.stderr


def test_unknown_command_is_a_usage_error():
    out = run("frobnicate")
    assert out.returncode == 2
    assert out.stderr == "error: no such command 'frobnicate' (see: python -m vibelocal --help)\n"


def one_line(out: subprocess.CompletedProcess[str], code: int) -> str:
    """The single stderr line of a failed command (and nothing on stdout, no traceback)."""
    assert out.returncode == code, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr and "Exception ignored" not in out.stderr
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["solve", "--bogus", "x.md"],
            "error: no such option: --bogus (see: python -m vibelocal solve --help)",
        ),
        (
            ["models", "add"],
            "error: missing argument 'PATH.gguf' (see: python -m vibelocal models add --help)",
        ),
        (
            ["tutor", "check", "--timeout", "inf", "-a", "1", "-k", "1"],
            "error: invalid value for '--timeout'",
        ),
        (
            ["tutor", "check", "--timeout", "nan", "-a", "1", "-k", "1"],
            "error: invalid value for '--timeout'",
        ),
        (["doctor", "--ctx", "many"], "error: invalid value for '--ctx'"),
        (["solve", "x.md", "--votes", "0"], "error: invalid value for '--votes'"),
    ],
)
def test_click_usage_errors_are_one_error_line(args, expected):
    assert one_line(run(*args), 2).startswith(expected)


CRASH = (
    "import vibelocal.config as c\n"
    "def boom(*a, **k):\n"
    "    raise RuntimeError('nobody tried this\\n\\x1b[31mred')\n"
    "c.load_settings = boom\n"
    "from vibelocal.cli import main\n"
    "main(['config', 'show'])\n"
)


def test_an_unexpected_exception_is_one_line_and_a_crash_log():
    out = subprocess.run([sys.executable, "-c", CRASH], capture_output=True, text=True, timeout=60)
    line = one_line(out, 1)
    assert line.startswith(
        "error: unexpected RuntimeError: nobody tried this \\x1b[31mred (a bug in vibelocal"
    )
    log_dir = get_paths().log_dir
    logs = sorted(log_dir.glob("crash-*.log"))
    assert len(logs) == 1 and f"the details are in {logs[0]})" in line
    text = logs[0].read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" in text and "RuntimeError: nobody tried this" in text


def test_a_crash_log_that_cannot_be_written_is_said():
    home = get_paths().data_dir.parent
    home.mkdir(parents=True, exist_ok=True)
    get_paths().data_dir.write_text("a file where the data folder should be")
    out = subprocess.run([sys.executable, "-c", CRASH], capture_output=True, text=True, timeout=60)
    assert "no crash log could be written" in one_line(out, 1)
