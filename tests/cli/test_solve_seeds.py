"""`solve --votes`: sample i's reported seed reproduces sample i when passed alone to `solve --seed`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from testpaths import FIXTURES, ROOT
from typer.testing import CliRunner

from vibelocal.cli import app
from vibelocal.cli import solve as solve_cli
from vibelocal.engine.scripted import Script, ScriptedEngine
from vibelocal.session import Session

ADD = str(FIXTURES / "problems" / "add.md")


class BySeed(ScriptedEngine):
    """A scripted engine whose answer depends on the seed; it records the settings of every turn."""

    def __init__(self) -> None:
        super().__init__(Script())
        self.settings_seen: list = []

    def stream(self, messages, settings, control=None):
        self.settings_seen.append(settings)
        self._script = Script("t", f"\\boxed{{{settings.seed % 3}}}")
        return super().stream(messages, settings, control)


def test_each_vote_sample_is_the_single_run_with_its_seed(monkeypatch, smollm2_path):
    engine = BySeed()
    monkeypatch.setattr(
        solve_cli,
        "make_session",
        lambda settings, on_status: Session(
            settings, on_status=on_status, engine_loader=lambda m, p, s: engine
        ),
    )
    args = ["solve", ADD, "--model", str(smollm2_path), "--json"]
    votes = json.loads(CliRunner().invoke(app, [*args, "--votes", "4", "--seed", "20"]).stdout)
    assert all(s.reuse_prefix is False for s in engine.settings_seen)  # each sample from an empty cache
    for sample in votes["samples"]:
        alone = json.loads(CliRunner().invoke(app, [*args, "--seed", str(sample["seed"])]).stdout)
        assert (alone["seed"], alone["answer"]) == (sample["seed"], sample["answer"])
    assert engine.settings_seen[-1].reuse_prefix is True  # a single run keeps the prefix cache as before


def _solve(smollm2_path, *extra: str) -> dict:
    args = ["--model", str(smollm2_path), "--budget", "32", "--answer-budget", "24", "--temperature", "0.9"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "vibelocal", "solve", ADD, *args, "--ctx", "1024", "--json", *extra]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.stdout, done.stderr
    return json.loads(done.stdout)


@pytest.mark.real_model
@pytest.mark.slow
def test_real_model_sample_two_reproduces_alone(smollm2_path):
    """SmolLM2 at temperature 0.9: sample 2 of `--votes 2 --seed 5` is exactly `--seed 6` in a fresh process."""
    votes = _solve(smollm2_path, "--votes", "2", "--seed", "5")
    alone = _solve(smollm2_path, "--seed", "6")
    second = votes["samples"][1]
    assert second["seed"] == alone["seed"] == 6
    assert second["answer"] == alone["answer"]
    assert second["final_answer"] == alone["final_answer"]
