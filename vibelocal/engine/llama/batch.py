"""Several turns in one llama.cpp context: a sequence each, one `llama_decode` per step for all of them.

Why: on a CPU a one-token decode step is bound by reading the weights, so K tokens of K sequences decoded in
one batch cost little more than one. `BatchScheduler` is a continuous-batching loop on the engine thread: a
turn that arrives is admitted between steps (its prompt evaluated, or copied with `llama_memory_seq_cp` from a
live sequence holding the same prefix: K votes evaluate their prompt once), then every step each live turn's
`TurnLoop.step` samples from its own row of the last batch and queues what it wants evaluated, and one
`llama_decode` evaluates all the queues. A turn that ends (stop, budget, cancel, error) frees its sequence's
KV cells at once. Each turn keeps its own sampler chain (its seed), splitter, budget, loop detector, live
control and stats, so it behaves as it would alone.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from vibelocal.engine.control import TurnControl
from vibelocal.engine.llama.logs import last_error_line, log_mark
from vibelocal.engine.llama.owner import EventHandoff, EventStream
from vibelocal.engine.llama.runtime import CLOSE_WAIT_S, EngineClosedError, LlamaEngine, _LlamaBackend
from vibelocal.engine.turn import TurnLoop
from vibelocal.types import ChatMessage, GenerationSettings, StreamEvent, TurnStats


class SequenceBackend(_LlamaBackend):
    """The turn loop's view of one sequence of a shared context. `eval` only queues tokens: the scheduler
    decodes every sequence's queue in one batch and tells each backend the batch row of its logits."""

    def __init__(self, engine: LlamaEngine, sampler: Any, seq_id: int, tokens: list[int]) -> None:
        super().__init__(engine, sampler)
        self.seq_id = seq_id
        self.tokens = tokens
        """The sequence's KV content, one token per position (the logits hook reads it)."""
        self.queued: list[int] = []
        self.row = -1
        """Where this sequence's logits are in the last decoded batch."""

    @property
    def n_past(self) -> int:
        return len(self.tokens)

    def sample(self) -> int:
        return self._sample(self._chain, self._ctx, self.row)

    def _sample_checked(self) -> int:
        token = self._sample(self._chain, self._ctx, self.row)
        if (err := self._engine.hook_error) is not None:
            self._engine.hook_error = None
            raise err
        return token

    def eval(self, tokens: list[int]) -> None:
        self.queued += tokens
        self._engine.evaluated += len(tokens)

    def rollback(self, n_past: int) -> None:
        del self.tokens[n_past:]
        self._llm._ctx.kv_cache_seq_rm(self.seq_id, n_past, -1)


@dataclass(eq=False)
class _Turn:
    """One turn from `stream()` to its `done`: who asked (slot, busy lock) and its loop once admitted."""

    slot: int
    messages: Sequence[ChatMessage]
    settings: GenerationSettings
    control: TurnControl
    handoff: EventHandoff
    busy: threading.Lock
    t_start: float = field(default_factory=time.perf_counter)
    stats: TurnStats = field(default_factory=TurnStats)
    backend: SequenceBackend | None = None
    loop: TurnLoop | None = None


