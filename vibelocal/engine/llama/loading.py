"""Loading a GGUF with a plan: header check, llama.cpp options, a greedy output probe, safer retries."""

from __future__ import annotations

import contextlib
import io
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vibelocal.engine.llama.logs import capture_logs, last_error_line, log_mark
from vibelocal.engine.llama.owner import EngineThread
from vibelocal.engine.llama.runtime import LlamaEngine
from vibelocal.engine.template import template_error
from vibelocal.errors import ModelLoadError
from vibelocal.types import (
    InstalledModel,
    ModelSpec,
    Plan,
)

_KV_TYPES = {"f16": 1, "q8_0": 8, "q4_0": 2}
"""ggml type ids of the KV cache types the `kv_cache_type` setting allows (config.py)."""
_PROBE_TEXT = "1, 2, 3, 4, 5, 6,"
_PROBE_TOKENS = 8
LOAD_ABORT_WAIT_S = 2.0
"""Longest an interrupted load() waits for llama.cpp to finish the step it is in before it re-raises."""


class LoadInterrupted(KeyboardInterrupt):
    """Ctrl-C while a model loads. `engine_stopped` is False when llama.cpp was still inside its load after
    `LOAD_ABORT_WAIT_S` (the engine thread frees what it made when it returns; a process may exit hard)."""

    def __init__(self, engine_stopped: bool) -> None:
        super().__init__()
        self.engine_stopped = engine_stopped


@dataclass(frozen=True)
class Attempt:
    n_gpu_layers: int
    flash_attn: bool
    n_ubatch: int
    kv_cache_type: str
    why: str | None = None


def retry_ladder(plan: Plan) -> list[Attempt]:
    """The plan, then ever safer settings for a degenerate-output retry."""
    cur = Attempt(plan.n_gpu_layers, plan.flash_attn, plan.n_ubatch, plan.kv_cache_type)
    out = [cur]
    if cur.flash_attn:
        cur = Attempt(cur.n_gpu_layers, False, cur.n_ubatch, "f16", "flash attention off, f16 KV cache")
        out.append(cur)
    if cur.n_ubatch > 128:
        cur = Attempt(cur.n_gpu_layers, False, 128, cur.kv_cache_type, "smaller micro-batch (128)")
        out.append(cur)
    if cur.n_gpu_layers != 0:
        cur = Attempt(0, False, cur.n_ubatch, cur.kv_cache_type, "CPU only")
        out.append(cur)
    return out


def _check_gguf_header(path: Path) -> None:
    if not path.is_file():
        raise ModelLoadError(f"cannot load {path}: no such file", hint="run: vibelocal pull")
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise ModelLoadError(f"cannot load {path.name}: {exc.strerror or exc}") from exc
    if magic != b"GGUF":
        raise ModelLoadError(
            f"cannot load {path.name}: not a GGUF file",
            hint="re-download it with: vibelocal pull --force",
        )


def _open(path: Path, plan: Plan, attempt: Attempt) -> Any:
    from llama_cpp import Llama

    kv = _KV_TYPES.get(attempt.kv_cache_type.lower())
    if kv is None:
        raise ModelLoadError(f"unsupported KV cache type {attempt.kv_cache_type!r}")
    mark = log_mark()
    # verbose=True prints metadata through sys.stderr (caught here); verbose=False would dup2 fds 1 and 2.
    sink = io.StringIO()
    try:
        with contextlib.redirect_stderr(sink), contextlib.redirect_stdout(sink):
            llm = Llama(
                str(path),
                n_gpu_layers=attempt.n_gpu_layers,
                n_ctx=plan.n_ctx,
                n_batch=plan.n_batch,
                n_ubatch=min(attempt.n_ubatch, plan.n_batch),
                n_threads=plan.n_threads,
                n_threads_batch=plan.n_threads_batch or plan.n_threads,
                flash_attn=attempt.flash_attn,
                use_mmap=plan.use_mmap,
                type_k=kv,
                type_v=kv,
                verbose=True,
            )
    except (ValueError, RuntimeError, OSError) as exc:
        detail = last_error_line(mark) or str(exc)
        raise ModelLoadError(
            f"cannot load {path.name}: {detail}",
            hint="the file may be corrupt, truncated or from a newer llama.cpp; re-download it or update vibelocal",
        ) from exc
    except Exception as exc:  # llama-cpp-python compiles the GGUF's chat template here: a broken one is ours
        if not type(exc).__module__.startswith("jinja2"):
            raise
        raise template_error(f"{type(exc).__name__}: {exc}") from None
    llm.verbose = False
    if plan.n_parallel > 1:
        try:
            _share_context(llm, plan.n_parallel)
        except BaseException:
            llm.close()
            raise
    return llm


def _share_context(llm: Any, n_seq: int) -> None:
    """Give `llm` a context of `n_seq` sequences, each a KV stream of its own of `n_ctx` cells.

    The binding's `Llama()` has no `n_seq_max`, so its one-sequence context is freed and a new one made from
    the same parameters. Not unified: in one unified cache the sequences' cells interleave, attention then
    sums in another order than a solo turn does, and a batched greedy sample drifted from its solo text after
    about 40 tokens (SmolLM2, CPU); with a stream per sequence every sample is bit for bit its solo run. The
    price: sharing a prompt copies a whole stream (llama.cpp copies streams whole), still far cheaper than
    evaluating the prompt again."""
    from llama_cpp import _internals

    per_seq = llm.n_ctx()
    params = llm.context_params
    params.n_ctx = per_seq * n_seq
    params.n_seq_max = n_seq
    params.kv_unified = False
    llm._ctx.close()
    try:
        ctx = _internals.LlamaContext(model=llm._model, params=params, verbose=False)
    except ValueError as exc:
        raise ModelLoadError(
            f"cannot make a context of {n_seq} sequences of {per_seq} tokens",
            hint="lower --votes or --parallel, or the context size",
        ) from exc
    llm._ctx = llm._stack.enter_context(contextlib.closing(ctx))


