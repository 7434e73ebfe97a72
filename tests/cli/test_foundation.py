"""The CLI shell: version, config commands, and the error mapper (one stderr line, documented exit code)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

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
    assert "No such command" in out.stderr
    assert "Traceback" not in out.stderr
