"""The planner: a table of machines with asserted plans, settings overrides, unified memory, real-file plans."""

from __future__ import annotations

import pytest
from testpaths import FIXTURES

from vibelocal.config import Settings
from vibelocal.errors import UsageError
from vibelocal.models.catalog import Catalog
from vibelocal.models.gguf import read_gguf_info
from vibelocal.placement.planner import (
    make_plan,
    memory_for,
    plan_for_model,
    quant_fits,
    shape_from_gguf,
    shape_from_spec,
)
from vibelocal.placement.profile import load_profile
from vibelocal.types import InstalledModel

PROFILES = FIXTURES / "profiles"
GiB = 1024**3


@pytest.fixture(scope="module")
def spec():
    return Catalog().get("vibethinker-3b")


def hw(name: str):
    return load_profile(PROFILES / f"{name}.json")


def _within_budget(plan, machine) -> None:
    """A fitting plan keeps its margins on every device."""
    host_need = plan.host.total_bytes - plan.host.reclaimable_bytes
    assert host_need + plan.host.margin_bytes <= machine.ram_available_bytes
    if plan.device.total_bytes:
        gpu = next(g for g in machine.gpus if g.name == plan.gpu_name)
        assert plan.device.total_bytes + plan.device.margin_bytes <= gpu.memory_free_bytes


# (profile, fit, quants allowed, minimum context, offload check)
TABLE = [
    ("intel_8gb_nogpu", "cpu", {"Q4_K_M"}, 16384, lambda p: p.n_gpu_layers == 0),
    ("m2_air_16gb", "full_gpu", {"Q8_0"}, 32768, lambda p: p.backend == "metal" and p.n_gpu_layers == 37),
    ("rtx4060_32gb", "full_gpu", {"Q8_0"}, 32768, lambda p: p.backend == "cuda" and p.n_gpu_layers == 37),
    (
        "rtx3050_16gb",
        "partial_gpu",
        {"Q4_K_M"},
        16384,
        lambda p: p.backend == "cuda" and 0 < p.n_gpu_layers < 37,
    ),
    ("netbook_4gb", "cpu", {"Q2_K", "Q3_K_M"}, 4096, lambda p: p.n_gpu_layers == 0),
    ("nvidia_cpu_build", "cpu", {"Q4_K_M"}, 32768, lambda p: p.backend == "cpu" and p.n_gpu_layers == 0),
]


@pytest.mark.parametrize(("profile", "fit", "quants", "min_ctx", "offload"), TABLE, ids=[t[0] for t in TABLE])
def test_profile_table(spec, profile, fit, quants, min_ctx, offload):
    machine = hw(profile)
    plan = make_plan(spec, machine, Settings())
    assert plan.fits and plan.fit == fit
    assert plan.quant in quants
    assert min_ctx <= plan.n_ctx <= spec.architecture.context_length
    assert offload(plan)
    assert plan.n_layers == 36
    assert plan.n_threads == machine.cpu_cores_physical
    assert plan.flash_attn and plan.kv_cache_type == "f16" and plan.use_mmap
    assert plan.expected_decode_tok_s and plan.expected_decode_tok_s > 0
    assert plan.expected_trace_s == pytest.approx(8192 / plan.expected_decode_tok_s, rel=0.01)
    assert plan.reasons and all(isinstance(r, str) and r for r in plan.reasons)
    _within_budget(plan, machine)


def test_netbook_gets_a_small_quant_and_a_short_context(spec):
    plan = make_plan(spec, hw("netbook_4gb"), Settings())
    sizes = {q: spec.quant_file(q).size_bytes for q in spec.quants}
    assert sizes[plan.quant] <= sizes["Q3_K_M"]
    assert 4096 <= plan.n_ctx <= 16384


def test_nothing_fits_says_so_with_numbers(spec):
    plan = make_plan(spec, hw("nothing_fits"), Settings())
    assert not plan.fits and plan.fit == "wont_fit"
    assert plan.quant == "Q2_K" and plan.n_ctx == 4096
    assert plan.reasons[0].startswith("nothing fits:") and "GB of RAM" in plan.reasons[0]
    assert {q.fit for q in quant_fits(spec, hw("nothing_fits"), Settings())} == {"wont_fit"}


