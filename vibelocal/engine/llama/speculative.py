"""Lossless speculative decoding behind the turn loop's one-token interface: draft, verify in one batch, roll back.

When the turn loop evaluates one sampled token `t`, this backend decodes `[t] + draft` in one `llama_decode`
with logits at every position (the draft from engine/draft.py's n-gram lookup). The following `sample()` calls
read successive batch positions through the turn's own sampler chain; while the sampled token equals the next
draft token, the loop's `eval([token])` costs nothing (the token is already in the KV cache). At the first
mismatch, an injection, a rollback or the end of the turn, the unaccepted tail is removed from the KV cache.

Why this is lossless: every token is still sampled once, in order, by the full chain (penalties, top-k/p,
temperature, the seeded dist sampler) from logits of exactly the accepted history; a draft only decides which
of those logits were computed ahead of time. Accepting draft d exactly when the chain samples d accepts it with
probability p(d) and otherwise yields a sample from p conditioned on not-d, the distribution-preserving rule.
With equal logits, greedy and seeded output are the same token sequence; but llama.cpp's CPU kernels give a
batch's third and later positions slightly different logits than one-token decodes, so on real weights the text
can part at a near tie (tests/engine/llama/test_speculative.py checks what holds; docs/engine.md).

Bookkeeping: `llm.input_ids[:llm.n_tokens]` only ever holds accepted tokens (the test logits hook reads it;
the next turn's prefix reuse compares it), and drafts beyond it live only in the KV cache and `_pending`.
Accounting: each draft token is counted as evaluated (and drafted) when its batch is decoded; when the loop
accepts it, the loop's own +1 is taken back, so `evaluated == prompt - cached + thinking + forced + answer +
(drafted - accepted)` holds after every step.
"""

from __future__ import annotations

import time
from typing import Any

from vibelocal.engine.draft import MAX_DRAFT, DraftGate, NgramDrafter
from vibelocal.engine.llama.runtime import LlamaEngine, _LlamaBackend
from vibelocal.types import TurnStats


class SpeculativeBackend(_LlamaBackend):
    """`_LlamaBackend` that verifies n-gram drafts in the batch of each sampled token."""

    def __init__(
        self,
        engine: LlamaEngine,
        sampler: Any,
        stats: TurnStats,
        *,
        max_draft: int = MAX_DRAFT,
        gate: DraftGate | None = None,
    ) -> None:
        super().__init__(engine, sampler)
        llm = self._llm
        self._stats = stats
        if (
            gate is None
        ):  # one per engine: what it learnt of this machine's speed carries over to the next turn
            gate = getattr(engine, "_draft_gate", None)
            if gate is None:
                gate = engine._draft_gate = DraftGate(max_length=max(0, min(max_draft, llm.n_batch - 1)))  # type: ignore[attr-defined]
        self._gate = gate
        self._drafter = NgramDrafter(llm.input_ids[: llm.n_tokens].tolist())
        self._pending: list[int] = []
        """Draft tokens decoded past n_tokens and not accepted yet, in order."""
        self._batch_accepted = 0
        self._step_start: float | None = None
        """When the current decode step (one token, or one token and its drafts) began."""
        self._step_drafted = 0
        self._idx = -1
        """The batch output the next sample reads (-1: the last, after a plain decode)."""
        self._checked = engine._logits_processor is not None
        self.sample = self._sample_at  # type: ignore[method-assign]

    def _sample_at(self) -> int:
        token = self._sample(self._chain, self._ctx, self._idx)
        if self._checked and (err := self._engine.hook_error) is not None:
            self._engine.hook_error = None
            raise err
        return token

    def eval(self, tokens: list[int]) -> None:
        now = time.perf_counter()
        if len(tokens) == 1 and self._pending and tokens[0] == self._pending[0]:
            self._accept(tokens[0])
            return
        self._end_step(now)
        self._drop_drafts()
        if len(tokens) != 1:
            super().eval(tokens)
            self._drafter.extend(tokens)
            self._idx = -1
            return
        token = tokens[0]
        self._drafter.append(token)
        draft = self._draft() if self._gate.open else []
        self._step_start, self._step_drafted = now, len(draft)
        if not draft:
            super().eval(tokens)
            self._idx = -1
            return
        self._decode_with_draft(token, draft)

    def _end_step(self, now: float) -> None:
        """The previous decode step is over (the loop asks for the next one): tell the gate what it cost, by
        the wall clock from its decode to now (sampling and the loop included, so a GPU's asynchronous
        decode is timed whole)."""
        if self._step_start is None:
            return
        seconds = now - self._step_start
        if self._step_drafted:
            self._gate.record(self._step_drafted, self._batch_accepted, seconds)
        else:
            self._gate.decoded_one(seconds)
        self._step_start = None

    def _draft(self) -> list[int]:
        """The drafter's guess, cut at a stop token (nothing after one is needed) and at the context's end."""
        room = self.n_ctx - self._llm.n_tokens - 1
        draft = self._drafter.draft(min(self._gate.length, room))
        for i, t in enumerate(draft):
            if self.is_stop(t):
                return draft[:i]
        return draft

    def _accept(self, token: int) -> None:
        """The loop sampled the next draft token: it is in the KV cache already."""
        llm = self._llm
        n = llm.n_tokens
        llm.input_ids[n] = token
        llm.n_tokens = n + 1
        self._pending.pop(0)
        self._drafter.append(token)
        self._idx += 1
        self._batch_accepted += 1
        self._stats.accepted_draft_tokens += 1
        self._stats.evaluated_tokens -= 1  # the loop counts it again; it was counted when its batch ran

    def _decode_with_draft(self, token: int, draft: list[int]) -> None:
        """Decode `[token] + draft` in one batch, logits at every position."""
        llm = self._llm
        n = llm.n_tokens
        batch = [token, *draft]
        tok, pos, seq, n_seq, logits = self._tok, self._pos, self._seq, self._n_seq, self._logits
        for i, t in enumerate(batch):
            tok[i] = t
            pos[i] = n + i
            seq[i][0] = 0
            n_seq[i] = 1
            logits[i] = 1
        self._batch.n_tokens = len(batch)
        rc = self._decode(self._ctx, self._batch)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc}")
        llm.input_ids[n] = token
        llm.n_tokens = n + 1
        self._pending = draft
        self._idx = 0
        self._batch_accepted = 0
        self._engine.evaluated += len(batch)
        self._stats.draft_tokens += len(draft)
        self._stats.evaluated_tokens += len(draft)  # the loop counts `token` itself

    def _drop_drafts(self) -> None:
        """Remove the unaccepted drafts from the KV cache (they stay counted: they were evaluated)."""
        if not self._pending:
            return
        self._pending = []
        self._llm._ctx.kv_cache_seq_rm(-1, self._llm.n_tokens, -1)
        self._idx = -1

    def rollback(self, n_past: int) -> None:
        self._end_step(time.perf_counter())
        self._drop_drafts()
        super().rollback(n_past)
        self._drafter.truncate(n_past)
        self._idx = -1

    def close(self) -> None:
        """The turn ended: the KV cache keeps only accepted tokens, as the next turn's prefix reuse expects."""
        self._drop_drafts()
        super().close()
