"""Plain data shared by every layer: models, hardware, plans, generation settings, stream events."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# --------------------------------------------------------------------------- models


class QuantFile(BaseModel):
    """One downloadable GGUF file of a model."""

    model_config = ConfigDict(frozen=True)

    quant: str
    """Quantization name as written in the file name, e.g. `Q4_K_M`."""
    file: str
    """File name inside the hub repository."""
    size_bytes: int
    """Exact or approximate size; the hub's own size wins at download time."""
    sha256: str | None = None
    """Optional pin; when absent the hub's LFS sha256 is used."""


class GgufSource(BaseModel):
    """A hub repository holding GGUF files of a model, in order of preference."""

    model_config = ConfigDict(frozen=True)

    repo: str
    files: list[QuantFile]

    def file_for(self, quant: str) -> QuantFile | None:
        for f in self.files:
            if f.quant.lower() == quant.lower():
                return f
        return None


class Architecture(BaseModel):
    """Numbers the planner needs; the real context length is read from the GGUF at load time."""

    model_config = ConfigDict(frozen=True)

    name: str = "qwen2"
    n_layers: int
    hidden_size: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    vocab_size: int
    context_length: int
    n_params: int | None = None


class Sampling(BaseModel):
    """The model's recommended sampler."""

    model_config = ConfigDict(frozen=True)

    temperature: float = 0.6
    top_p: float = 0.95
    top_k: int = 0
    min_p: float = 0.0
    repeat_penalty: float = 1.0


class ChatFormat(BaseModel):
    """How to build a prompt and where to stop."""

    model_config = ConfigDict(frozen=True)

    template: Literal["chatml"] = "chatml"
    stop: list[str] = Field(default_factory=lambda: ["<|im_end|>", "<|endoftext|>"])
    think_open: str = "<think>"
    think_close: str = "</think>"
    prefill_think: bool = False
    system_prompt: str | None = None


class ModelSpec(BaseModel):
    """A model manifest (models/*.toml)."""

    model_config = ConfigDict(frozen=True)

    name: str
    display_name: str
    description: str = ""
    license: str = ""
    source_weights: str = ""
    default_quant: str = "Q4_K_M"
    architecture: Architecture
    sources: list[GgufSource]
    chat: ChatFormat = ChatFormat()
    sampling: Sampling = Sampling()
    prompt_suffixes: dict[str, str] = Field(default_factory=dict)
    """Appended to a problem by kind: `math`, `code`, `other`."""

    @property
    def quants(self) -> list[str]:
        seen: list[str] = []
        for src in self.sources:
            for f in src.files:
                if f.quant not in seen:
                    seen.append(f.quant)
        return seen

    def quant_file(self, quant: str) -> QuantFile | None:
        for src in self.sources:
            found = src.file_for(quant)
            if found:
                return found
        return None


class InstalledModel(BaseModel):
    """A verified GGUF on disk (from the registry), or a file the user pointed at."""

    path: Path
    size_bytes: int
    sha256: str | None = None
    name: str | None = None
    """Catalog name when known, e.g. `vibethinker-3b`."""
    quant: str | None = None
    repo: str | None = None
    file: str | None = None
    revision: str | None = None
    verified: bool = False

    @property
    def label(self) -> str:
        """`vibethinker-3b:Q4_K_M` for a catalog model; the file name (which already names its quant) otherwise."""
        if self.name is None:
            return self.path.name
        return f"{self.name}:{self.quant}" if self.quant else self.name


# --------------------------------------------------------------------------- hardware and plans


class GpuInfo(BaseModel):
    """A GPU as the llama.cpp build (or the OS) sees it."""

    backend: Literal["cuda", "metal", "vulkan", "rocm", "sycl", "other"]
    name: str
    memory_total_bytes: int
    memory_free_bytes: int
    unified_memory: bool = False
    usable_by_build: bool = True
    """False when the installed llama.cpp build has no backend for this GPU."""


class HardwareProfile(BaseModel):
    """A machine: probed, or described in a profile file (`doctor --hardware`). Sizes in bytes."""

    os: str
    arch: str
    cpu_name: str = "unknown CPU"
    cpu_cores_physical: int
    cpu_cores_logical: int
    cpu_features: list[str] = Field(default_factory=list)
    ram_total_bytes: int
    ram_available_bytes: int
    disk_free_bytes: int | None = None
    on_battery: bool | None = None
    gpus: list[GpuInfo] = Field(default_factory=list)
    build_backends: list[str] = Field(default_factory=lambda: ["cpu"])
    """Backends the installed llama.cpp build can drive (cpu, cuda, metal, vulkan, ...)."""
    source: Literal["probe", "profile"] = "probe"


class MemoryBreakdown(BaseModel):
    """Planned bytes on one device."""

    weights_bytes: int = 0
    kv_cache_bytes: int = 0
    compute_bytes: int = 0
    overhead_bytes: int = 0
    margin_bytes: int = 0
    """Safety margin the planner keeps free on this device (not part of total_bytes)."""
    available_bytes: int | None = None
    """What the device had free when planned (RAM available, or GPU free memory)."""
    reclaimable_bytes: int = 0
    """Part of weights_bytes the OS can drop under pressure (file pages llama.cpp copied and never reads again)."""

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_cache_bytes + self.compute_bytes + self.overhead_bytes