def test_cpu_only_build_with_an_nvidia_gpu_gives_reinstall_advice(spec):
    plan = make_plan(spec, hw("nvidia_cpu_build"), Settings())
    advice = [w for w in plan.warnings if "RTX 4060" in w]
    assert (
        advice and "vibelocal doctor --reinstall-backend cuda" in advice[0] and "-DGGML_CUDA=on" in advice[0]
    )
    assert "no GPU this llama.cpp build can use" in " ".join(plan.reasons)


def test_unified_memory_host_plus_device_within_available_ram(spec):
    machine = hw("m2_air_16gb")
    for settings in (Settings(), Settings(ctx=65536), Settings(quant="BF16")):
        plan = make_plan(spec, machine, settings)
        if plan.fits:
            used = plan.host.total_bytes - plan.host.reclaimable_bytes + plan.device.total_bytes
            assert used + plan.host.margin_bytes <= machine.ram_available_bytes
    tight = machine.model_copy(update={"ram_available_bytes": 5 * GiB})
    plan = make_plan(spec, tight, Settings(quant="Q8_0", ctx=65536))
    assert not plan.fits  # fits the Metal working set, but not the RAM it shares


def test_better_quants_passed_over_off_the_gpu_are_explained(spec):
    plan = make_plan(spec, hw("intel_8gb_nogpu"), Settings())
    assert plan.quant == "Q4_K_M"
    assert "default quant" in plan.reasons[0]


def test_settings_overrides_are_honoured(spec):
    machine = hw("rtx4060_32gb")
    plan = make_plan(
        spec, machine, Settings(quant="Q4_K_M", ctx=8192, kv_cache_type="q8_0", n_gpu_layers=10, threads=3)
    )
    assert (plan.quant, plan.n_ctx, plan.kv_cache_type, plan.n_gpu_layers, plan.n_threads) == (
        "Q4_K_M",
        8192,
        "q8_0",
        10,
        3,
    )
    assert plan.fit == "partial_gpu"
    assert make_plan(spec, machine, Settings(n_gpu_layers=0)).fit == "cpu"
    capped = make_plan(spec, machine, Settings(ctx=1_000_000))
    assert capped.n_ctx == spec.architecture.context_length
    assert any("trained" in w for w in capped.warnings)
    with pytest.raises(UsageError, match="no quant"):
        make_plan(spec, machine, Settings(quant="Q9_9"))


def test_q8_kv_cache_halves_the_kv_bytes(spec):
    machine = hw("intel_8gb_nogpu")
    f16 = make_plan(spec, machine, Settings(ctx=16384))
    q8 = make_plan(spec, machine, Settings(ctx=16384, kv_cache_type="q8_0"))
    assert q8.host.kv_cache_bytes == pytest.approx(f16.host.kv_cache_bytes * 34 / 64, rel=0.001)


def test_kv_arithmetic_for_vibethinker(spec):
    shape = shape_from_spec(spec, "Q4_K_M", spec.quant_file("Q4_K_M").size_bytes)
    assert shape.kv_bytes(32768, "f16", 36) == 2 * 36 * 32768 * 2 * 128 * 2  # 1.125 GiB
    assert 10_000 < shape.n_ff < 12_000  # Qwen2.5-3B: 11008, derived from the parameter count


def test_quant_fits_table(spec):
    rows = quant_fits(spec, hw("rtx3050_16gb"), Settings())
    sizes = [r.size_bytes for r in rows]
    assert sizes == sorted(sizes, reverse=True)  # size order, largest (best quality) first
    assert [r.quant for r in rows if r.quant not in ("BF16", "F16")][:2] == ["Q8_0", "Q6_K"]
    assert {r.quant for r in rows} == set(spec.quants)
    by_quant = {r.quant: r for r in rows}
    assert by_quant["Q2_K"].fit in ("full_gpu", "partial_gpu")
    for r in rows:
        assert r.fit in ("full_gpu", "partial_gpu", "cpu", "wont_fit")
        if r.fit != "wont_fit":
            assert r.expected_decode_tok_s > 0 and r.expected_trace_s == pytest.approx(
                8192 / r.expected_decode_tok_s, rel=0.01
            )
    assert by_quant["Q2_K"].expected_decode_tok_s > by_quant["Q8_0"].expected_decode_tok_s


