"""A loaded GGUF streaming turns: prompt tokens, KV prefix reuse, one sampler chain per turn, decode loop.

Every llama.cpp call runs on the engine's own thread (owner.py); the public methods hand work to it."""

from __future__ import annotations

import ctypes
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vibelocal.engine import prompt as prompts
from vibelocal.engine import template
from vibelocal.engine.control import TurnControl
from vibelocal.engine.llama.logs import last_error_line, log_mark
from vibelocal.engine.llama.owner import EngineThread, EventHandoff, EventStream
from vibelocal.engine.llama.vocab import think_tags
from vibelocal.engine.turn import TurnLoop
from vibelocal.types import (
    ChatFormat,
    ChatMessage,
    EngineInfo,
    GenerationSettings,
    InstalledModel,
    ModelSpec,
    Plan,
    StreamEvent,
    TurnStats,
)

if TYPE_CHECKING:
    from vibelocal.engine.llama.batch import BatchScheduler
    from vibelocal.engine.llama.fork import LlamaFork
    from vibelocal.engine.llama.loading import Attempt

LogitsProcessor = Callable[[Any, Any], Any]
"""(input_ids, logits) -> logits, numpy arrays: llama-cpp-python's convention (a test hook)."""


CLOSE_WAIT_S = 2.0
"""Longest `close()` (or an abandoned stream) waits for a cancelled turn to stop before giving up waiting."""


class EngineClosedError(RuntimeError):
    """stream() or another call on an engine after close()."""


def _never() -> bool:
    return False