class Plan(BaseModel):
    """How to run a model on a machine, and why. Produced by planner.py, consumed by the engine."""

    fits: bool
    quant: str
    backend: str = "cpu"
    n_gpu_layers: int = 0
    n_layers: int
    n_ctx: int
    n_threads: int
    n_threads_batch: int | None = None
    n_batch: int = 512
    n_ubatch: int = 512
    flash_attn: bool = False
    kv_cache_type: str = "f16"
    use_mmap: bool = True
    host: MemoryBreakdown = Field(default_factory=MemoryBreakdown)
    device: MemoryBreakdown = Field(default_factory=MemoryBreakdown)
    expected_decode_tok_s: float | None = None
    reasons: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    fit: Literal["full_gpu", "partial_gpu", "cpu", "wont_fit"] | None = None
    """Where the model runs: every layer on the GPU, some, none, or it does not fit at all."""
    gpu_name: str | None = None
    n_ctx_train: int | None = None
    expected_trace_s: float | None = None
    """Expected seconds to decode an 8k-token reasoning trace at expected_decode_tok_s."""
    n_parallel: int = 1
    """Sequences the context decodes side by side in one batch (`--votes K`, `serve --parallel N`); each of
    them holds up to `n_ctx` tokens, so the KV cache is sized for `n_ctx * n_parallel`."""


# --------------------------------------------------------------------------- generation


@dataclass(frozen=True)
class ChatMessage:
    """One message of a conversation. Assistant messages carry the answer only, never old thinking."""

    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class GenerationSettings:
    """Everything one turn of generation needs; built by the session from Settings and the manifest."""

    temperature: float = 0.6
    top_p: float = 0.95
    top_k: int = 0
    min_p: float = 0.0
    repeat_penalty: float = 1.0
    seed: int | None = None
    max_thinking_tokens: int | None = 8192
    """None: unlimited; 0: no thinking (the turn starts with an empty think block)."""
    thinking_time_s: float | None = None
    """A time budget, converted to tokens with the measured decode rate."""
    min_thinking_tokens: int = 0
    max_answer_tokens: int = 2048
    grace_tokens: int = 48
    """At the cap, let the current sentence or line finish within this many tokens."""
    prefill_think: bool = False
    loop_detection: bool = True
    force_boxed: bool = False
    """When the answer budget runs out with no `\\boxed{`, force `**Final Answer** \\boxed{`."""
    reuse_prefix: bool = True
    """Keep the KV cache of the prompt prefix the last turn shared. Off, the turn starts from an empty cache as a
    fresh process does (llama.cpp's numbers depend on the cache's layout): `solve --votes` turns it off so sample
    i is exactly `solve --seed` with sample i's seed."""
    speculate: bool = False
    """N-gram speculative decoding on the local engine (engine/llama/speculative.py): drafts from the prompt
    and the text so far are verified in one batch, every token still sampled by the full chain from the logits
    of the accepted history: the same distribution, but llama.cpp's batched kernels give slightly different logits
    than one-token decodes, so the exact text can differ (docs/engine.md)."""


StopReason = Literal["answered", "budget_exhausted", "context_full", "loop", "cancelled", "error"]

EventKind = Literal["thinking", "answer", "budget", "loop", "stats", "status", "done", "reclassify"]

BudgetNote = Literal["warning", "wrap_up", "extended", "forced_answer", "min_thinking"]


@dataclass
class TurnStats:
    """Counts and timings of one turn. evaluated = what llama.cpp actually processed."""

    prompt_tokens: int = 0
    thinking_tokens: int = 0
    answer_tokens: int = 0
    forced_tokens: int = 0
    evaluated_tokens: int = 0
    cached_tokens: int = 0
    ttft_s: float | None = None
    prefill_tok_s: float | None = None
    decode_tok_s: float | None = None
    total_s: float = 0.0
    budget_tokens: int | None = None
    budget_hit: bool = False
    seed: int | None = None
    loop_shape: str | None = None
    """Which loop shape fired, if any (engine/loops.py SHAPES: character, token, sequence, line, block)."""
    reprocessed_tokens: int = 0
    """Remote backends: tokens the server evaluated again beyond what was new (0 when its prefix cache held)."""
    server_requests: int = 0
    """Remote backends: generation requests this turn took (1, plus one per injection or rollback)."""
    draft_tokens: int = 0
    """Speculative decoding: draft tokens verified (each one is evaluated, so it is in `evaluated_tokens`)."""
    accepted_draft_tokens: int = 0
    """Speculative decoding: draft tokens the sampler chose, so kept; the rest were rolled back."""

    @property
    def rejected_draft_tokens(self) -> int:
        """Draft tokens evaluated and rolled back: evaluated == prompt - cached + thinking + forced + answer +
        rejected."""
        return self.draft_tokens - self.accepted_draft_tokens


@dataclass(frozen=True)
class StreamEvent:
    """One event of a streaming turn. `kind` says which fields matter.

    - thinking / answer: `text` is the new text (think tags removed).
    - budget: `note` (warning / wrap_up / extended / forced_answer / min_thinking), `thinking_tokens`, `budget_tokens`.
    - loop: `text` describes what repeated.
    - status: `text` is a human-readable engine message (e.g. a retry on load).
    - stats: `stats` is a running snapshot.
    - done: `stop_reason` and final `stats`; `truncated_thinking` when `</think>` never came.
    - reclassify: a bare `</think>` came (no `<think>` before it): the answer streamed so far was reasoning.
    """

    kind: EventKind
    text: str = ""
    note: BudgetNote | None = None
    thinking_tokens: int = 0
    budget_tokens: int | None = None
    stats: TurnStats | None = None
    stop_reason: StopReason | None = None
    truncated_thinking: bool = False


@dataclass(frozen=True)
class EngineInfo:
    """What a loaded engine is running, for stats lines and reproducibility records."""

    model_path: str
    model_name: str | None = None
    quant: str | None = None
    sha256: str | None = None
    backend: str = "cpu"
    device: str = "CPU"
    n_ctx: int = 4096
    n_ctx_train: int | None = None
    n_gpu_layers: int = 0
    n_threads: int = 1
    extra: dict[str, str] = field(default_factory=dict)
