"""The stored bench speeds: interpolation by depth, defensive reading, and the plan they adjust."""

from __future__ import annotations

import json

from vibelocal.paths import get_paths
from vibelocal.placement.measured import MeasuredSpeed, bench_file, load_speed, save_result
from vibelocal.placement.planner import apply_measured
from vibelocal.types import Plan


def test_decode_rate_interpolates_between_depths():
    m = MeasuredSpeed({0: 10.0, 4096: 8.0, 16384: 4.0}, 100.0, 0.0)
    assert m.decode_at(0) == 10.0
    assert m.decode_at(2048) == 9.0
    assert m.decode_at(10240) == 6.0
    assert m.decode_at(50000) == 4.0


def test_round_trip_and_malformed_entries_are_ignored():
    paths = get_paths()
    rows = [
        {"test": "pp512", "n_prompt": 512, "n_gen": 0, "n_depth": 0, "avg_ts": 300.0},
        {"test": "tg128", "n_prompt": 0, "n_gen": 128, "n_depth": 0, "avg_ts": 12.5},
        {"test": "tg128", "n_prompt": 0, "n_gen": 128, "n_depth": True, "avg_ts": 1e9},  # bool depth
        {"test": "tg128", "n_prompt": 0, "n_gen": 128, "n_depth": 4096, "avg_ts": float("nan")},
        {"test": "tg128 x4", "n_gen": 128, "n_depth": 0, "n_seq": 4, "avg_ts": 40.0},  # batched: not one turn
        "junk",
    ]
    save_result(paths, "k", {"results": rows})
    speed = load_speed(paths, "k")
    assert speed is not None and speed.decode_tok_s == {0: 12.5} and speed.prefill_tok_s == 300.0
    assert load_speed(paths, "other") is None
    bench_file(paths).write_text("{not json", encoding="utf-8")
    assert load_speed(paths, "k") is None
    bench_file(paths).write_text(json.dumps({"k": {"results": "nope"}}), encoding="utf-8")
    assert load_speed(paths, "k") is None


def test_apply_measured_replaces_the_estimate_and_says_so():
    plan = Plan(
        fits=True,
        quant="Q4_K_M",
        n_layers=36,
        n_threads=2,
        n_ctx=16384,
        expected_decode_tok_s=20.0,
        reasons=["fits"],
    )
    out = apply_measured(plan, MeasuredSpeed({0: 10.0, 8192: 6.0}, None, 0.0))
    assert out.expected_decode_tok_s == 7.5  # at 5,120 tokens of cache: half-way through an 8k trace
    assert out.expected_trace_s == round(8192 / 7.5, 1)
    assert out.reasons[-1].startswith("speed measured on this machine") and "20.0" in out.reasons[-1]
    assert apply_measured(plan, None) is plan
