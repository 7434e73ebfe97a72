"""`vibelocal models add / verify`, `pull PATH`, and local names in `models`, `models rm` and `solve --model`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clirun import vibelocal

from vibelocal.errors import ExitCode


@pytest.fixture
def mine(own_gguf: Path) -> Path:
    return own_gguf


def test_add_list_verify_rm_round_trip(mine):
    added = vibelocal("models", "add", str(mine), "--name", "smol")
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("added smol:Q4_1\t") and "sha256 " in added.stdout
    listed = json.loads(vibelocal("models", "--json").stdout)["models"]
    assert [(m["name"], m["local"], m["path"]) for m in listed] == [("smol", True, str(mine.resolve()))]
    assert len(listed[0]["sha256"]) == 64
    assert "smol" in vibelocal("models").stdout
    ok = vibelocal("models", "verify", "smol")
    assert ok.returncode == 0 and ok.stdout.startswith("ok\tsmol:Q4_1\t")
    with mine.open("r+b") as fh:
        fh.seek(5000)
        fh.write(b"\x00\x01\x02")
    rotted = vibelocal("models", "verify")
    assert rotted.returncode == ExitCode.MODEL_LOAD
    assert rotted.stdout.startswith("changed\tsmol:Q4_1\t")
    assert rotted.stderr.strip().splitlines()[-1].startswith("error: 1 of 1 model files")
    removed = vibelocal("models", "rm", "smol")
    assert removed.returncode == 0 and "kept" in removed.stdout
    assert mine.is_file()  # a local file is forgotten, never deleted
    assert json.loads(vibelocal("models", "--json").stdout) == {"models": []}


def test_pull_of_a_path_registers_it_like_models_add(mine):
    out = vibelocal("pull", str(mine))
    assert out.returncode == 0, out.stderr
    assert "local file, sha256" in out.stdout
    assert [m["name"] for m in json.loads(vibelocal("models", "--json").stdout)["models"]] == [
        "my-model.Q4_1"
    ]


def test_solve_finds_a_local_model_by_its_name(mine):
    assert vibelocal("models", "add", str(mine), "--name", "smol").returncode == 0
    out = vibelocal("solve", "--model", "smol", "--budget", "off", "--answer-budget", "16", "-p", "Say hi.")
    assert "not installed" not in out.stderr and "unknown model" not in out.stderr
    assert out.returncode in (0, ExitCode.NO_ANSWER), out.stderr


def test_models_add_of_a_bad_file_is_one_error_line(tmp_path):
    bad = tmp_path / "x.gguf"
    bad.write_text("not a gguf")
    out = vibelocal("models", "add", str(bad))
    assert out.returncode == ExitCode.MODEL_LOAD
    assert out.stderr.startswith("error: ") and len(out.stderr.strip().splitlines()) == 1


def test_verify_of_an_unknown_ref_exits_4():
    out = vibelocal("models", "verify", "vibethinker-3b")
    assert out.returncode == ExitCode.MODEL_UNAVAILABLE and out.stderr.startswith("error: no installed model")
