"""Placement planner: pure arithmetic from (model, hardware, settings) to a Plan with reasons; no I/O.

The memory model was measured against llama.cpp (benchmarks/plan_accuracy.py prints planned vs measured):
- weights: every tensor byte is resident (llama.cpp maps the file with MAP_POPULATE); tensors the CPU backend
  repacks for faster matmuls (Q4_0, Q4_K, IQ4_NL with AVX2 or NEON) are copied, so they count twice;
- KV cache: 2 (K and V) x layers x n_ctx (padded to 256) x kv heads x head dim x bytes per element, cleared at load;
- compute: on the CPU, the activations one n_ubatch batch touches; on a GPU, llama.cpp's whole reserved buffer
  (dominated by n_ubatch rows of logits), because device memory is allocated up front;
- overhead: the vocabulary's tables (about 300 bytes a token) plus a few MiB of context state, and the GPU
  runtime's own context where one is used (not measurable on a machine without a GPU: an estimate).
The only I/O is plan_for_model reading a GGUF header when the caller did not pass one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pydantic import BaseModel

from vibelocal.budget import parse_budget
from vibelocal.config import Settings
from vibelocal.errors import UsageError
from vibelocal.gguf import GgufInfo
from vibelocal.hardware import reinstall_commands
from vibelocal.types import GpuInfo, HardwareProfile, InstalledModel, MemoryBreakdown, ModelSpec, Plan

MiB = 1024 * 1024
GiB = 1024 * MiB
GB = 1e9
TRACE_TOKENS = 8192
"""The expected time reported per quant is for a reasoning trace of this many tokens."""
CTX_FLOOR = 4096
CTX_WANTED = 16384
CTX_LADDER = (65536, 49152, 32768, 24576, 16384, 12288, 8192, 6144, 4096)
N_BATCH = 512
KV_BYTES_PER_ELEMENT = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}
# Quality order, best first. 16-bit files are chosen only on request: Q8_0 is near-lossless at half the traffic.
QUANT_ORDER = [
    "Q8_0",
    "Q6_K",
    "Q5_K_M",
    "Q5_K_S",
    "Q5_1",
    "Q5_0",
    "Q4_K_M",
    "Q4_K_S",
    "IQ4_XS",
    "IQ4_NL",
    "Q4_1",
    "Q4_0",
    "Q3_K_L",
    "Q3_K_M",
    "IQ3_M",
    "IQ3_S",
    "Q3_K_S",
    "IQ3_XS",
    "IQ3_XXS",
    "Q2_K",
    "Q2_K_S",
    "IQ2_M",
    "IQ2_S",
    "IQ2_XS",
    "IQ2_XXS",
    "IQ1_M",
    "IQ1_S",
]
SIXTEEN_BIT = ("BF16", "F16", "F32")
# Tensor types llama.cpp's CPU backend repacks, with the row multiple it needs; shares for manifest-only plans.
REPACKED_TYPES = {"Q4_0": 8, "Q4_K": 8, "IQ4_NL": 4}
REPACKED_SHARE = {"Q4_0": 0.97, "IQ4_NL": 0.97, "Q4_K_S": 0.95, "Q4_K_M": 0.8}
# Host RSS and device memory a GPU runtime takes on its own (context, kernels, cuBLAS workspace): estimates.
RUNTIME_HOST = {
    "cuda": 300 * MiB,
    "rocm": 300 * MiB,
    "sycl": 300 * MiB,
    "vulkan": 100 * MiB,
    "metal": 30 * MiB,
}
RUNTIME_DEVICE = {"cuda": 350 * MiB, "rocm": 350 * MiB, "sycl": 350 * MiB, "vulkan": 150 * MiB, "metal": 0}
# Memory bandwidth (GB/s) by GPU or Apple chip name; llama.cpp decodes at about 70% of it.
_GPU_BANDWIDTH = [
    (r"H200", 4800), (r"H100", 3350), (r"A100", 1555), (r"4090", 1008), (r"3090", 936), (r"4080", 717),
    (r"3080", 760), (r"4070", 504), (r"3070", 448), (r"4060 ?Ti", 288), (r"4060", 272), (r"3060", 360),
    (r"3050", 192), (r"2060", 336), (r"1660", 192), (r"M\d+ Ultra", 800), (r"M\d+ Max", 400),
    (r"M\d+ Pro", 200), (r"M4", 120), (r"M[23]", 100), (r"M1", 68),
]  # fmt: skip


def _gb(n: int | float) -> str:
    return f"{n / GiB:.1f} GiB"


@dataclass(frozen=True)
class ModelShape:
    """The numbers the arithmetic needs, exact from a GGUF header or estimated from a manifest."""

    quant: str
    n_layers: int
    n_ctx_train: int
    n_embd: int
    n_head: int
    n_head_kv: int
    head_dim_k: int
    head_dim_v: int
    n_ff: int
    vocab_size: int
    weights_bytes: int
    layer_bytes: int
    """Average bytes of one repeating block."""
    output_head_bytes: int
    """Bytes the output head takes on a GPU (a copy of the token embeddings when they are tied)."""
    output_on_host_bytes: int
    """Bytes of a separate output.weight, which leaves the host when the head is offloaded; 0 when tied."""
    repack_bytes: int
    """Bytes the CPU backend copies into its repacked layout when every layer stays on the CPU."""
    size_bytes: int
    """The file's size on disk."""

    def kv_bytes(self, n_ctx: int, kv_type: str, n_layers: int) -> int:
        per_cell = (self.head_dim_k + self.head_dim_v) * self.n_head_kv * KV_BYTES_PER_ELEMENT[kv_type]
        return int(n_layers * padded_ctx(n_ctx) * per_cell)


