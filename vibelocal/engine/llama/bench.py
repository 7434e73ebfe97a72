"""`vibelocal bench`'s measurements: prompt processing and decode speed of a GGUF under a plan, like llama-bench.

- `pp N`: N prompt tokens evaluated in batches of the plan's size, from an empty cache;
- `tg N`: N tokens decoded one at a time (each token's logits computed, as in a reasoning trace), at a depth
  of 0 and at deeper fills of the cache (how a long trace slows down);
- `copy N` and `copy N +spec`: N tokens sampled greedily by the engine's own decode backend after a prompt
  that repeats a random token sequence (the model copies it on: a repetitive trace), without and with n-gram
  speculative decoding (engine/llama/speculative.py); the `+spec` row reports its acceptance and whether its
  tokens were the same as the row without.

The token ids are fixed pseudo-random ones, as llama-bench does: speed does not depend on what the text says.
Every call happens on the calling thread, which is the only thread that touches this model.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from vibelocal.engine.llama.loading import _check_gguf_header, _open, retry_ladder
from vibelocal.engine.llama.logs import capture_logs
from vibelocal.types import InstalledModel, Plan


@dataclass(frozen=True)
class BenchCase:
    """One row: `pp` (prompt processing) or `tg` (text generation) at a cache depth."""

    test: str
    n_prompt: int
    n_gen: int
    n_depth: int = 0
    speculate: bool = False


COPY_SPAN = 64
"""Random tokens the `copy` rows' prompt holds twice (the second time cut short, for the model to go on)."""


@dataclass
class BenchRow:
    """A measured row, with llama-bench's field names."""

    test: str
    n_prompt: int
    n_gen: int
    n_depth: int
    samples_ts: list[float] = field(default_factory=list)
    speculate: bool = False
    drafted: int = 0
    accepted: int = 0
    identical: bool | None = None
    """`copy +spec` rows: every repetition's tokens equal the `copy` row's (None: no row to compare with)."""
    n_seq: int = 1
    """Sequences decoded in one batch (`run_parallel_decode`); `samples_ts` then counts all their tokens."""

    @property
    def avg_ts(self) -> float:
        return statistics.fmean(self.samples_ts) if self.samples_ts else 0.0

    @property
    def stddev_ts(self) -> float:
        return statistics.stdev(self.samples_ts) if len(self.samples_ts) > 1 else 0.0

    @property
    def name(self) -> str:
        size = self.n_prompt if self.test == "pp" else self.n_gen
        return (
            f"{self.test}{size}"
            + (f" @ d{self.n_depth}" if self.n_depth else "")
            + (" +spec" if self.speculate else "")
            + (f" x{self.n_seq}" if self.n_seq > 1 else "")
        )

    def to_dict(self) -> dict[str, object]:
        spec: dict[str, object] = {}
        if self.speculate:
            rate = self.accepted / self.drafted if self.drafted else 0.0
            spec = {
                "speculation": {
                    "drafted": self.drafted,
                    "accepted": self.accepted,
                    "acceptance_rate": round(rate, 3),
                },
                "identical": self.identical,
            }
        row: dict[str, object] = {
            "test": self.name,
            "n_prompt": self.n_prompt,
            "n_gen": self.n_gen,
            "n_depth": self.n_depth,
            "avg_ts": round(self.avg_ts, 2),
            "stddev_ts": round(self.stddev_ts, 2),
            "samples_ts": [round(x, 2) for x in self.samples_ts],
            **spec,
        }
        if self.n_seq > 1:
            row["n_seq"] = self.n_seq
        return row


def default_cases(
    pp: int = 512, tg: int = 128, depths: tuple[int, ...] = (0, 4096, 16384)
) -> list[BenchCase]:
    return [BenchCase("pp", pp, 0), *(BenchCase("tg", 0, tg, d) for d in depths), *copy_cases(tg)]


