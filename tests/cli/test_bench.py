"""`vibelocal bench` on the real SmolLM2 GGUF: llama-bench fields, the roofline, the stored speed the planner uses."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from vibelocal.cli import app
from vibelocal.config import Settings
from vibelocal.errors import ExitCode
from vibelocal.paths import get_paths
from vibelocal.session import Session


def bench(*args: str):
    return CliRunner().invoke(app, ["bench", *args])


def test_measures_stores_and_the_planner_uses_it(smollm2_path):
    result = bench(
        "--model", str(smollm2_path), "--pp", "32", "--tg", "8", "--depths", "0,64", "-r", "2", "--json"
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout[result.stdout.index("{") :])
    tests = [r["test"] for r in data["results"]]
    assert tests == ["pp32", "tg8", "tg8 @ d64", "copy8", "copy8 +spec", "tg8 x4"]
    for row in data["results"]:
        assert set(row) >= {"test", "n_prompt", "n_gen", "n_depth", "avg_ts", "stddev_ts"}
        assert row["avg_ts"] > 0 and len(row["samples_ts"]) == 2
    tg = data["results"][1]
    assert tg["n_gen"] == 8 and tg["n_prompt"] == 0 and tg["roofline_ts"] > 0 and tg["roofline_pct"] > 0
    assert tg["bytes_per_token"] > 50_000_000  # every weight of the 135M-parameter model once per token
    assert data["memory_bandwidth_gbs"] > 0 and data["plan"]["backend"] == "cpu"
    assert (get_paths().data_dir / "bench.json").is_file()
    copy, spec = data["results"][3:5]
    assert "speculation" not in copy and copy["n_gen"] == 8
    assert set(spec["speculation"]) == {"drafted", "accepted", "acceptance_rate"}
    assert spec["identical"] in (True, False)  # batched logits may round differently; the row says which
    batch = data["results"][5]  # four sequences in one batch: the weights are read once for four tokens
    assert batch["n_seq"] == 4 and batch["vs_one_sequence"] > 0
    assert batch["bytes_per_token"] < tg["bytes_per_token"] / 2

    session = Session(Settings(model=str(smollm2_path)))
    model = session.find_installed()
    plan = session.plan(model, session.spec_for(model))
    assert any("measured on this machine by vibelocal bench" in r for r in plan.reasons)
    measured = data["results"][2]["avg_ts"]  # the deepest row: the trace midpoint lies beyond it
    assert plan.expected_decode_tok_s == round(measured, 1)


def test_no_save_leaves_the_planner_alone(smollm2_path):
    result = bench(
        "--model", str(smollm2_path), "--pp", "16", "--tg", "4", "--depths", "0", "-r", "1", "--no-save"
    )
    assert result.exit_code == 0, result.output
    assert "tg4" in result.stdout and "roofline" in result.stdout
    assert "copy4 +spec" in result.stdout and "speculation on the copy trace" in result.stdout
    assert "a batch of 4 sequences decodes" in result.stdout
    assert not (get_paths().data_dir / "bench.json").exists()


def test_bad_depths_and_missing_models_are_one_line():
    result = bench("--depths", "0,abc")
    assert result.exit_code == ExitCode.USAGE and "--depths" in result.output
    result = bench("--model", "vibethinker-3b")
    assert result.exit_code == ExitCode.MODEL_UNAVAILABLE and "not installed" in result.output
