"""Settings precedence: flags > VIBELOCAL_* env > config.toml > defaults; every field documented."""

from __future__ import annotations

import pytest

from vibelocal.config import Settings, load_settings, save_settings
from vibelocal.errors import ConfigError, ExitCode
from vibelocal.paths import get_paths


def test_defaults_when_nothing_is_set():
    s = load_settings()
    assert s.model == "vibethinker-3b"
    assert s.budget == "medium"
    assert s.temperature is None


def test_every_field_has_a_docstring():
    missing = [name for name, f in Settings.model_fields.items() if not (f.description or "").strip()]
    assert missing == []


def test_precedence_flags_over_env_over_file(monkeypatch):
    paths = get_paths()
    paths.config_dir.mkdir(parents=True)
    paths.config_file.write_text('budget = "low"\ntemperature = 0.3\nthreads = 3\n', encoding="utf-8")
    monkeypatch.setenv("VIBELOCAL_BUDGET", "high")
    monkeypatch.setenv("VIBELOCAL_THREADS", "5")
    s = load_settings({"threads": 7, "seed": None})
    assert s.temperature == 0.3  # file
    assert s.budget == "high"  # env beats file
    assert s.threads == 7  # flag beats env
    assert s.seed is None  # a None flag does not override


def test_bad_toml_names_the_file():
    paths = get_paths()
    paths.config_dir.mkdir(parents=True)
    paths.config_file.write_text("budget = \n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert str(paths.config_file) in str(err.value)
    assert err.value.exit_code == ExitCode.USAGE


@pytest.mark.parametrize(
    ("source", "expected"),
    [("file", "config.toml"), ("env", "the environment"), ("flag", "the command line")],
)
def test_invalid_value_names_its_source(monkeypatch, source, expected):
    overrides = {}
    if source == "file":
        paths = get_paths()
        paths.config_dir.mkdir(parents=True)
        paths.config_file.write_text("temperature = 5.0\n", encoding="utf-8")
    elif source == "env":
        monkeypatch.setenv("VIBELOCAL_TEMPERATURE", "5")
    else:
        overrides = {"temperature": 5.0}
    with pytest.raises(ConfigError) as err:
        load_settings(overrides)
    assert "temperature" in str(err.value)
    assert expected in str(err.value)


def test_unknown_key_in_file_is_an_error():
    paths = get_paths()
    paths.config_dir.mkdir(parents=True)
    paths.config_file.write_text('colour = "blue"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="colour"):
        load_settings()


def test_save_settings_round_trips_and_keeps_other_keys():
    save_settings({"budget": "high"})
    save_settings({"temperature": 0.2})
    s = load_settings()
    assert (s.budget, s.temperature) == ("high", 0.2)
    text = get_paths().config_file.read_text(encoding="utf-8")
    assert 'budget = "high"' in text


def test_save_settings_refuses_invalid_values():
    with pytest.raises(Exception):  # noqa: B017 - pydantic's ValidationError
        save_settings({"temperature": 9})
    assert not get_paths().config_file.exists()


def test_a_config_that_is_not_utf8_names_the_file():
    paths = get_paths()
    paths.config_dir.mkdir(parents=True)
    paths.config_file.write_bytes(b'model = "caf\xe9"\n')
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert str(err.value) == f"{paths.config_file} is not UTF-8 text: invalid byte 0xe9 at offset 12"
    assert err.value.exit_code == ExitCode.USAGE


def test_a_config_that_is_a_fifo_is_refused_at_once():
    import os

    paths = get_paths()
    paths.config_dir.mkdir(parents=True)
    os.mkfifo(paths.config_file)
    with pytest.raises(ConfigError, match=r"is a named pipe \(FIFO\), not a config file"):
        load_settings()


@pytest.mark.parametrize("seed", [2**32 - 1, 2**32, 10**400, -1])
def test_seeds_outside_32_bits_are_refused(seed):
    with pytest.raises(ConfigError, match="invalid setting 'seed' in the command line") as err:
        load_settings({"seed": seed})
    assert err.value.exit_code == ExitCode.USAGE


def test_the_largest_seed_is_kept_as_given():
    assert load_settings({"seed": 2**32 - 2}).seed == 4294967294