def load(
    model: InstalledModel,
    plan: Plan,
    spec: ModelSpec | None,
    *,
    on_status: Callable[[str], None] | None = None,
    **test_hooks: Any,
) -> LlamaEngine:
    """Load `model` with `plan` on a new engine thread (owner.py); a short greedy probe catches degenerate
    output and retries safer settings. The caller only waits, so Ctrl-C reaches it at once (`LoadInterrupted`:
    the load stops at its next step and what it made is freed on the engine thread).

    Test hooks: `check_output=False` skips the probe; `logits_processor=f(input_ids, logits) -> logits`
    runs first in every sampler chain (scripted output for tests and benchmarks).
    """
    unknown = set(test_hooks) - {"check_output", "logits_processor"}
    if unknown:
        raise TypeError(f"unknown load() hooks: {', '.join(sorted(unknown))}")
    path = Path(model.path)
    _check_gguf_header(path)
    abort = threading.Event()
    owner: EngineThread | None = None
    job: Future[LlamaEngine] | None = None
    try:
        owner = EngineThread()
        job = owner.submit(_load_here, model, plan, spec, owner, abort, on_status, test_hooks)
        return job.result()
    except KeyboardInterrupt:
        raise _interrupted(owner, job, abort) from None
    except BaseException:
        if owner is not None:
            owner.stop()
        raise


def _interrupted(
    owner: EngineThread | None, job: Future[LlamaEngine] | None, abort: threading.Event
) -> LoadInterrupted:
    """Ctrl-C in load(): stop the load at its next step, wait for it (bounded), free whatever it made."""
    abort.set()
    if job is not None:
        with contextlib.suppress(BaseException):
            job.result(LOAD_ABORT_WAIT_S).close()  # it finished loading after all: free it
    if owner is None:
        return LoadInterrupted(True)
    owner.stop()
    return LoadInterrupted(owner.join(LOAD_ABORT_WAIT_S))


def _load_here(
    model: InstalledModel,
    plan: Plan,
    spec: ModelSpec | None,
    owner: EngineThread,
    abort: threading.Event,
    on_status: Callable[[str], None] | None,
    test_hooks: dict[str, Any],
) -> LlamaEngine:
    """The body of load(), on the engine thread; `abort` (Ctrl-C in the caller) stops it between steps."""
    capture_logs()
    status = on_status or (lambda _msg: None)
    retries: list[str] = []
    check = test_hooks.get("check_output", True)
    attempts = retry_ladder(plan) if check else retry_ladder(plan)[:1]
    llm = None
    probe_rate: float | None = None
    probe_text = ""
    messages: list[str] = []
    try:
        for i, attempt in enumerate(attempts):
            if attempt.why:
                msg = f"output looked degenerate ({probe_text!r}); retrying with {attempt.why}"
                retries.append(attempt.why)
                messages.append(msg)
                status(msg)
            if llm is not None:
                llm.close()
                llm = None
            _check_abort(abort)
            llm = _open(Path(model.path), plan, attempt)
            if not check:
                break
            _check_abort(abort)
            degenerate, probe_text, probe_rate = _probe(llm, abort)
            if not degenerate:
                break
            if i == len(attempts) - 1:
                retries.append("still degenerate with the safest settings")
                messages.append(
                    f"output still looks degenerate ({probe_text!r}) with the safest settings; continuing"
                )
                status(messages[-1])
        _check_abort(abort)
        assert llm is not None
        return LlamaEngine(
            llm, model, plan, spec, attempt=attempt, retries=retries, probe_rate=probe_rate,
            logits_processor=test_hooks.get("logits_processor"), load_messages=messages, owner=owner,
        )  # fmt: skip
    except BaseException:
        if llm is not None:
            llm.close()
        raise


def _check_abort(abort: threading.Event) -> None:
    if abort.is_set():
        raise KeyboardInterrupt


def _probe(llm: Any, abort: threading.Event) -> tuple[bool, str, float | None]:
    """Greedy-decode a few tokens of a counting prompt: one token over and over means broken output."""
    import llama_cpp

    tokens = llm.tokenize(_PROBE_TEXT.encode(), add_bos=True, special=False)
    llm.reset()
    llm.eval(tokens)
    sampler = llama_cpp.llama_sampler_init_greedy()
    out: list[int] = []
    try:
        t0 = 0.0
        for i in range(_PROBE_TOKENS):
            _check_abort(abort)
            if i == 1:
                t0 = time.perf_counter()  # the first decode warms caches up: time the rest
            tok = llama_cpp.llama_sampler_sample(sampler, llm.ctx, -1)
            out.append(tok)
            llm.eval([tok])
        spent = time.perf_counter() - t0
    finally:
        llama_cpp.llama_sampler_free(sampler)
    llm.reset()
    llm._ctx.kv_cache_clear()
    text = llm.detokenize(out).decode("utf-8", "replace")
    return len(set(out)) == 1, text, ((len(out) - 1) / spent if spent > 0 else None)
