"""Memory and speed arithmetic for one placement of a model, as measured against llama.cpp.

The model (benchmarks/plan_accuracy.py prints planned vs measured):
- weights: every tensor byte is resident (llama.cpp maps the file with MAP_POPULATE); tensors the CPU backend
  repacks for faster matmuls (Q4_0, Q4_K, IQ4_NL with AVX2 or NEON) are copied, so they count twice;
- KV cache: 2 (K and V) x layers x n_ctx (padded to 256) x kv heads x head dim x bytes per element, cleared at load;
  with n_seq sequences decoded side by side (votes, `serve --parallel`) each holds n_ctx cells, so n_ctx x n_seq;
- compute: on the CPU, the activations one n_ubatch batch touches; on a GPU, llama.cpp's whole reserved buffer
  (dominated by n_ubatch rows of logits), because device memory is allocated up front;
- overhead: the vocabulary's tables (about 300 bytes a token) plus a few MiB of context state, and the GPU
  runtime's own context where one is used (not measurable on a machine without a GPU: an estimate).
Pure arithmetic, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vibelocal.models.gguf import GgufInfo
from vibelocal.types import GpuInfo, HardwareProfile, MemoryBreakdown, ModelSpec

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
    shape: ModelShape,
    hw: HardwareProfile,
    gpu: GpuInfo | None,
    n_ctx: int,
    n_gpu: int,
    kv_type: str,
    n_seq: int = 1,
) -> tuple[MemoryBreakdown, MemoryBreakdown]:
    """Host and device bytes for `n_gpu` offloaded layers (n_layers + 1 also offloads the output head), with a
    KV cache for `n_seq` sequences of `n_ctx` tokens each."""
    L = shape.n_layers
    n_cells = n_ctx * max(1, n_seq)
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
        kv_cache_bytes=shape.kv_bytes(n_cells, kv_type, cpu_layers),
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
        device.kv_cache_bytes = shape.kv_bytes(n_cells, kv_type, dev_layers)
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