def padded_ctx(n_ctx: int) -> int:
    """llama.cpp pads the KV cache to a multiple of 256 cells."""
    return -(-n_ctx // 256) * 256


def shape_from_gguf(info: GgufInfo) -> ModelShape:
    """Exact numbers from a file's header."""
    repack = sum(
        t.n_bytes
        for t in info.tensors
        if t.type_id in (2, 12, 20)  # Q4_0, Q4_K, IQ4_NL
        and len(t.shape) == 2
        and t.name != "token_embd.weight"
        and t.shape[1] % REPACKED_TYPES[t.type_name] == 0
    )
    embd = next((t.n_bytes for t in info.tensors if t.name == "token_embd.weight"), 0)
    n_layers = max(info.n_layers, 1)
    return ModelShape(
        quant=info.quant,
        n_layers=n_layers,
        n_ctx_train=info.n_ctx_train or CTX_FLOOR,
        n_embd=info.n_embd,
        n_head=max(info.n_head, 1),
        n_head_kv=max(info.n_head_kv, 1),
        head_dim_k=info.head_dim_k,
        head_dim_v=info.head_dim_v,
        n_ff=info.n_ff or 4 * info.n_embd,
        vocab_size=info.vocab_size,
        weights_bytes=info.tensor_data_bytes,
        layer_bytes=sum(info.layer_weight_bytes) // n_layers,
        output_head_bytes=info.output_weight_bytes or embd,
        output_on_host_bytes=info.output_weight_bytes,
        repack_bytes=repack,
        size_bytes=info.file_size,
    )


def shape_from_spec(spec: ModelSpec, quant: str, model_bytes: int) -> ModelShape:
    """Estimates from a manifest: the file size less its header, split between the blocks and the embeddings."""
    a = spec.architecture
    weights = max(model_bytes - a.vocab_size * 40, model_bytes // 2)  # the header holds the vocabulary
    embd_params = a.vocab_size * a.hidden_size
    attn_params = 2 * a.hidden_size * (a.n_heads + a.n_kv_heads) * a.head_dim
    if a.n_params:
        layer_params = max((a.n_params - embd_params) / a.n_layers, attn_params + a.hidden_size)
        n_ff = max(int((layer_params - attn_params) / (3 * a.hidden_size)), a.hidden_size)
        total_params = a.n_params
    else:
        n_ff = 4 * a.hidden_size
        total_params = embd_params + a.n_layers * (attn_params + 3 * a.hidden_size * n_ff)
    embd_bytes = int(weights * embd_params / total_params)
    layer_bytes = (weights - embd_bytes) // a.n_layers
    return ModelShape(
        quant=quant,
        n_layers=a.n_layers,
        n_ctx_train=a.context_length,
        n_embd=a.hidden_size,
        n_head=a.n_heads,
        n_head_kv=a.n_kv_heads,
        head_dim_k=a.head_dim,
        head_dim_v=a.head_dim,
        n_ff=n_ff,
        vocab_size=a.vocab_size,
        weights_bytes=weights,
        layer_bytes=layer_bytes,
        output_head_bytes=embd_bytes,
        output_on_host_bytes=0,
        repack_bytes=int(layer_bytes * a.n_layers * REPACKED_SHARE.get(quant.upper(), 0.0)),
        size_bytes=model_bytes,
    )


# --------------------------------------------------------------------------- memory for one placement


def host_margin(hw: HardwareProfile) -> int:
    """RAM kept free for the OS and other apps: 5% of RAM, between 256 MiB and 1 GiB."""
    return int(min(max(hw.ram_total_bytes * 0.05, 256 * MiB), 1 * GiB))


def device_margin(gpu: GpuInfo) -> int:
    """GPU memory kept free (llama.cpp's --fit keeps 1 GiB): 10% of it, between 256 MiB and 1 GiB."""
    return int(min(max(gpu.memory_total_bytes * 0.10, 256 * MiB), 1 * GiB))


def cpu_repacks(hw: HardwareProfile) -> bool:
    """Whether llama.cpp's CPU backend repacks Q4 weights here (AVX2 on x86, NEON on ARM)."""
    if hw.cpu_features:
        return any(f in hw.cpu_features for f in ("AVX2", "NEON", "DOTPROD", "MATMUL_INT8"))
    return hw.arch in ("x86_64", "arm64", "aarch64")  # a described machine: any laptop of the last decade


def memory_for(
    shape: ModelShape, hw: HardwareProfile, gpu: GpuInfo | None, n_ctx: int, n_gpu: int, kv_type: str
) -> tuple[MemoryBreakdown, MemoryBreakdown]:
    """Host and device bytes for `n_gpu` offloaded layers (n_layers + 1 also offloads the output head)."""
    L = shape.n_layers
    dev_layers, head_on_dev = min(n_gpu, L), n_gpu > L
    cpu_layers = L - dev_layers
    act = 4 * N_BATCH * (3 * shape.n_ff + 5 * shape.n_embd)
    repack = shape.repack_bytes * cpu_layers // L if cpu_repacks(hw) else 0
    backend = gpu.backend if gpu is not None and n_gpu > 0 else "cpu"
    host = MemoryBreakdown(
        weights_bytes=shape.weights_bytes
        - dev_layers * shape.layer_bytes
        - (shape.output_on_host_bytes if head_on_dev else 0)
        + repack,
        reclaimable_bytes=repack,
        kv_cache_bytes=shape.kv_bytes(n_ctx, kv_type, cpu_layers),
        compute_bytes=act if cpu_layers or not head_on_dev else 8 * N_BATCH * shape.n_embd,
        overhead_bytes=6 * MiB + 300 * shape.vocab_size + RUNTIME_HOST.get(backend, 0),
        margin_bytes=host_margin(hw),
        available_bytes=hw.ram_available_bytes,
    )
    device = MemoryBreakdown()
    if gpu is not None:
        device = MemoryBreakdown(margin_bytes=device_margin(gpu), available_bytes=gpu.memory_free_bytes)
    if gpu is not None and n_gpu > 0:
        device.weights_bytes = dev_layers * shape.layer_bytes + (
            shape.output_head_bytes if head_on_dev else 0
        )
        device.kv_cache_bytes = shape.kv_bytes(n_ctx, kv_type, dev_layers)
        device.compute_bytes = act + (4 * N_BATCH * shape.vocab_size if head_on_dev else 0)
        device.overhead_bytes = RUNTIME_DEVICE.get(backend, 0)
    return host, device


def fits_in(host: MemoryBreakdown, device: MemoryBreakdown, gpu: GpuInfo | None, hw: HardwareProfile) -> bool:
    """Both devices keep their margins; on unified memory host plus device also stay within available RAM."""
    host_need = host.total_bytes - host.reclaimable_bytes
    ok = host_need + host.margin_bytes <= hw.ram_available_bytes
    if gpu is not None and device.total_bytes:
        ok = ok and device.total_bytes + device.margin_bytes <= gpu.memory_free_bytes
        if gpu.unified_memory:
            ok = ok and host_need + device.total_bytes + host.margin_bytes <= hw.ram_available_bytes
    return ok


# --------------------------------------------------------------------------- speed


def memory_bandwidth(hw: HardwareProfile, gpu: GpuInfo | None) -> tuple[float, float]:
    """Effective (CPU, GPU) bytes per second for decoding."""
    name = f"{hw.cpu_name} {gpu.name if gpu else ''}"
    gpu_bw = 0.0
    for pattern, gbs in _GPU_BANDWIDTH:
        if re.search(pattern, gpu.name if gpu else "", re.IGNORECASE):
            gpu_bw = gbs * GB * 0.7
            break
    if gpu is not None and not gpu_bw:
        gpu_bw = (100 if gpu.unified_memory else 250) * GB * 0.7
    platform_bw = 50 * GB  # dual-channel DDR4/DDR5 laptop
    for pattern, gbs in _GPU_BANDWIDTH:
        if pattern.startswith("M") and re.search(r"Apple.*" + pattern, name, re.IGNORECASE):
            platform_bw = gbs * GB
            break
    cpu_bw = min(platform_bw * 0.6, hw.cpu_cores_physical * 7 * GB)
    return cpu_bw, gpu_bw


def decode_tok_s(
    shape: ModelShape, hw: HardwareProfile, gpu: GpuInfo | None, n_ctx: int, n_gpu: int, kv: str
) -> float:
    """Tokens per second: every weight and the KV cache at a half-full trace are read once per token."""
    L = shape.n_layers
    dev_layers, head_on_dev = min(n_gpu, L), n_gpu > L
    fill = min(n_ctx, TRACE_TOKENS // 2 + 1024)
    kv_layer = shape.kv_bytes(fill, kv, 1)
    dev_bytes = dev_layers * (shape.layer_bytes + kv_layer) + (shape.output_head_bytes if head_on_dev else 0)
    host_bytes = (L - dev_layers) * (shape.layer_bytes + kv_layer) + (
        0 if head_on_dev else shape.output_head_bytes
    )
    cpu_bw, gpu_bw = memory_bandwidth(hw, gpu)
    seconds = host_bytes / cpu_bw + (dev_bytes / gpu_bw if dev_bytes and gpu_bw else 0.0)
    seconds += (L - dev_layers) * 60e-6 + dev_layers * 20e-6  # per-layer kernel launch and sync costs
    return round(1.0 / seconds, 1)


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

    @property
    def fit(self) -> str:
        if not self.fits:
            return "wont_fit"
        if self.n_gpu > self.shape.n_layers:
            return "full_gpu"
        return "partial_gpu" if self.n_gpu > 0 else "cpu"


def usable_gpu(hw: HardwareProfile) -> GpuInfo | None:
    """The GPU the build can drive with the most free memory (one GPU; no multi-GPU split)."""
    usable = [g for g in hw.gpus if g.usable_by_build and g.backend in hw.build_backends]
    return max(usable, key=lambda g: g.memory_free_bytes, default=None)


def place(shape: ModelShape, hw: HardwareProfile, settings: Settings, n_ctx: int) -> Placement:
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
        host, device = memory_for(shape, hw, gpu, n_ctx, n_gpu, kv)
        if n_gpu == 0 or gpu is None or device.total_bytes + device.margin_bytes <= gpu.memory_free_bytes:
            chosen = n_gpu
            break
    host, device = memory_for(shape, hw, gpu, n_ctx, chosen, kv)
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
) -> Plan:
    """Plan a catalog model before download: pick the quant, the context and the offload."""
    forced = quant or settings.quant
    if model_bytes is not None and forced:
        return _finish(best_placement(_spec_shape(spec, forced, model_bytes), hw, settings), hw, settings)
    shapes = [_spec_shape(spec, q) for q in _candidate_quants(spec, forced)]
    winner, losers, passed_over = choose(shapes, hw, settings, None if forced else spec.default_quant)
    return _finish(winner, hw, settings, losers=losers, passed_over=passed_over)


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
) -> Plan:
    """Plan an actual file: its real size, quant and architecture (read from its header when `info` is None)."""
    if info is None:
        from vibelocal.gguf import read_gguf_info

        info = read_gguf_info(model.path)
    shape = shape_from_gguf(info)
    return _finish(best_placement(shape, hw, settings), hw, settings)


def quant_fits(spec: ModelSpec, hw: HardwareProfile, settings: Settings) -> list[QuantFit]:
    """A fit tag for every quant of a manifest, best quality first, with its expected speed."""
    ranked = [q for q in QUANT_ORDER if q in spec.quants] + [q for q in spec.quants if q not in QUANT_ORDER]
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
                expected_decode_tok_s=p.tok_s if p.fits else None,
                expected_trace_s=round(TRACE_TOKENS / p.tok_s, 1) if p.fits and p.tok_s else None,
            )
        )
    return rows


