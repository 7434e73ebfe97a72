"""Placement planner: pure arithmetic from (model, hardware, settings) to a Plan with reasons; no I/O.

Memory and speed arithmetic lives in placement/memory.py; this module searches placements, picks the quant and
context, and explains the choice. The only I/O is plan_for_model reading a GGUF header when the caller did not
pass one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel

from vibelocal.config import Settings, parse_budget
from vibelocal.errors import UsageError
from vibelocal.models.gguf import GgufInfo
from vibelocal.placement.build import reinstall_commands
from vibelocal.placement.measured import MeasuredSpeed
from vibelocal.placement.memory import (
    CTX_FLOOR,
    CTX_LADDER,
    CTX_WANTED,
    N_BATCH,
    QUANT_ORDER,
    SIXTEEN_BIT,
    TRACE_TOKENS,
    ModelShape,
    decode_tok_s,
    fits_in,
    memory_for,
    shape_from_gguf,
    shape_from_spec,
)
from vibelocal.placement.sequences import SequenceFit, fit_sequences, turn_ctx
from vibelocal.types import GpuInfo, HardwareProfile, InstalledModel, MemoryBreakdown, ModelSpec, Plan
from vibelocal.units import format_bytes

# --------------------------------------------------------------------------- placement search


@dataclass
class Placement:
    """One (quant, context) on one machine: where the layers go and what it costs."""

    shape: ModelShape
    n_ctx: int
    n_gpu: int
    gpu: GpuInfo | None
    host: MemoryBreakdown
    device: MemoryBreakdown
    fits: bool
    tok_s: float
    notes: list[str] = field(default_factory=list)
    n_seq: int = 1
    """Sequences of `n_ctx` tokens each that the KV cache holds side by side."""

    @property
    def fit(self) -> str:
        if not self.fits:
            return "wont_fit"
        if self.n_gpu > self.shape.n_layers:
            return "full_gpu"
        return "partial_gpu" if self.n_gpu > 0 else "cpu"

    @property
    def expected_tok_s(self) -> float | None:
        """Decode speed, for a placement that fits."""
        return self.tok_s if self.fits else None

    @property
    def expected_trace_s(self) -> float | None:
        """Seconds to decode an 8k-token reasoning trace, for a placement that fits."""
        return round(TRACE_TOKENS / self.tok_s, 1) if self.fits and self.tok_s else None


def usable_gpu(hw: HardwareProfile) -> GpuInfo | None:
    """The GPU the build can drive with the most free memory (one GPU; no multi-GPU split)."""
    usable = [g for g in hw.gpus if g.usable_by_build and g.backend in hw.build_backends]
    return max(usable, key=lambda g: g.memory_free_bytes, default=None)


def place(
    shape: ModelShape, hw: HardwareProfile, settings: Settings, n_ctx: int, n_seq: int = 1
) -> Placement:
    """Offload as many layers as fit on the GPU (all of them and the head, ideally); the rest run on the CPU."""
    gpu, kv, L = usable_gpu(hw), settings.kv_cache_type, shape.n_layers
    notes: list[str] = []
    if settings.n_gpu_layers is not None:
        wanted = L + 1 if settings.n_gpu_layers < 0 else min(settings.n_gpu_layers, L + 1)
        if gpu is None and wanted > 0:
            notes.append("n_gpu_layers is set, but no GPU this build can use: running on the CPU")
        candidates = [wanted if gpu is not None else 0]
    else:
        candidates = list(range(L + 1, -1, -1)) if gpu is not None else [0]
    chosen = candidates[-1]
    for n_gpu in candidates:
        host, device = memory_for(shape, hw, gpu, n_ctx, n_gpu, kv, n_seq)
        if n_gpu == 0 or gpu is None or device.total_bytes + device.margin_bytes <= gpu.memory_free_bytes:
            chosen = n_gpu
            break
    host, device = memory_for(shape, hw, gpu, n_ctx, chosen, kv, n_seq)
    return Placement(
        shape=shape,
        n_ctx=n_ctx,
        n_gpu=chosen,
        gpu=gpu if chosen > 0 else None,
        host=host,
        device=device,
        fits=fits_in(host, device, gpu if chosen > 0 else None, hw),
        tok_s=decode_tok_s(shape, hw, gpu, n_ctx, chosen, kv),
        notes=notes,
        n_seq=n_seq,
    )


# --------------------------------------------------------------------------- choosing quant and context


class QuantFit(BaseModel):
    """How one quant would run on a machine (a fit tag, as LM Studio shows them)."""

    quant: str
    size_bytes: int
    fit: str
    """full_gpu, partial_gpu, cpu or wont_fit."""
    n_ctx: int
    n_gpu_layers: int
    host_bytes: int
    device_bytes: int
    expected_decode_tok_s: float | None
    expected_trace_s: float | None
    """Seconds to decode an 8k-token reasoning trace."""


def target_ctx(settings: Settings, n_ctx_train: int) -> int:
    """The context reasoning wants: 32k, more when the budget needs it, never above the trained context."""
    try:
        budget = parse_budget(settings.budget).tokens
    except UsageError:
        budget = None
    need = 32768
    if budget:
        need = max(need, -(-(budget + settings.answer_budget + 2048) // 8192) * 8192)
    return min(need, n_ctx_train)


def _ctx_ladder(shape: ModelShape, settings: Settings) -> list[int]:
    if settings.ctx is not None:
        return [min(settings.ctx, shape.n_ctx_train)]
    top = target_ctx(settings, shape.n_ctx_train)
    return [top] + [c for c in CTX_LADDER if c < top and c >= min(CTX_FLOOR, shape.n_ctx_train)]


def best_placement(shape: ModelShape, hw: HardwareProfile, settings: Settings, floor: int = 0) -> Placement:
    """The longest context (down to `floor`) that fits; when none does, the shortest one tried, not fitting."""
    last = None
    for n_ctx in _ctx_ladder(shape, settings):
        if n_ctx < floor and last is not None:
            break
        last = place(shape, hw, settings, n_ctx)
        if last.fits:
            return last
    assert last is not None
    return last


def _candidate_quants(spec: ModelSpec, forced: str | None) -> list[str]:
    if forced:
        match = next((q for q in spec.quants if q.lower() == forced.lower()), None)
        if match is None:
            raise UsageError(f"{spec.name} has no quant {forced!r}; available: {', '.join(spec.quants)}")
        return [match]
    ranked = [q for q in QUANT_ORDER if q in spec.quants] + [q for q in spec.quants if q not in QUANT_ORDER]
    return [q for q in ranked if q.upper() not in SIXTEEN_BIT] or ranked


def _spec_shape(spec: ModelSpec, quant: str, model_bytes: int | None = None) -> ModelShape:
    qf = spec.quant_file(quant)
    size = model_bytes if model_bytes is not None else (qf.size_bytes if qf else 0)
    if not size:
        raise UsageError(f"{spec.name}:{quant} has no known size; pass the file instead")
    return shape_from_spec(spec, quant, size)


def make_plan(
    spec: ModelSpec,
    hw: HardwareProfile,
    settings: Settings,
    *,
    quant: str | None = None,
    model_bytes: int | None = None,
    n_parallel: int = 1,
) -> Plan:
    """Plan a catalog model before download: pick the quant, the context and the offload (for `n_parallel`
    sequences side by side when they fit; fewer, and the reason, when they do not)."""
    forced = quant or settings.quant
    if model_bytes is not None and forced:
        single = best_placement(_spec_shape(spec, forced, model_bytes), hw, settings)
        return _finish(single, hw, settings, n_parallel=n_parallel)
    shapes = [_spec_shape(spec, q) for q in _candidate_quants(spec, forced)]
    winner, losers, passed_over = choose(shapes, hw, settings, None if forced else spec.default_quant)
    return _finish(winner, hw, settings, losers=losers, passed_over=passed_over, n_parallel=n_parallel)


def choose(
    shapes: list[ModelShape], hw: HardwareProfile, settings: Settings, default_quant: str | None = None
) -> tuple[Placement, list[Placement], Placement | None]:
    """Best quant that fits with the wanted context (16k, else less, never below 4k), then the longest context.

    Returns (winner, better quants that did not fit, better quant passed over for speed). Unless the whole
    model goes on the GPU, quants above the manifest's default are passed over: off the GPU, decode speed falls
    in proportion to size. When nothing fits, the smallest quant at the shortest context comes back, not fitting.
    """
    for want in (CTX_WANTED, 12288, 8192, 6144, CTX_FLOOR):
        losers: list[Placement] = []
        fitting: list[Placement] = []
        for shape in shapes:
            p = best_placement(shape, hw, settings, floor=min(want, shape.n_ctx_train))
            if not (p.fits and p.n_ctx >= min(want, shape.n_ctx_train)):
                losers.append(p)
                continue
            fitting.append(p)
            if p.fit == "full_gpu" or default_quant is None or shape.quant.lower() == default_quant.lower():
                return p, losers, (fitting[0] if len(fitting) > 1 else None)
            if default_quant.lower() not in [s.quant.lower() for s in shapes]:
                return p, losers, None
        if fitting:
            return fitting[-1], losers, (fitting[0] if len(fitting) > 1 else None)
    smallest = min(shapes, key=lambda s: s.weights_bytes)
    n_ctx = min(settings.ctx or CTX_FLOOR, smallest.n_ctx_train)
    return place(smallest, hw, settings, n_ctx), [], None


def plan_for_model(
    model: InstalledModel,
    spec: ModelSpec | None,
    hw: HardwareProfile,
    settings: Settings,
    *,
    info: GgufInfo | None = None,
    n_parallel: int = 1,
) -> Plan:
    """Plan an actual file: its real size, quant and architecture (read from its header when `info` is None),
    for `n_parallel` sequences side by side when they fit."""
    if info is None:
        from vibelocal.models.gguf import read_gguf_info

        info = read_gguf_info(model.path)
    shape = shape_from_gguf(info)
    return _finish(best_placement(shape, hw, settings), hw, settings, n_parallel=n_parallel)


def _sequences(p: Placement, hw: HardwareProfile, settings: Settings, n_parallel: int) -> SequenceFit:
    """The placement for `n_parallel` sequences of the chosen quant (placement/sequences.py)."""
    try:
        thinking = parse_budget(settings.budget).tokens
    except UsageError:
        thinking = None
    return fit_sequences(
        p,
        n_parallel,
        lambda n_ctx, n_seq: place(p.shape, hw, settings, n_ctx, n_seq),
        floor_ctx=turn_ctx(thinking, settings.answer_budget, p.shape.n_ctx_train),
        ctx_fixed=settings.ctx is not None,
    )


def apply_measured(plan: Plan, measured: MeasuredSpeed | None) -> Plan:
    """The plan with its speed from `vibelocal bench` when this machine measured it, and a reason saying so."""
    if measured is None or not plan.fits:
        return plan
    rate = measured.decode_at(min(plan.n_ctx, TRACE_TOKENS // 2 + 1024))
    if not rate:
        return plan
    estimate = plan.expected_decode_tok_s
    reason = (
        f"speed measured on this machine by vibelocal bench: {rate:.1f} tok/s half-way through an 8k trace"
    )
    if estimate:
        reason += f" (the estimate was {estimate:.1f})"
    return plan.model_copy(
        update={
            "expected_decode_tok_s": round(rate, 1),
            "expected_trace_s": round(TRACE_TOKENS / rate, 1),
            "reasons": [*plan.reasons, reason],
        }
    )


def quant_fits(spec: ModelSpec, hw: HardwareProfile, settings: Settings) -> list[QuantFit]:
    """A fit tag for every quant of a manifest, largest file first (quality order, by size), with its speed."""
    ranked = [q for q in QUANT_ORDER if q in spec.quants] + [q for q in spec.quants if q not in QUANT_ORDER]
    sizes = {q: f.size_bytes for q in ranked if (f := spec.quant_file(q)) is not None}
    ranked.sort(key=lambda q: -sizes.get(q, 0))  # stable: equal or unknown sizes keep the quality order
    rows = []
    for q in ranked:
        p = best_placement(_spec_shape(spec, q), hw, settings)
        rows.append(
            QuantFit(
                quant=q,
                size_bytes=p.shape.size_bytes,
                fit=p.fit,
                n_ctx=p.n_ctx,
                n_gpu_layers=p.n_gpu,
                host_bytes=p.host.total_bytes,
                device_bytes=p.device.total_bytes,
                expected_decode_tok_s=p.expected_tok_s,
                expected_trace_s=p.expected_trace_s,
            )
        )
    return rows


# --------------------------------------------------------------------------- plain-words explanation


def headline(plan: Plan) -> str:
    """The first plan line a user sees, one plain sentence: `Q4_K_M: best fit for this machine (about 6 tokens/s)`."""
    if not plan.fits:
        return f"{plan.quant}: the smallest, and it does not fit this machine's free memory"
    speed = f" (about {plan.expected_decode_tok_s:.0f} tokens/s)" if plan.expected_decode_tok_s else ""
    return f"{plan.quant}: best fit for this machine{speed}"


def _need_line(p: Placement) -> str:
    where = f"{format_bytes(p.host.total_bytes - p.host.reclaimable_bytes + p.host.margin_bytes)} of RAM"
    if p.device.total_bytes:
        where += f" and {format_bytes(p.device.total_bytes + p.device.margin_bytes)} on the GPU"
    return f"{p.shape.quant} at {p.n_ctx:,} tokens needs {where} (margins included)"


def _finish(
    p: Placement,
    hw: HardwareProfile,
    settings: Settings,
    *,
    losers: list[Placement] | None = None,
    passed_over: Placement | None = None,
    n_parallel: int = 1,
) -> Plan:
    """The Plan for a chosen placement: its settings, a reason for each choice, and what the user should know."""
    seq = _sequences(p, hw, settings, n_parallel)
    p = seq.placement
    ctx_reason, ctx_warnings = _context_reason(p, settings)
    reasons = [_quant_reason(p, hw, losers, passed_over), ctx_reason, _layers_reason(p, hw)]
    reasons += [seq.reason] if seq.reason else []
    reasons += _runtime_reasons(hw, settings)
    warnings = [*p.notes, *ctx_warnings, *([seq.warning] if seq.warning else []), *_machine_warnings(hw)]
    warnings += _speed_warnings(p)
    return Plan(
        fits=p.fits,
        quant=p.shape.quant,
        backend=p.gpu.backend if p.gpu is not None and p.n_gpu > 0 else "cpu",
        n_gpu_layers=p.n_gpu,
        n_layers=p.shape.n_layers,
        n_ctx=p.n_ctx,
        n_threads=plan_threads(hw, settings),
        n_batch=N_BATCH,
        n_ubatch=N_BATCH,
        flash_attn=True,
        kv_cache_type=settings.kv_cache_type,
        use_mmap=True,
        host=p.host,
        device=p.device,
        expected_decode_tok_s=p.expected_tok_s,
        reasons=reasons,
        warnings=warnings,
        fit=p.fit,  # type: ignore[arg-type]
        gpu_name=p.gpu.name if p.gpu is not None else None,
        n_ctx_train=p.shape.n_ctx_train,
        expected_trace_s=p.expected_trace_s,
        n_parallel=p.n_seq,
    )


def _quant_reason(
    p: Placement, hw: HardwareProfile, losers: list[Placement] | None, passed_over: Placement | None
) -> str:
    """Why this quant: it fits (or nothing does), the better ones do not, or a better one is too slow."""
    avail = f"{format_bytes(hw.ram_available_bytes)} of RAM available"
    if p.gpu is not None:
        avail += f", {format_bytes(p.gpu.memory_free_bytes)} free on {p.gpu.name}"
    if not p.fits:
        return f"nothing fits: {_need_line(p)}; {avail}"
    if passed_over is not None:
        return (
            f"{p.shape.quant}, the model's default quant: {passed_over.shape.quant} also fits but, not entirely on "
            f"a GPU, decodes at about {passed_over.tok_s:.1f} tok/s instead of {p.tok_s:.1f}"
        )
    if losers:
        return f"{p.shape.quant}, the best quality that fits: {_need_line(losers[-1])}; {avail}"
    return f"fits: {_need_line(p)}; {avail}"


def _context_reason(p: Placement, settings: Settings) -> tuple[str, list[str]]:
    """Why this context length, and warnings about it (capped at the trained length, too short for reasoning)."""
    n_ctx, trained = p.n_ctx, p.shape.n_ctx_train
    warnings: list[str] = []
    if not p.fits:
        reason = f"context {n_ctx:,} tokens: the shortest worth planning, and still too much"
    elif settings.ctx is not None:
        reason = f"context {n_ctx:,} tokens, as set"
        if settings.ctx > trained:
            warnings.append(f"context {settings.ctx:,} is above the model's trained {trained:,}; capped")
    elif p.n_seq > 1:  # placement/sequences.py kept at least what one turn's budgets need
        reason = (
            f"context {n_ctx:,} tokens per sequence: room for one turn's thinking budget, answer and prompt"
        )
        return reason, warnings
    elif n_ctx == trained and trained < 32768:
        reason = f"context {n_ctx:,} tokens: the most the model was trained for"
    elif n_ctx >= (wanted := target_ctx(settings, trained)):
        reason = f"context {n_ctx:,} tokens: room for the thinking budget, the answer and the prompt"
    else:
        reason = f"context {n_ctx:,} tokens: the longest that fits ({wanted:,} wanted)"
    if p.fits and n_ctx < CTX_WANTED and trained >= CTX_WANTED:
        warnings.append(f"context below {CTX_WANTED:,} tokens: long reasoning traces will be cut short")
    return reason, warnings


def _layers_reason(p: Placement, hw: HardwareProfile) -> str:
    """Where the layers run: all on the GPU, split, or all on the CPU (and why not the GPU)."""
    L, gpu_name = p.shape.n_layers, p.gpu.name if p.gpu else "the GPU"
    if p.n_gpu > L:
        return f"all {L} layers and the output head on {gpu_name}"
    if p.n_gpu == L:
        return f"all {L} layers on {gpu_name}; the output head runs on the CPU, as it does not fit there too"
    if p.n_gpu > 0:
        return f"{p.n_gpu} of {L} layers on {gpu_name}; the other {L - p.n_gpu} do not fit in its free memory"
    if usable_gpu(hw) is None:
        return "all layers on the CPU: no GPU this llama.cpp build can use"
    return "all layers on the CPU: not even one layer fits in the GPU's free memory"


def plan_threads(hw: HardwareProfile, settings: Settings) -> int:
    """The `threads` setting capped at the logical CPU count (more only slows decoding, or crashes llama.cpp);
    unset: one per physical core."""
    if settings.threads is None:
        return hw.cpu_cores_physical
    return max(1, min(settings.threads, hw.cpu_cores_logical))


def _runtime_reasons(hw: HardwareProfile, settings: Settings) -> list[str]:
    """Threads, flash attention and the KV cache type."""
    threads = plan_threads(hw, settings)
    if settings.threads is None:
        why = f"{threads} threads: one per physical core"
    elif threads < settings.threads:
        why = f"{threads} threads: {settings.threads:,} were asked for, capped at this machine's {threads} logical CPUs"
    else:
        why = f"{threads} threads, as set"
    reasons = [
        why,
        "flash attention on: it keeps the attention scratch small at long contexts",
    ]
    if settings.kv_cache_type != "f16":
        reasons.append(f"KV cache in {settings.kv_cache_type}, as set")
    return reasons


def _machine_warnings(hw: HardwareProfile) -> list[str]:
    """GPUs this build cannot drive (with the rebuild that would), and running on battery."""
    warnings = []
    for gpu in hw.gpus:
        if not gpu.usable_by_build or gpu.backend not in hw.build_backends:
            cmds = reinstall_commands(gpu.backend)
            how = f"; to use it: {' (or: '.join(cmds)}{')' * (len(cmds) - 1)}" if cmds else ""
            warnings.append(f"{gpu.name} found, but this llama.cpp build has no {gpu.backend} backend{how}")
    if hw.on_battery:
        warnings.append("on battery: decoding is slower and drains it quickly")
    return warnings


def _speed_warnings(p: Placement) -> list[str]:
    """A warning when decoding is slow enough that a reasoning trace takes minutes."""
    if p.fits and p.tok_s < 5:
        return [
            f"expected {p.tok_s:.1f} tok/s: an 8k-token trace takes about {TRACE_TOKENS / p.tok_s / 60:.0f} min"
        ]
    return []
