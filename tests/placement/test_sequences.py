"""Plans for K sequences side by side (`--votes K`, `serve --parallel N`): the KV cache grows K-fold, shorter
contexts per sequence before fewer sequences, fewer sequences (with the reason) where K do not fit."""

from __future__ import annotations

import pytest
from testpaths import FIXTURES

from vibelocal.config import Settings
from vibelocal.engine.scripted import Script, ScriptedEngine
from vibelocal.models.catalog import Catalog
from vibelocal.placement.planner import make_plan, memory_for, shape_from_spec
from vibelocal.placement.profile import load_profile
from vibelocal.placement.sequences import turn_ctx
from vibelocal.session import Session

PROFILES = FIXTURES / "profiles"


@pytest.fixture(scope="module")
def spec():
    return Catalog().get("vibethinker-3b")


def hw(name: str):
    return load_profile(PROFILES / f"{name}.json")


def test_the_kv_cache_holds_every_sequence(spec):
    shape = shape_from_spec(spec, "Q4_K_M", spec.quant_file("Q4_K_M").size_bytes)
    machine = hw("rtx4060_32gb")
    one, _ = memory_for(shape, machine, None, 16384, 0, "f16")
    four, _ = memory_for(shape, machine, None, 16384, 0, "f16", n_seq=4)
    assert four.kv_cache_bytes == 4 * one.kv_cache_bytes
    assert four.weights_bytes == one.weights_bytes and four.compute_bytes == one.compute_bytes


def test_a_big_machine_gets_every_sequence_and_keeps_the_model_on_the_gpu(spec):
    machine = hw("rtx4060_32gb")
    single = make_plan(spec, machine, Settings())
    plan = make_plan(spec, machine, Settings(), n_parallel=4)
    assert plan.n_parallel == 4 and plan.fits and plan.quant == single.quant
    # four sequences at 32k would push layers off the GPU: each gets a shorter context instead
    assert plan.fit == single.fit == "full_gpu" and plan.n_gpu_layers == single.n_gpu_layers
    assert turn_ctx(8192, 2048, 131072) <= plan.n_ctx < single.n_ctx
    kv = plan.host.kv_cache_bytes + plan.device.kv_cache_bytes
    assert kv == single.device.kv_cache_bytes * 4 * plan.n_ctx // single.n_ctx
    assert any(
        r.startswith("4 sequences side by side") and f"one sequence alone would get {single.n_ctx:,}" in r
        for r in plan.reasons
    )
    assert not any("sequences fit side by side" in w for w in plan.warnings)


def test_a_small_laptop_gets_fewer_sequences_and_says_why(spec):
    plan = make_plan(spec, hw("intel_8gb_nogpu"), Settings(), n_parallel=8)
    assert plan.fits and 1 <= plan.n_parallel < 8
    assert any(f"{plan.n_parallel} sequence" in r and "not 8" in r for r in plan.reasons)
    assert any(w.startswith(f"only {plan.n_parallel} of 8 sequences fit side by side") for w in plan.warnings)
    # each sequence keeps at least the context a medium-budget turn needs, and the plan says it is per sequence
    assert plan.n_ctx >= turn_ctx(8192, 2048, 131072)
    assert f"context {plan.n_ctx:,} tokens per sequence" in plan.reasons[1]
    assert not any("traces will be cut short" in w for w in plan.warnings)


def test_a_netbook_falls_back_to_one_sequence(spec):
    plan = make_plan(spec, hw("netbook_4gb"), Settings(), n_parallel=4)
    assert plan.n_parallel == 1 and plan.fits
    assert any(r.startswith("1 sequence, not 4") and "one after another" in r for r in plan.reasons)


def test_a_set_context_is_kept_and_one_sequence_asks_for_nothing(spec):
    plan = make_plan(spec, hw("intel_8gb_nogpu"), Settings(ctx=8192), n_parallel=2)
    assert plan.n_ctx == 8192 and plan.n_parallel == 2
    alone = make_plan(spec, hw("intel_8gb_nogpu"), Settings())
    assert alone.n_parallel == 1 and not any("sequence" in r for r in alone.reasons)


@pytest.mark.parametrize(
    ("thinking", "answer", "want"),
    [(8192, 2048, 12288), (2048, 2048, 8192), (None, 2048, 16384), (0, 16, 4096)],
)
def test_turn_context(thinking, answer, want):
    assert turn_ctx(thinking, answer, 131072) == want
    assert turn_ctx(thinking, answer, 2048) == 2048


def test_the_session_plans_k_sequences_only_for_an_engine_that_forks(smollm2_path):
    plans = []

    def loader(model, plan, spec):
        plans.append(plan)
        return ScriptedEngine(Script(answer="ok"))

    settings = Settings(model=str(smollm2_path))
    forks = Session(settings, engine_loader=loader, hardware=hw("rtx4060_32gb"), loader_forks=True)
    engine = forks.engine(parallel=4)
    assert plans[-1].n_parallel == 4
    assert forks.engine() is engine and forks.engine(parallel=2) is engine  # fewer sequences: no reload
    assert len(plans) == 1
    forks.engine(parallel=6)  # more: planned and loaded again
    assert len(plans) == 2 and plans[-1].n_parallel == 6

    single = Session(settings, engine_loader=loader, hardware=hw("rtx4060_32gb"))
    single.engine(parallel=4)
    assert plans[-1].n_parallel == 1  # the samples will run one after another: no KV cache for four