def _context_per_sequence(llm: Any, parallel: int) -> int:
    """The tokens one sequence may hold: llama.cpp pads the context it makes (300 becomes 512 cells) while the
    binding's token array keeps the size asked for, so the smaller bound holds."""
    return min(llm.n_ctx() // parallel, len(llm.input_ids))


@dataclass(frozen=True)
class RawPrompt:
    """A prompt given as text (already templated), passed where the messages of a turn go."""

    text: str


class LlamaEngine:
    """A loaded GGUF: implements the ChatEngine protocol (engine/contract.py). One turn at a time, unless
    loaded with `plan.n_parallel > 1`: then `fork()` hands out more sequences of the same context and their
    turns are decoded together, one batch per step (batch.py).

    Concurrency contract:
    - One engine thread (`owner`, the thread `load()` started) makes every llama.cpp call of the model's life:
      load, probe, tokenize, prompt evaluation, decode, sampling, KV edits and free. Any thread may call the
      public methods; they queue work for the engine thread and wait for it.
    - `stream()` starts the turn on the engine thread at once and returns an iterator of events that any one
      consumer thread reads; events arrive in batches (about every 40 ms), the engine never waits for the
      consumer. Live control (`TurnControl`: extend, wrap-up, cancel) acts within one token. A second
      `stream()` while a turn runs raises RuntimeError; a consumer that stops reading early (closes the
      iterator, or is interrupted) cancels the turn and waits for it to stop (at most `CLOSE_WAIT_S`).
    - `close()` from any thread cancels the running turn, waits for it (at most `CLOSE_WAIT_S`) and only then
      frees the model: the free is queued behind the turn on the engine thread, so it can never race a
      running `llama_decode`, even when the wait times out. It returns True when the engine thread is done.
      After close, `stream()` and the other calls raise `EngineClosedError`.
    """

    def __init__(
        self,
        llm: Any,
        model: InstalledModel,
        plan: Plan,
        spec: ModelSpec | None,
        *,
        attempt: Attempt,
        retries: list[str],
        probe_rate: float | None,
        logits_processor: LogitsProcessor | None = None,
        load_messages: Sequence[str] = (),
        owner: EngineThread | None = None,
    ) -> None:
        import llama_cpp

        self._owner = owner or EngineThread()
        self._closed = False
        self._close_lock = threading.Lock()
        self._turn_control: TurnControl | None = None
        self._llm = llm
        self._lib = llama_cpp
        self._spec = spec
        self._vocab = llm._model.vocab
        self._logits_processor = logits_processor
        self.hook_error: BaseException | None = None
        # also sent as `status` events at the start of the first turn
        self._load_messages = list(load_messages)
        self._busy = threading.Lock()
        self._pieces: dict[int, bytes] = {}
        self._piece_buf = ctypes.create_string_buffer(256)
        self._rate = probe_rate or plan.expected_decode_tok_s
        self._template = llm.metadata.get("tokenizer.chat_template") if spec is None else None
        self.chat = spec.chat if spec else ChatFormat()
        self.tags = think_tags(llm, self.chat)
        """The think tags as single token ids where the vocabulary has them (detected and injected by id)."""
        self._pieces.update(self.tags.pieces())  # a CONTROL tag would render empty
        self._stop_ids = self._stops()
        self._stop_cache: dict[int, bool] = {}
        self._abort_check: Callable[[], bool] = _never
        self._abort_cb = llama_cpp.ggml_abort_callback(lambda _data: self._abort_check())
        self.evaluated = 0
        """Tokens llama.cpp has processed through this engine (all turns, all sequences)."""
        self.parallel = max(1, plan.n_parallel)
        """Sequences decoded side by side in one batch: this engine's and `parallel - 1` forks'."""
        self._scheduler: BatchScheduler | None = None
        if self.parallel > 1:
            from vibelocal.engine.llama.batch import BatchScheduler

            self._scheduler = BatchScheduler(self, self.parallel)
        extra = {
            "flash_attn": "on" if attempt.flash_attn else "off",
            "kv_cache_type": attempt.kv_cache_type,
            "n_batch": str(plan.n_batch),
            "n_ubatch": str(min(attempt.n_ubatch, plan.n_batch)),
            "think_tags": self.tags.mode,
            "n_parallel": str(self.parallel),
            "prompt_format": "manifest chatml"
            if spec
            else ("gguf template (sandboxed)" if self._template else "chatml (default)"),
        }
        if retries:
            extra["load_retry"] = "; ".join(retries)
        if probe_rate:
            extra["probe_decode_tok_s"] = f"{probe_rate:.1f}"
        if self._template:  # a template that cannot render fails at load (exit 5), not mid-conversation
            self._segments([ChatMessage("user", "hi")], GenerationSettings())
        self.info = EngineInfo(
            model_path=str(model.path),
            model_name=model.name or (spec.name if spec else None),
            quant=model.quant,
            sha256=model.sha256,
            backend=plan.backend if attempt.n_gpu_layers else "cpu",
            device="CPU" if attempt.n_gpu_layers == 0 else plan.backend.upper(),
            n_ctx=_context_per_sequence(llm, self.parallel),
            n_ctx_train=llm._model.n_ctx_train(),
            n_gpu_layers=attempt.n_gpu_layers,
            n_threads=plan.n_threads,
            extra=extra,
        )

    # ------------------------------------------------------------------ protocol

    def _on_owner(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._closed:
            raise EngineClosedError("the engine is closed (its model was unloaded)")
        if self._scheduler is not None:  # between two batch steps when sequences are decoding
            return self._scheduler.call(fn, *args)
        return self._owner.call(fn, *args)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def tokenize(self, text: str) -> list[int]:
        """Plain text to token ids (no BOS; special-token text is not parsed)."""
        return self._on_owner(self._tokenize, text)

    def _tokenize(self, text: str) -> list[int]:
        return self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)

    def detokenize(self, tokens: Sequence[int]) -> str:
        return self._on_owner(self._detokenize, tokens)

    def _detokenize(self, tokens: Sequence[int]) -> str:
        return b"".join(self.piece(t) for t in tokens).decode("utf-8", "replace")

    @property
    def busy(self) -> bool:
        """True while a turn runs on the engine thread."""
        return self._busy.locked()

    def fork(self) -> LlamaFork:
        """A handle on another sequence of this context (`parallel > 1`): its turns are decoded in one batch
        with this engine's and the other forks'. Its `close()` frees only its sequence."""
        if self._closed:
            raise EngineClosedError("the engine is closed (its model was unloaded)")
        if self._scheduler is None:
            raise RuntimeError("this engine decodes one sequence (loaded with n_parallel 1)")
        from vibelocal.engine.llama.fork import LlamaFork

        return LlamaFork(self, self._scheduler)

    def close(self, timeout: float = CLOSE_WAIT_S) -> bool:
        """Cancel the running turn, wait for it (at most `timeout` s), then free on the engine thread.

        True when the model is freed and the engine thread has ended; False when the turn was still running
        after `timeout` (the free then runs on the engine thread as soon as the turn returns, never before).
        """
        with self._close_lock:
            first = not self._closed
            self._closed = True
        if first:
            control = self._turn_control
            if control is not None:
                control.cancel()
            if self._scheduler is not None:  # every sequence's turn; the free is queued behind the loop
                self._scheduler.cancel_all()
            if self._owner.on_thread:
                self._free()
            else:
                self._owner.submit(self._free)
            self._owner.stop()
        return self._owner.join(timeout)

    def _free(self) -> None:
        llm, self._llm = self._llm, None
        if llm is not None:
            llm.close()

    def render_prompt(self, messages: Sequence[ChatMessage], settings: GenerationSettings) -> str:
        """The prompt text of a turn: the manifest's ChatML, else the GGUF's template in a bounded sandbox."""
        return self._on_owner(self._render_prompt, messages, settings)

    def _render_prompt(self, messages: Sequence[ChatMessage], settings: GenerationSettings) -> str:
        return "".join(text for text, _ in self._segments(messages, settings))

    def _segments(
        self, messages: Sequence[ChatMessage], settings: GenerationSettings
    ) -> list[tuple[str, bool]]:
        """The prompt as (text, is_markup) pieces: only markup may hold special tokens."""
        if self._spec is not None or not self._template:
            return prompts.chatml_segments(messages, settings, self.chat)
        llm = self._llm
        eos, bos = llm.token_eos(), llm.token_bos()
        parts = template.segments(
            self._template,
            prompts.as_template_messages(messages, self.chat),
            eos_token=llm._model.token_get_text(eos) if eos != -1 else "",
            bos_token=llm._model.token_get_text(bos) if bos != -1 else "",
        )
        return [*parts, (prompts.assistant_prefill(settings, self.chat), True)]

    def prompt_tokens(self, messages: Sequence[ChatMessage], settings: GenerationSettings) -> list[int]:
        """The tokens of a turn's prompt; message text is tokenized without special tokens (manifest or not)."""
        return self._on_owner(self._prompt_tokens, messages, settings)

    def _prompt_tokens(self, messages: Sequence[ChatMessage], settings: GenerationSettings) -> list[int]:
        llm = self._llm
        if isinstance(messages, RawPrompt):  # /v1/completions: the client rendered the template itself
            return llm.tokenize(
                messages.text.encode("utf-8"), add_bos=bool(llm._model.add_bos_token()), special=True
            )
        parts = self._segments(messages, settings)
        bos = llm.token_bos()
        starts_with_bos = bool(parts) and bos != -1 and parts[0][0].startswith(llm._model.token_get_text(bos))
        tokens: list[int] = []
        if llm._model.add_bos_token() and bos != -1 and not starts_with_bos:
            tokens.append(bos)
        for text, markup in parts:
            if text:
                tokens += llm.tokenize(text.encode("utf-8"), add_bos=False, special=markup)
        return tokens

    def stream(
        self,
        messages: Sequence[ChatMessage],
        settings: GenerationSettings,
        control: TurnControl | None = None,
    ) -> Iterator[StreamEvent]:
        """Start one turn on the engine thread; its events, in order, the last always `done` (an `EventStream`:
        its `batches()` gives them as the engine handed them over)."""
        if self._scheduler is not None:
            return self._scheduler.stream(0, self._busy, messages, settings, control)
        if self._closed:
            raise EngineClosedError("the engine is closed (its model was unloaded)")
        if not self._busy.acquire(blocking=False):
            raise RuntimeError("the engine is already generating a turn")
        control = control or TurnControl()
        handoff = EventHandoff()
        self._turn_control = control
        try:
            self._owner.submit(self._run_turn, messages, settings, control, handoff)
        except RuntimeError:  # close() won the race
            self._turn_control = None
            self._busy.release()
            raise EngineClosedError("the engine is closed (its model was unloaded)") from None
        return EventStream(handoff, control.cancel, CLOSE_WAIT_S)

    def _run_turn(
        self,
        messages: Sequence[ChatMessage],
        settings: GenerationSettings,
        control: TurnControl,
        handoff: EventHandoff,
    ) -> None:
        """One turn, on the engine thread. The engine is free again before the consumer sees the end."""
        mark = log_mark()
        self._stats = TurnStats()
        error: BaseException | None = None
        if self._closed:  # close() came between stream() and this job: stop at once
            control.cancel()
        try:
            while self._load_messages:
                handoff.put(StreamEvent("status", text=self._load_messages.pop(0)))
            for event in self._stream(messages, settings, control):
                handoff.put(event)
        except RuntimeError as exc:  # llama_decode failed: say why, keep the promise of a final `done`
            self._llm.reset()
            self._llm._ctx.kv_cache_clear()
            detail = last_error_line(mark)
            handoff.put(
                StreamEvent("status", text=f"llama.cpp failed ({exc})" + (f": {detail}" if detail else ""))
            )
            handoff.put(StreamEvent("done", stop_reason="error", stats=self._stats))
        except BaseException as exc:  # raised to the consumer after the events before it
            error = exc
        finally:
            self._turn_control = None
            self._busy.release()
            handoff.end(error)

    def stream_prompt(
        self, prompt: str, settings: GenerationSettings, control: TurnControl | None = None
    ) -> Iterator[StreamEvent]:
        """A turn continuing a raw prompt the caller templated itself (`vibelocal serve`'s `/v1/completions`):
        special-token text in it is parsed; the turn starts inside thinking when `settings.prefill_think`."""
        return self.stream(RawPrompt(prompt), settings, control)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ one turn

    def _stream(
        self, messages: Sequence[ChatMessage], settings: GenerationSettings, control: TurnControl
    ) -> Iterator[StreamEvent]:
        t_start = time.perf_counter()
        seed = settings.seed if settings.seed is not None else random.SystemRandom().randrange(1, 2**31 - 1)
        tokens = self._prompt_tokens(messages, settings)
        stats = self._stats = TurnStats(
            prompt_tokens=len(tokens), seed=seed, budget_tokens=settings.max_thinking_tokens
        )
        n_ctx = self.info.n_ctx
        if len(tokens) >= n_ctx - 1:
            yield StreamEvent(
                "status", text=f"the prompt takes {len(tokens)} tokens; the context holds {n_ctx}"
            )
            stats.total_s = time.perf_counter() - t_start
            yield StreamEvent("done", stop_reason="context_full", stats=stats)
            return
        start_eval = self.evaluated
        cached = self._reuse_prefix(tokens if settings.reuse_prefix else tokens[:1])  # [:1]: keeps none
        stats.cached_tokens = cached
        t_prefill = time.perf_counter()
        finished = self._prefill(tokens[cached:], control)
        spent = time.perf_counter() - t_prefill
        stats.evaluated_tokens = self.evaluated - start_eval
        if stats.evaluated_tokens and spent > 0:
            stats.prefill_tok_s = stats.evaluated_tokens / spent
        if not finished:
            stats.total_s = time.perf_counter() - t_start
            yield StreamEvent("done", stop_reason="cancelled", stats=stats)
            return
        backend = self._backend(settings, seed, stats)
        try:
            loop = TurnLoop(
                backend,
                settings,
                control,
                stats,
                chat=self.chat,
                t_start=t_start,
                rate_hint=self._rate,
                tags=self.tags,
            )
            for event in loop.run():
                if event.kind == "done" and stats.decode_tok_s:
                    self._rate = stats.decode_tok_s
                yield event
        finally:
            backend.close()

    def _backend(self, settings: GenerationSettings, seed: int, stats: TurnStats) -> _LlamaBackend:
        sampler = self._sampler(settings, seed)
        if not settings.speculate:
            return _LlamaBackend(self, sampler)
        from vibelocal.engine.llama.speculative import SpeculativeBackend

        return SpeculativeBackend(self, sampler, stats)

    def _reuse_prefix(self, tokens: list[int]) -> int:
        """Keep the longest cached prefix of `tokens` in the KV cache (at least one token left to evaluate)."""
        import numpy as np

        llm = self._llm
        n = min(llm.n_tokens, len(tokens))
        differ = np.flatnonzero(llm.input_ids[:n] != np.asarray(tokens[:n], dtype=np.intc))
        common = int(differ[0]) if len(differ) else n
        common = min(common, len(tokens) - 1)
        if common and not llm._ctx.kv_cache_seq_rm(-1, common, -1):
            common = 0
        if common == 0:
            llm.reset()
            llm._ctx.kv_cache_clear()
        llm.n_tokens = common
        return common

    def _prefill(self, tokens: list[int], control: TurnControl) -> bool:
        """Evaluate the prompt; a cancel aborts llama_decode mid-batch. False when cancelled."""
        if control.cancelled:
            return False
        lib, llm = self._lib, self._llm
        self._abort_check = lambda: control.cancelled
        lib.llama_set_abort_callback(llm.ctx, self._abort_cb, None)
        before = llm.n_tokens
        try:
            llm.eval(tokens)
        except RuntimeError:
            if not control.cancelled:
                raise
        finally:
            lib.llama_set_abort_callback(llm.ctx, lib.ggml_abort_callback(0), None)
            self._abort_check = _never
            self.evaluated += llm.n_tokens - before
        if llm.n_tokens - before < len(tokens):  # aborted mid-prompt: drop the partial batch
            llm._ctx.kv_cache_seq_rm(-1, llm.n_tokens, -1)
            return False
        return not control.cancelled

    def _sampler(
        self, settings: GenerationSettings, seed: int, ids: Callable[[], Sequence[int]] | None = None
    ) -> Any:
        """One sampler chain for the turn, every value explicit (the binding's defaults are not the model's).
        `ids`: the tokens of the turn's sequence, for the logits hook (default: the binding's `input_ids`)."""
        from llama_cpp._internals import LlamaSampler

        sampler = LlamaSampler()
        if self._logits_processor is not None:
            sampler.add_custom(self._custom_apply(self._logits_processor, ids))
        if settings.repeat_penalty != 1.0:
            sampler.add_penalties(self._llm.n_vocab(), 64, settings.repeat_penalty, 0.0, 0.0)
        if settings.temperature <= 0:
            sampler.add_greedy()
            return sampler
        if settings.top_k > 0:
            sampler.add_top_k(settings.top_k)
        if settings.top_p < 1.0:
            sampler.add_top_p(settings.top_p, 1)
        if settings.min_p > 0.0:
            sampler.add_min_p(settings.min_p, 1)
        sampler.add_temp(settings.temperature)
        sampler.add_dist(seed)
        return sampler

    def _custom_apply(
        self, processor: LogitsProcessor, ids: Callable[[], Sequence[int]] | None = None
    ) -> Callable[[Any], None]:
        import numpy as np

        lib, llm = self._lib, self._llm
        if ids is None:
            ids = lambda: llm.input_ids[: llm.n_tokens]  # noqa: E731
        dtype = np.dtype([("id", np.intc), ("logit", np.single), ("p", np.single)], align=True)

        def apply(cur_p: Any) -> None:
            try:
                size = cur_p.contents.size
                address = ctypes.addressof(cur_p.contents.data.contents)
                data = np.frombuffer((lib.llama_token_data * size).from_address(address), dtype=dtype)
                data["logit"][:] = processor(np.asarray(ids(), dtype=np.intc), data["logit"])
            except BaseException as exc:  # ctypes would print and swallow it; re-raised after sampling
                self.hook_error = exc

        return apply

    def _stops(self) -> frozenset[int]:
        """Stop token ids: the manifest's stop strings (special tokens in every ChatML vocabulary) and the
        vocabulary's end-of-generation tokens (checked per token with llama_vocab_is_eog as well)."""
        ids: set[int] = set()
        for s in self.chat.stop:
            toks = self._llm.tokenize(s.encode("utf-8"), add_bos=False, special=True)
            if len(toks) == 1:
                ids.add(toks[0])
        eos = self._llm.token_eos()
        if eos != -1:
            ids.add(eos)
        return frozenset(ids)

    def piece(self, token: int) -> bytes:
        """The bytes of one token (cached; control tokens render empty)."""
        got = self._pieces.get(token)
        if got is None:
            buf = self._piece_buf
            n = self._lib.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, False)
            if n < 0:
                buf = ctypes.create_string_buffer(-n)
                n = self._lib.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, False)
            got = buf.raw[:n]
            self._pieces[token] = got
        return got


