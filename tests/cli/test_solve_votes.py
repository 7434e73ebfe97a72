"""`solve --votes K`: samples side by side on an engine that forks, early stopping once the vote is settled, the
sequential fallback (it stops early too), and the JSON of a vote (`cut`, per-sample seeds, the vote's wall time)."""

from __future__ import annotations

import json

from forking import HANG, ForkingEngine, by_seed
from test_solve import use_engine
from testpaths import FIXTURES
from typer.testing import CliRunner

from vibelocal.cli import app
from vibelocal.engine.scripted import Script, ScriptedEngine

PROBLEMS = FIXTURES / "problems"
TWO = Script("t", "\\boxed{2}")


def solve(*args: str):
    return CliRunner().invoke(app, ["solve", *args])


def vote(smollm2_path, k: int, seed: int = 10):
    result = solve(
        str(PROBLEMS / "add.md"),
        "--model",
        str(smollm2_path),
        "--votes",
        str(k),
        "--seed",
        str(seed),
        "--json",
    )
    return result, (json.loads(result.stdout) if result.stdout.strip() else None)


def test_side_by_side_vote_cuts_the_running_sample_once_settled(monkeypatch, smollm2_path):
    engine = ForkingEngine(by_seed({10: TWO, 11: TWO, 12: HANG}), parallel=3, overlap=3)
    use_engine(monkeypatch, engine)
    result, data = vote(smollm2_path, 3)
    assert result.exit_code == 0, result.stderr
    assert "3 samples, 3 at a time" in result.stderr
    assert engine.shared.cancelled == [12]  # the hanging sample was stopped, not waited for
    assert [s["stop_reason"] for s in data["samples"]] == ["answered", "answered", "cut"]
    assert [s["seed"] for s in data["samples"]] == [10, 11, 12]
    assert data["agreement"]["cut"] == 1 and data["agreement"]["agreement"] == "2/2"
    assert data["agreement"]["unanswered"] == [] and data["final_answer"] == "2"
    assert "note: 1 of 3 samples cut: the leading answer could no longer be overtaken" in result.stderr
    assert data["timings"]["total_s"] >= max(s["timings"]["total_s"] for s in data["samples"][:2])
    assert engine.shared.handles_open == 0  # the forks closed by the vote, the engine by the session


def test_samples_not_started_are_cut_without_running(monkeypatch, smollm2_path):
    # two handles, five samples: 10 hangs on one handle while 11, 12 and 13 agree on the other
    scripts = {10: HANG, 11: TWO, 12: TWO, 13: TWO, 14: TWO}
    engine = ForkingEngine(by_seed(scripts), parallel=2)
    use_engine(monkeypatch, engine)
    result, data = vote(smollm2_path, 5)
    assert result.exit_code == 0, result.stderr
    assert sorted(engine.shared.seeds) == [10, 11, 12, 13]  # 14 never started
    assert engine.shared.cancelled == [10]
    assert [s["stop_reason"] for s in data["samples"]] == ["cut", "answered", "answered", "answered", "cut"]
    assert data["samples"][4]["seed"] == 14 and data["samples"][4]["answer"] == ""
    assert data["agreement"]["cut"] == 2 and data["agreement"]["groups"] == [
        {"answer": "2", "samples": [1, 2, 3]}
    ]


def test_a_close_vote_runs_every_sample(monkeypatch, smollm2_path):
    scripts = {10: TWO, 11: Script("t", "\\boxed{3}"), 12: TWO, 13: Script("t", "\\boxed{3}")}
    engine = ForkingEngine(by_seed(scripts), parallel=2)
    use_engine(monkeypatch, engine)
    result, data = vote(smollm2_path, 4)
    assert result.exit_code == 0, result.stderr
    assert sorted(engine.shared.seeds) == [10, 11, 12, 13] and engine.shared.cancelled == []
    assert data["agreement"]["cut"] == 0 and data["agreement"]["agreement"] == "2/4"
    assert "cut" not in result.stderr


def test_sequential_vote_does_not_start_the_samples_it_no_longer_needs(monkeypatch, smollm2_path):
    class BySeed(ScriptedEngine):
        def stream(self, messages, settings, control=None):
            self.seeds.append(settings.seed)
            self._script = TWO if settings.seed < 13 else Script("t", "\\boxed{5}")
            return super().stream(messages, settings, control)

    engine = BySeed(Script())
    engine.seeds = []
    use_engine(monkeypatch, engine)  # no fork(): one sample after another
    result, data = vote(smollm2_path, 5)
    assert result.exit_code == 0, result.stderr
    assert engine.seeds == [10, 11, 12]  # 3 of 5 agree: the last two cannot overtake them
    assert [s["stop_reason"] for s in data["samples"]] == ["answered"] * 3 + ["cut"] * 2
    assert [s["seed"] for s in data["samples"]] == [10, 11, 12, 13, 14]
    assert data["agreement"]["cut"] == 2 and data["agreement"]["total"] == 3
    assert "2 of 5 samples cut" in result.stderr and "at a time" not in result.stderr


def test_cancelling_the_callers_control_stops_every_sample():
    import threading
    import time

    from vibelocal.cli.parallel import sample_side_by_side
    from vibelocal.engine.control import TurnControl
    from vibelocal.types import ChatMessage, GenerationSettings

    engine = ForkingEngine(HANG, parallel=2)
    cancel = TurnControl()
    generations = [GenerationSettings(seed=s) for s in (1, 2, 3)]
    out: list = []
    worker = threading.Thread(
        target=lambda: out.append(
            sample_side_by_side(
                engine, [ChatMessage("user", "q")], generations, on_done=lambda i, r: False, cancel=cancel
            )
        )
    )
    worker.start()
    for _ in range(3000):  # until both handles are busy (the third sample waits for one)
        if engine.shared.active == 2:
            break
        time.sleep(0.01)
    cancel.cancel()
    worker.join(30)
    assert not worker.is_alive()
    (records,) = out
    assert [r.stop_reason for r in records] == ["cancelled"] * 3
    assert sorted(engine.shared.cancelled) == [1, 2] and sorted(engine.shared.seeds) == [1, 2]