class BatchScheduler:
    """The sequence slots of one engine and the loop that decodes their turns together (see the module).

    Slot 0 is the engine's own; `take_slot` hands the others to forks. Public methods are for any thread;
    the loop (`_run`) is one job on the engine thread, started by the first turn and ended when none is left.
    While it runs, other calls for the engine thread (`call`: tokenize, render a prompt) run between steps.
    """

    def __init__(self, engine: LlamaEngine, n_seq: int) -> None:
        self._engine = engine
        self.n_seq = n_seq
        self._lock = threading.Lock()
        self._running = False
        self._incoming: deque[_Turn] = deque()
        self._side: deque[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]] = deque()
        self._live: dict[int, _Turn] = {}
        """slot -> its turn, from stream() until the turn has ended."""
        self._free_slots = list(range(n_seq - 1, 0, -1))
        self._closing: set[int] = set()
        """Slots of closed forks whose turn is still ending: freed when it has."""
        self._active: list[_Turn] = []
        self._fresh: dict[int, int] = {}
        """slot -> batch row of its logits, for sequences whose logits are those of the last decode."""

    # ------------------------------------------------------------------ any thread

    def take_slot(self) -> int:
        with self._lock:
            if not self._free_slots:
                raise RuntimeError(f"all {self.n_seq} sequences of the engine are taken")
            return self._free_slots.pop()

    def give_slot(self, slot: int) -> None:
        """A fork is closed: its slot is free now, or when its running turn has ended."""
        with self._lock:
            if slot in self._live:
                self._closing.add(slot)
            else:
                self._free_slots.append(slot)

    def live_turn(self, slot: int) -> _Turn | None:
        return self._live.get(slot)

    def cancel_all(self) -> None:
        with self._lock:
            turns = list(self._live.values())
        for turn in turns:
            turn.control.cancel()

    def stream(
        self,
        slot: int,
        busy: threading.Lock,
        messages: Sequence[ChatMessage],
        settings: GenerationSettings,
        control: TurnControl | None,
    ) -> EventStream:
        """Queue a turn for `slot`; its events, the last always `done` (as `LlamaEngine.stream`)."""
        engine = self._engine
        if engine._closed:
            raise EngineClosedError("the engine is closed (its model was unloaded)")
        if not busy.acquire(blocking=False):
            raise RuntimeError("the engine is already generating a turn")
        turn = _Turn(slot, messages, settings, control or TurnControl(), EventHandoff(), busy)
        with self._lock:
            self._live[slot] = turn
            self._incoming.append(turn)
            start = not self._running
            if start:
                try:
                    engine._owner.submit(self._run)
                except RuntimeError:  # close() won the race
                    self._incoming.remove(turn)
                    del self._live[slot]
                    busy.release()
                    raise EngineClosedError("the engine is closed (its model was unloaded)") from None
                self._running = True
        return EventStream(turn.handoff, turn.control.cancel, CLOSE_WAIT_S)

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn(*args)` on the engine thread: between two steps when the loop runs, else as a job."""
        owner = self._engine._owner
        if owner.on_thread:
            return fn(*args)
        with self._lock:
            if self._running:
                future: Future[Any] = Future()
                self._side.append((future, fn, args))
            else:
                future = owner.submit(fn, *args)
        return future.result()

    # ------------------------------------------------------------------ the engine thread

    def _run(self) -> None:
        """The loop: admit new turns, decode every queue in one batch, step every turn; until none is left."""
        try:
            while True:
                self._run_side_jobs()
                self._admit_waiting()
                if not self._active:
                    with self._lock:
                        if not self._incoming and not self._side:
                            self._running = False
                            return
                    continue
                if self._decode_queues():
                    self._step_all()
        except BaseException as exc:  # a bug here: end every turn so that no consumer waits forever
            with self._lock:
                stranded = [*self._active, *self._incoming]
                self._incoming.clear()
                self._running = False
            self._active = []
            for turn in stranded:
                self._end(turn, exc)
            raise

    def _run_side_jobs(self) -> None:
        while self._side:
            with self._lock:
                future, fn, args = self._side.popleft()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # handed to the caller
                future.set_exception(exc)

    def _admit_waiting(self) -> None:
        while self._incoming:
            with self._lock:
                turn = self._incoming.popleft()
            mark = log_mark()
            try:
                if self._admit(turn):
                    self._active.append(turn)
            except RuntimeError as exc:  # llama_decode failed on the prompt
                self._failed(turn, exc, mark)
            except BaseException as exc:  # raised to the consumer
                self._end(turn, exc)

    def _admit(self, turn: _Turn) -> bool:
        """Prepare a turn's sequence: its prompt in the KV cache (copied where a live sequence holds it) and
        its first token sampled and queued for the next batch. False when the turn ended already (its `done`
        is sent)."""
        engine, settings, handoff = self._engine, turn.settings, turn.handoff
        if engine._closed:
            turn.control.cancel()
        while engine._load_messages:
            handoff.put(StreamEvent("status", text=engine._load_messages.pop(0)))
        seed = settings.seed if settings.seed is not None else random.SystemRandom().randrange(1, 2**31 - 1)
        tokens = engine._prompt_tokens(turn.messages, settings)
        stats = turn.stats = TurnStats(
            prompt_tokens=len(tokens), seed=seed, budget_tokens=settings.max_thinking_tokens
        )
        n_ctx = engine.info.n_ctx
        if len(tokens) >= n_ctx - 1:
            handoff.put(
                StreamEvent(
                    "status", text=f"the prompt takes {len(tokens)} tokens; the context holds {n_ctx}"
                )
            )
            return self._done_now(turn, "context_full")
        if turn.control.cancelled:
            return self._done_now(turn, "cancelled")
        mem = engine._llm._ctx
        mem.kv_cache_seq_rm(turn.slot, -1, -1)
        src, common = self._shared_prefix(tokens)
        if common:  # a stream per sequence (loading.py): llama.cpp copies whole streams, then trim it
            mem.kv_cache_seq_cp(src, turn.slot, -1, -1)
            mem.kv_cache_seq_rm(turn.slot, common, -1)
        stats.cached_tokens = common
        kept = tokens[:common]
        t_prefill = time.perf_counter()
        if common == len(tokens):  # the same prompt, just evaluated: sample from its logits as well
            row = self._fresh[src]
        else:
            got = self._prefill(turn.slot, kept, tokens[common:], turn.control, logits=True)
            if got is None:
                mem.kv_cache_seq_rm(turn.slot, -1, -1)
                return self._done_now(turn, "cancelled")
            row = got
            spent = time.perf_counter() - t_prefill
            if spent > 0:
                stats.prefill_tok_s = (len(tokens) - common) / spent
        self._fresh[turn.slot] = row
        stats.evaluated_tokens = len(tokens) - common
        sampler = engine._sampler(settings, seed, ids=lambda: kept)
        backend = turn.backend = SequenceBackend(engine, sampler, turn.slot, kept)
        backend.row = row
        loop = turn.loop = TurnLoop(
            backend,
            settings,
            turn.control,
            stats,
            chat=engine.chat,
            t_start=turn.t_start,
            rate_hint=engine._rate,
            tags=engine.tags,
        )
        loop.begin()
        # the first token now, from the prompt's own logits (as a solo turn samples it), before any other
        # decode overwrites them; it joins the next batch
        events: list[StreamEvent] = []
        over = loop.step(events)
        for event in events:
            handoff.put(event)
        if over:
            self._end(turn)
            return False
        loop.evaluate_deferred()
        return True

    def _shared_prefix(self, tokens: list[int]) -> tuple[int, int]:
        """(sequence, length) of the longest prefix of `tokens` a live sequence holds. The whole prompt only
        from a sequence whose logits for it are still those of the last decode (its turn just began), so the
        new turn can sample its first token from them; else one token is left to evaluate."""
        best, src = 0, -1
        for other in self._active:
            held = other.backend.tokens  # type: ignore[union-attr]
            n = 0
            for a, b in zip(held, tokens, strict=False):
                if a != b:
                    break
                n += 1
            if n == len(tokens) and (other.slot not in self._fresh or len(held) != n):
                n -= 1
            if n > best:
                best, src = n, other.slot
        return src, best

    def _prefill(
        self, seq_id: int, kept: list[int], tokens: list[int], control: TurnControl, *, logits: bool = False
    ) -> int | None:
        """Evaluate `tokens` after `kept` in sequence `seq_id` (appended to `kept`); a cancel aborts
        llama_decode mid-batch. The batch row of the last token's logits (`logits`; else -1), None when
        cancelled."""
        engine = self._engine
        lib, llm = engine._lib, engine._llm
        engine._abort_check = lambda: control.cancelled
        lib.llama_set_abort_callback(llm.ctx, engine._abort_cb, None)
        row = -1
        try:
            step = llm.n_batch
            for i in range(0, len(tokens), step):
                chunk = tokens[i : i + step]
                last = logits and i + step >= len(tokens)
                if not self._decode([(seq_id, len(kept), chunk, last)]):
                    return None  # only the cancel aborts
                kept += chunk
                engine.evaluated += len(chunk)
                row = len(chunk) - 1 if last else -1
        finally:
            lib.llama_set_abort_callback(llm.ctx, lib.ggml_abort_callback(0), None)
            engine._abort_check = lambda: False
        return None if control.cancelled else row

    def _decode(self, runs: list[tuple[int, int, list[int], bool]]) -> bool:
        """One llama_decode of (sequence, first position, tokens, logits of the last) runs; False when
        aborted, RuntimeError when llama.cpp fails."""
        engine = self._engine
        llm = engine._llm
        self._fresh = {}  # every earlier batch row is overwritten
        batch = llm._batch.batch
        tok, pos, seq, n_seq, logits = batch.token, batch.pos, batch.seq_id, batch.n_seq_id, batch.logits
        i = 0
        for seq_id, start, run, last in runs:
            for j, token in enumerate(run):
                tok[i] = token
                pos[i] = start + j
                seq[i][0] = seq_id
                n_seq[i] = 1
                logits[i] = 0
                i += 1
            if last:
                logits[i - 1] = 1
        batch.n_tokens = i
        rc = engine._lib.llama_decode(llm.ctx, batch)
        if rc == 2:  # aborted by the callback
            return False
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc}")
        return True

    def _decode_queues(self) -> bool:
        """Evaluate every active turn's queued tokens in one batch (a run longer than the batch allows is
        evaluated on its own first). False when llama.cpp failed (those turns are ended)."""
        turns = self._active
        mark = log_mark()
        try:
            if sum(len(t.backend.queued) for t in turns) > self._engine._llm.n_batch:  # type: ignore[union-attr]
                for t in turns:
                    backend = t.backend
                    assert backend is not None
                    if len(backend.queued) > 1:
                        self._prefill(backend.seq_id, backend.tokens, backend.queued[:-1], t.control)
                        del backend.queued[:-1]
            runs = []
            row = -1
            for t in turns:
                backend = t.backend
                assert backend is not None
                runs.append((backend.seq_id, len(backend.tokens), backend.queued, True))
                row += len(backend.queued)
                backend.row = row
            if not self._decode(runs):
                raise RuntimeError("llama_decode was aborted")
        except RuntimeError as exc:
            self._active = []
            for t in turns:
                self._failed(t, exc, mark)
            return False
        for t in turns:
            backend = t.backend
            assert backend is not None
            backend.tokens += backend.queued
            backend.queued = []
        return True

    def _step_all(self) -> None:
        """Every active turn samples its next token and queues what it wants evaluated; ended turns leave."""
        still: list[_Turn] = []
        engine = self._engine
        for turn in self._active:
            events: list[StreamEvent] = []
            put = turn.handoff.put
            try:
                over = turn.loop.step(events)  # type: ignore[union-attr]
            except BaseException as exc:  # raised to that turn's consumer after its events
                for event in events:
                    put(event)
                self._end(turn, exc)
                continue
            for event in events:
                put(event)
            if not over:
                turn.loop.evaluate_deferred()  # type: ignore[union-attr]
                still.append(turn)
                continue
            if turn.stats.decode_tok_s:
                engine._rate = turn.stats.decode_tok_s
            self._end(turn)
        self._active = still

    def _done_now(self, turn: _Turn, reason: str) -> bool:
        turn.stats.total_s = time.perf_counter() - turn.t_start
        turn.handoff.put(StreamEvent("done", stop_reason=reason, stats=turn.stats))  # type: ignore[arg-type]
        self._end(turn)
        return False

    def _failed(self, turn: _Turn, exc: RuntimeError, mark: int) -> None:
        """llama.cpp failed: say why and keep the promise of a final `done`."""
        detail = last_error_line(mark)
        turn.handoff.put(
            StreamEvent("status", text=f"llama.cpp failed ({exc})" + (f": {detail}" if detail else ""))
        )
        turn.handoff.put(StreamEvent("done", stop_reason="error", stats=turn.stats))
        self._end(turn)

    def _end(self, turn: _Turn, error: BaseException | None = None) -> None:
        """Free the turn's KV cells and sampler, then its slot; the consumer sees the end last."""
        engine = self._engine
        if engine._llm is not None:
            engine._llm._ctx.kv_cache_seq_rm(turn.slot, -1, -1)
        if turn.backend is not None:
            unsent = len(
                turn.backend.queued
            )  # a turn's last token is never decoded: nothing samples after it
            turn.stats.evaluated_tokens -= unsent
            engine.evaluated -= unsent
            turn.backend.close()
            turn.backend = None
        with self._lock:
            if self._live.get(turn.slot) is turn:
                del self._live[turn.slot]
            if turn.slot in self._closing:
                self._closing.discard(turn.slot)
                self._free_slots.append(turn.slot)
        turn.busy.release()
        turn.handoff.end(error)
