"""`vibelocal bench`'s vote rows: K samples side by side on an engine that forks, a clear row where it cannot."""

from __future__ import annotations

import pytest
from forking import ForkingEngine

from vibelocal.cli.bench_votes import NOT_MEASURED, bench_generation, votes_rows
from vibelocal.engine.scripted import Script, ScriptedEngine
from vibelocal.types import ChatMessage

MESSAGES = [ChatMessage("user", "count")]
SCRIPT = Script("one two three four five six seven eight", "done")


def test_rows_for_one_and_four_samples_side_by_side():
    engine = ForkingEngine(SCRIPT, parallel=4, overlap=0)
    steps: list[str] = []
    rows = votes_rows(engine, MESSAGES, bench_generation(64), (1, 4), repetitions=2, on_step=steps.append)
    assert [r["test"] for r in rows] == ["votes K=1", "votes K=4"]
    one, four = rows
    per_turn = one["n_gen"]
    assert per_turn > 0 and four["n_gen"] == 4 * per_turn  # every sample's decoded tokens count
    assert four["n_seq"] == 4
    for row in rows:
        assert set(row) >= {
            "test",
            "n_prompt",
            "n_gen",
            "n_depth",
            "avg_ts",
            "stddev_ts",
            "samples_ts",
            "wall_s",
        }
        assert row["avg_ts"] > 0 and len(row["samples_ts"]) == 2
    assert one["vs_sequential"] is None and four["vs_sequential"] > 0
    assert sorted(set(engine.shared.seeds)) == [0, 1, 2, 3, 1000, 1001, 1002, 1003]  # a seed per sample
    assert steps == ["votes K=1 (1/2)", "votes K=1 (2/2)", "votes K=4 (1/2)", "votes K=4 (2/2)"]
    assert engine.shared.handles_open == 1  # the forks are closed again


def test_the_four_samples_really_run_at_once():
    engine = ForkingEngine(SCRIPT, parallel=4, overlap=4)  # each turn waits until all four stream
    (row,) = votes_rows(engine, MESSAGES, bench_generation(16), (4,))
    assert row["n_seq"] == 4 and row["avg_ts"] > 0 and row["vs_sequential"] is None
    assert engine.shared.most_active == 4 and len(engine.shared.threads) == 4


@pytest.mark.parametrize(
    "engine", [ScriptedEngine(SCRIPT), ForkingEngine(SCRIPT, parallel=2)], ids=["no-fork", "two-ways"]
)
def test_more_samples_than_the_engine_decodes_at_once_are_not_measured(engine):
    rows = votes_rows(engine, MESSAGES, bench_generation(16), (1, 4))
    assert rows[0]["avg_ts"] > 0
    why = (
        NOT_MEASURED
        if isinstance(engine, ForkingEngine) is False
        else "not measured: this engine decodes at most 2 sequences at once"
    )
    assert rows[1] == {"test": "votes K=4", "n_seq": 4, "not_measured": why}
