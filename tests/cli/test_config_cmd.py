"""`vibelocal config show|set|unset`: valid TOML that round-trips, validated changes, errors naming file and key."""

from __future__ import annotations

import json
import subprocess

import pytest
import tomllib
from clirun import vibelocal

from vibelocal.config import load_settings
from vibelocal.errors import ExitCode
from vibelocal.paths import get_paths


def one_error(out: subprocess.CompletedProcess[str]) -> str:
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in out.stderr, out.stderr
    return lines[0]


@pytest.mark.parametrize("describe", [False, True])
def test_show_is_valid_toml_with_unset_values_as_comments(describe):
    out = vibelocal(
        "config", "show", *(["--describe"] if describe else []), env={"VIBELOCAL_TEMPERATURE": "0.3"}
    )
    assert out.returncode == 0, out.stderr
    data = tomllib.loads(out.stdout)
    assert data["temperature"] == 0.3 and data["show_thinking"] is True and data["budget"] == "medium"
    assert "quant" not in data and "# quant =   (unset)" in out.stdout


def test_show_redirected_into_config_toml_round_trips():
    paths = get_paths()
    paths.config_dir.mkdir(parents=True)
    first = vibelocal("config", "show", env={"VIBELOCAL_SEED": "7", "VIBELOCAL_KV_CACHE_TYPE": "q8_0"})
    paths.config_file.write_text(first.stdout, encoding="utf-8")
    assert load_settings().seed == 7 and load_settings().kv_cache_type == "q8_0"
    again = vibelocal("config", "show")
    assert again.returncode == 0, again.stderr
    body = [line for line in again.stdout.splitlines() if not line.startswith("# vibelocal settings")]
    assert body == [line for line in first.stdout.splitlines() if not line.startswith("# vibelocal settings")]
    for command in (["models", "--json"], ["config", "show", "--json"], ["tutor", "--list"]):
        out = vibelocal(*command)
        assert out.returncode == 0, (command, out.stderr)
    assert json.loads(vibelocal("config", "show", "--json").stdout)["seed"] == 7


@pytest.mark.parametrize(
    ("key", "value", "stored"),
    [
        ("temperature", "0.4", "temperature = 0.4"),
        ("show_thinking", "off", "show_thinking = false"),
        ("budget", "4k", 'budget = "4k"'),
        ("threads", "3", "threads = 3"),
        ("model", "vibethinker-3b:Q8_0", 'model = "vibethinker-3b:Q8_0"'),
    ],
)
def test_set_validates_types_and_writes_toml(key, value, stored):
    out = vibelocal("config", "set", key, value)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == stored
    assert stored in get_paths().config_file.read_text(encoding="utf-8")
    tomllib.loads(get_paths().config_file.read_text(encoding="utf-8"))


def test_unset_removes_only_that_key():
    assert vibelocal("config", "set", "temperature", "0.4").returncode == 0
    assert vibelocal("config", "set", "seed", "11").returncode == 0
    out = vibelocal("config", "unset", "temperature")
    assert out.returncode == 0 and out.stdout.strip() == "# temperature =   (unset)"
    assert tomllib.loads(get_paths().config_file.read_text(encoding="utf-8")) == {"seed": 11}


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["set", "temperature", "hot"], "'temperature'"),
        (["set", "temperature", "9"], "'temperature'"),
        (["set", "budget", "lots"], "'budget'"),
        (["set", "kv_cache_type", "q2"], "'kv_cache_type'"),
        (["set", "nope", "1"], "unknown setting 'nope'"),
        (["unset", "nope"], "unknown setting 'nope'"),
    ],
)
def test_bad_set_is_one_line_naming_file_and_key_and_writes_nothing(args, fragment):
    out = vibelocal("config", *args)
    assert out.returncode == ExitCode.USAGE
    line = one_error(out)
    assert fragment in line and str(get_paths().config_file) in line
    assert not get_paths().config_file.exists()


def test_a_bad_budget_in_the_file_names_the_file_and_key():
    paths = get_paths()
    paths.config_dir.mkdir(parents=True)
    paths.config_file.write_text('budget = "lots"\n', encoding="utf-8")
    line = one_error(vibelocal("config", "show"))
    assert line.startswith("error: invalid setting 'budget' in ") and str(paths.config_file) in line
    assert vibelocal("config", "unset", "budget").returncode == 0  # the way out works on a broken file
    assert vibelocal("config", "show").returncode == 0