class _LlamaBackend:
    """The turn loop's view of the engine (turn.TokenBackend), with the hot calls bound once."""

    def __init__(self, engine: LlamaEngine, sampler: Any) -> None:
        lib = engine._lib
        self._engine = engine
        self._llm = engine._llm
        self._sampler = sampler
        self._sample = lib.llama_sampler_sample
        self._chain = sampler.sampler
        self._ctx = engine._llm.ctx
        self._is_eog = lib.llama_vocab_is_eog
        self._vocab = engine._vocab
        self._stop_ids = engine._stop_ids
        self._stop_cache = engine._stop_cache
        self.n_ctx = engine.info.n_ctx
        self.piece = engine.piece
        batch = self._batch = engine._llm._batch.batch
        self._tok, self._pos, self._seq = batch.token, batch.pos, batch.seq_id
        self._n_seq, self._logits = batch.n_seq_id, batch.logits
        self._decode = lib.llama_decode
        if engine._logits_processor is not None:  # surface a failing test hook instead of sampling garbage
            self.sample = self._sample_checked  # type: ignore[method-assign]

    @property
    def n_past(self) -> int:
        return self._llm.n_tokens

    def sample(self) -> int:
        return self._sample(self._chain, self._ctx, -1)

    def _sample_checked(self) -> int:
        token = self._sample(self._chain, self._ctx, -1)
        if (err := self._engine.hook_error) is not None:
            self._engine.hook_error = None
            raise err
        return token

    def is_stop(self, token: int) -> bool:
        hit = self._stop_cache.get(token)
        if hit is None:
            hit = self._stop_cache[token] = token in self._stop_ids or bool(self._is_eog(self._vocab, token))
        return hit

    def tokenize(self, text: str) -> list[int]:
        return self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)

    def eval(self, tokens: list[int]) -> None:
        if len(tokens) != 1:
            self._llm.eval(tokens)
            self._engine.evaluated += len(tokens)
            return
        # One token, the hot path: fill the binding's batch and decode directly. Llama.eval would also clear
        # the KV cache past n_tokens (a scan of every cell, each token); nothing lives there in this engine.
        llm, n = self._llm, self._llm.n_tokens
        self._tok[0] = tokens[0]
        self._pos[0] = n
        self._seq[0][0] = 0
        self._n_seq[0] = 1
        self._logits[0] = 1
        self._batch.n_tokens = 1
        rc = self._decode(self._ctx, self._batch)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc}")
        llm.input_ids[n] = tokens[0]
        llm.n_tokens = n + 1
        self._engine.evaluated += 1

    def rollback(self, n_past: int) -> None:
        self._llm.n_tokens = n_past
        self._llm._ctx.kv_cache_seq_rm(-1, n_past, -1)

    def close(self) -> None:
        self._sampler.close()