# --------------------------------------------------------------------------- plain-words explanation


def _need_line(p: Placement) -> str:
    where = f"{_gb(p.host.total_bytes - p.host.reclaimable_bytes + p.host.margin_bytes)} of RAM"
    if p.device.total_bytes:
        where += f" and {_gb(p.device.total_bytes + p.device.margin_bytes)} on the GPU"
    return f"{p.shape.quant} at {p.n_ctx:,} tokens needs {where} (margins included)"


def _finish(
    p: Placement,
    hw: HardwareProfile,
    settings: Settings,
    *,
    losers: list[Placement] | None = None,
    passed_over: Placement | None = None,
) -> Plan:
    shape, L = p.shape, p.shape.n_layers
    reasons: list[str] = []
    warnings: list[str] = list(p.notes)
    avail = f"{_gb(hw.ram_available_bytes)} of RAM available"
    if p.gpu is not None:
        avail += f", {_gb(p.gpu.memory_free_bytes)} free on {p.gpu.name}"
    if not p.fits:
        reasons.append(f"nothing fits: {_need_line(p)}; {avail}")
    elif passed_over is not None:
        reasons.append(
            f"{shape.quant}, the model's default quant: {passed_over.shape.quant} also fits but, not entirely on "
            f"a GPU, decodes at about {passed_over.tok_s:.1f} tok/s instead of {p.tok_s:.1f}"
        )
    elif losers:
        reasons.append(f"{shape.quant}, the best quality that fits: {_need_line(losers[-1])}; {avail}")
    else:
        reasons.append(f"fits: {_need_line(p)}; {avail}")
    wanted = target_ctx(settings, shape.n_ctx_train)
    if not p.fits:
        reasons.append(f"context {p.n_ctx:,} tokens: the shortest worth planning, and still too much")
    elif settings.ctx is not None:
        reasons.append(f"context {p.n_ctx:,} tokens, as set")
        if settings.ctx > shape.n_ctx_train:
            warnings.append(
                f"context {settings.ctx:,} is above the model's trained {shape.n_ctx_train:,}; capped"
            )
    elif p.n_ctx == shape.n_ctx_train and shape.n_ctx_train < 32768:
        reasons.append(f"context {p.n_ctx:,} tokens: the most the model was trained for")
    elif p.n_ctx >= wanted:
        reasons.append(f"context {p.n_ctx:,} tokens: room for the thinking budget, the answer and the prompt")
    else:
        reasons.append(f"context {p.n_ctx:,} tokens: the longest that fits ({wanted:,} wanted)")
    if p.fits and p.n_ctx < CTX_WANTED and shape.n_ctx_train >= CTX_WANTED:
        warnings.append(f"context below {CTX_WANTED:,} tokens: long reasoning traces will be cut short")
    if p.n_gpu > L:
        reasons.append(f"all {L} layers and the output head on {p.gpu.name if p.gpu else 'the GPU'}")
    elif p.n_gpu > 0:
        reasons.append(
            f"{p.n_gpu} of {L} layers on {p.gpu.name if p.gpu else 'the GPU'}; the rest do not fit there"
        )
    elif usable_gpu(hw) is None:
        reasons.append("all layers on the CPU: no GPU this llama.cpp build can use")
    else:
        reasons.append("all layers on the CPU: not even one layer fits in the GPU's free memory")
    reasons.append(f"{settings.threads or hw.cpu_cores_physical} threads: one per physical core")
    reasons.append("flash attention on: it keeps the attention scratch small at long contexts")
    if settings.kv_cache_type != "f16":
        reasons.append(f"KV cache in {settings.kv_cache_type}, as set")
    for gpu in hw.gpus:
        if not gpu.usable_by_build or gpu.backend not in hw.build_backends:
            cmds = reinstall_commands(gpu.backend)
            how = f"; to use it: {' (or: '.join(cmds)}{')' * (len(cmds) - 1)}" if cmds else ""
            warnings.append(f"{gpu.name} found, but this llama.cpp build has no {gpu.backend} backend{how}")
    if hw.on_battery:
        warnings.append("on battery: decoding is slower and drains it quickly")
    if p.fits and p.tok_s < 5:
        warnings.append(
            f"expected {p.tok_s:.1f} tok/s: an 8k-token trace takes about {TRACE_TOKENS / p.tok_s / 60:.0f} min"
        )
    plan = Plan(
        fits=p.fits,
        quant=shape.quant,
        backend=p.gpu.backend if p.gpu is not None and p.n_gpu > 0 else "cpu",
        n_gpu_layers=p.n_gpu,
        n_layers=L,
        n_ctx=p.n_ctx,
        n_threads=settings.threads or hw.cpu_cores_physical,
        n_batch=N_BATCH,
        n_ubatch=N_BATCH,
        flash_attn=True,
        kv_cache_type=settings.kv_cache_type,
        use_mmap=True,
        host=p.host,
        device=p.device,
        expected_decode_tok_s=p.tok_s if p.fits else None,
        reasons=reasons,
        warnings=warnings,
        fit=p.fit,  # type: ignore[arg-type]
        gpu_name=p.gpu.name if p.gpu is not None else None,
        n_ctx_train=shape.n_ctx_train,
        expected_trace_s=round(TRACE_TOKENS / p.tok_s, 1) if p.fits and p.tok_s else None,
    )
    return plan