def test_smollm2_file_gets_a_sane_plan(smollm2_path):
    model = InstalledModel(path=smollm2_path, size_bytes=smollm2_path.stat().st_size)
    machine = hw("intel_8gb_nogpu")
    plan = plan_for_model(model, None, machine, Settings())
    assert plan.fits and plan.quant == "Q4_1" and plan.n_layers == 30
    assert plan.n_ctx == 8192  # its trained context: never above it
    assert plan.host.kv_cache_bytes == 2 * 30 * 8192 * 3 * 64 * 2
    info = read_gguf_info(smollm2_path)
    assert (
        plan.host.weights_bytes == info.tensor_data_bytes
    )  # Q4_1: nothing repacked, the mapped file is resident
    assert plan_for_model(model, None, machine, Settings(ctx=2048), info=info).n_ctx == 2048


def test_offloading_moves_bytes_from_host_to_device(smollm2_path):
    shape = shape_from_gguf(read_gguf_info(smollm2_path))
    machine = hw("rtx4060_32gb")
    gpu = machine.gpus[0]
    cpu_host, cpu_dev = memory_for(shape, machine, gpu, 8192, 0, "f16")
    half_host, half_dev = memory_for(shape, machine, gpu, 8192, 15, "f16")
    full_host, full_dev = memory_for(shape, machine, gpu, 8192, 31, "f16")
    assert cpu_dev.total_bytes == 0
    assert cpu_host.weights_bytes > half_host.weights_bytes > full_host.weights_bytes > 0  # token_embd stays
    assert half_dev.kv_cache_bytes == cpu_host.kv_cache_bytes // 2 == half_host.kv_cache_bytes
    assert full_host.kv_cache_bytes == 0 and full_dev.kv_cache_bytes == cpu_host.kv_cache_bytes
    assert full_dev.weights_bytes == shape.n_layers * shape.layer_bytes + shape.output_head_bytes


def test_threads_are_capped_at_the_logical_cpus_and_the_plan_says_so(spec):
    machine = hw("rtx4060_32gb")
    plan = make_plan(spec, machine, Settings(threads=100_000))
    assert plan.n_threads == machine.cpu_cores_logical
    expected = (
        f"{machine.cpu_cores_logical} threads: 100,000 were asked for, capped at this machine's "
        f"{machine.cpu_cores_logical} logical CPUs"
    )
    assert expected in plan.reasons


def test_threads_within_the_cpus_are_kept_as_set(spec):
    machine = hw("rtx4060_32gb")
    plan = make_plan(spec, machine, Settings(threads=2))
    assert plan.n_threads == 2 and "2 threads, as set" in plan.reasons


def test_the_headline_is_one_plain_sentence(spec):
    from vibelocal.placement.planner import headline

    plan = make_plan(spec, hw("rtx3050_16gb"), Settings())
    line = headline(plan)
    assert line.startswith(f"{plan.quant}: best fit for this machine (about ") and line.endswith(" tokens/s)")
    assert "nothing fits" not in line and ";" not in line
    assert "does not fit" in headline(make_plan(spec, hw("nothing_fits"), Settings()))


def test_all_layers_on_the_gpu_never_says_the_rest_do_not_fit(spec):
    plan = make_plan(spec, hw("rtx3050_16gb"), Settings())
    assert plan.n_gpu_layers == plan.n_layers  # all layers, not the output head: the wording case
    assert not any("the rest do not fit" in r for r in plan.reasons)
    assert any(
        r.startswith(f"all {plan.n_layers} layers on ") and "output head runs on the CPU" in r
        for r in plan.reasons
    )