def copy_cases(n_gen: int) -> list[BenchCase]:
    """The `copy` rows without and with speculation (the plain one first: the other is compared with it)."""
    return [BenchCase("copy", COPY_SPAN + COPY_SPAN // 8, n_gen, 0, speculate) for speculate in (False, True)]


def run_bench(
    model: InstalledModel,
    plan: Plan,
    cases: list[BenchCase],
    *,
    repetitions: int = 3,
    on_step: Callable[[str], None] | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> list[BenchRow]:
    """Load the model once with the plan's settings and measure every case `repetitions` times."""
    _check_gguf_header(model.path)
    capture_logs()  # llama.cpp's own log lines go to vibelocal's log, not the terminal
    need = max(c.n_depth + c.n_prompt + c.n_gen for c in cases) + 8
    sized = plan.model_copy(update={"n_ctx": max(need, 512)})
    llm = _open(model.path, sized, retry_ladder(sized)[0])
    try:
        n_vocab = llm.n_vocab()
        rng = random.Random(1234)
        rows = []
        copied: list[int] | None = None
        for case in cases:
            row = BenchRow(case.test, case.n_prompt, case.n_gen, case.n_depth, speculate=case.speculate)
            for rep in range(repetitions):
                if cancelled():
                    return rows
                if on_step:
                    on_step(f"{row.name} ({rep + 1}/{repetitions})")
                if case.test == "copy":
                    rate, out = _measure_copy(llm, case, row)
                    if not case.speculate:
                        copied = out
                    elif copied is not None:
                        row.identical = (row.identical is not False) and out == copied
                else:
                    rate = _measure(llm, case, n_vocab, rng)
                row.samples_ts.append(rate)
            rows.append(row)
        return rows
    finally:
        llm.close()


def _tokens(rng: random.Random, n_vocab: int, n: int) -> list[int]:
    return [rng.randrange(1, n_vocab) for _ in range(n)]


def _measure(llm, case: BenchCase, n_vocab: int, rng: random.Random) -> float:
    """Tokens per second of one repetition, from an empty cache filled to the case's depth first."""
    llm.reset()
    llm._ctx.kv_cache_clear()
    if case.n_depth:
        llm.eval(_tokens(rng, n_vocab, case.n_depth))  # not timed
    if case.test == "pp":
        tokens = _tokens(rng, n_vocab, case.n_prompt)
        t0 = time.perf_counter()
        llm.eval(tokens)
        return case.n_prompt / (time.perf_counter() - t0)
    tokens = _tokens(rng, n_vocab, case.n_gen)
    batch, ctx, n_past = llm._batch, llm._ctx, llm.n_tokens
    t0 = time.perf_counter()
    for i, token in enumerate(tokens):  # one decode per token, logits for it: the reasoning-trace path
        batch.set_batch([token], n_past=n_past + i, logits_all=True)
        ctx.decode(batch)
    seconds = time.perf_counter() - t0
    llm.n_tokens = n_past + len(tokens)
    return case.n_gen / seconds


def _copy_prompt(n_vocab: int) -> list[int]:
    """A fixed random span, then its first eighth again: the model goes on copying it."""
    span = _tokens(random.Random(99), n_vocab, COPY_SPAN)
    return span + span[: COPY_SPAN // 8]


def _measure_copy(llm, case: BenchCase, row: BenchRow) -> tuple[float, list[int]]:
    """Greedy tokens per second of the engine's decode backend after the copy prompt, and the tokens."""
    from llama_cpp._internals import LlamaSampler

    from vibelocal.engine.llama.runtime import _LlamaBackend
    from vibelocal.engine.llama.speculative import SpeculativeBackend
    from vibelocal.types import TurnStats

    llm.reset()
    llm._ctx.kv_cache_clear()
    llm.eval(_copy_prompt(llm.n_vocab()))  # not timed
    sampler = LlamaSampler()
    sampler.add_greedy()
    engine = _BenchEngine(llm)
    stats = TurnStats()
    backend = SpeculativeBackend(engine, sampler, stats) if case.speculate else _LlamaBackend(engine, sampler)  # type: ignore[arg-type]
    out: list[int] = []
    try:
        t0 = time.perf_counter()
        for _ in range(case.n_gen):
            token = backend.sample()
            backend.eval([token])
            out.append(token)
        seconds = time.perf_counter() - t0
    finally:
        backend.close()
    row.drafted += stats.draft_tokens
    row.accepted += stats.accepted_draft_tokens
    return case.n_gen / seconds, out


class _BenchEngine:
    """What a decode backend reads from its engine, over the bench's own Llama (the bench makes every call on
    its own thread, so no engine thread is needed). No stop tokens: the row decodes exactly `n_gen`."""

    def __init__(self, llm) -> None:
        import llama_cpp

        self._lib = llama_cpp
        self._llm = llm
        self._vocab = llm._model.vocab
        self._stop_ids: frozenset[int] = frozenset()
        self._stop_cache: dict[int, bool] = {}
        self._logits_processor = None
        self.hook_error: BaseException | None = None
        self.evaluated = 0
        self.info = _Info(min(llm.n_ctx(), len(llm.input_ids)))  # llama.cpp may pad the context

    def piece(self, token: int) -> bytes:
        return b""


@dataclass(frozen=True)
class _Info:
    n_ctx: int


def run_parallel_decode(
    model: InstalledModel,
    plan: Plan,
    n_seqs: tuple[int, ...] = (1, 4),
    *,
    n_gen: int = 128,
    repetitions: int = 3,
    on_step: Callable[[str], None] | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> list[BenchRow]:
    """Load the model once as a context of `max(n_seqs)` sequences (as the engine does for `n_parallel`) and
    measure decoding `n_gen` steps of one token per sequence, for each count of sequences: rows `tg{n_gen}`
    (one sequence) and `tg{n_gen} xN`, tokens of all sequences per second."""
    _check_gguf_header(model.path)
    capture_logs()
    sized = plan.model_copy(update={"n_ctx": max(n_gen + 16, 256), "n_parallel": max(max(n_seqs), 2)})
    llm = _open(model.path, sized, retry_ladder(sized)[0])
    try:
        rng = random.Random(1234)
        rows = []
        for n_seq in n_seqs:
            row = BenchRow("tg", 0, n_gen, 0, n_seq=n_seq)
            for rep in range(repetitions):
                if cancelled():
                    return rows
                if on_step:
                    on_step(f"{row.name} ({rep + 1}/{repetitions})")
                row.samples_ts.append(_measure_parallel(llm, n_seq, n_gen, rng))
            rows.append(row)
        return rows
    finally:
        llm.close()


def _measure_parallel(llm, n_seq: int, n_gen: int, rng: random.Random) -> float:
    """Tokens per second over all sequences: `n_gen` decodes of a batch holding one token of each."""
    import llama_cpp

    llm._ctx.kv_cache_clear()
    batch = llm._batch.batch
    n_vocab = llm.n_vocab()
    t0 = 0.0
    for step in range(n_gen + 1):  # step 0 (each sequence's first token) is not timed
        if step == 1:
            t0 = time.perf_counter()
        for s in range(n_seq):
            batch.token[s] = rng.randrange(1, n_vocab)
            batch.pos[s] = step
            batch.seq_id[s][0] = s
            batch.n_seq_id[s] = 1
            batch.logits[s] = 1
        batch.n_tokens = n_seq
        if llama_cpp.llama_decode(llm.ctx, batch) != 0:
            raise RuntimeError("llama_decode failed")
    return n_seq * n_gen / (time.perf_counter() - t0)
