"""How many sequences one context decodes side by side (`--votes K`, `serve --parallel N`), and how long each is.

Every sequence keeps its own `n_ctx` cells of KV cache, so K of them cost K times the single plan's cache. The
search keeps the quant the single plan chose and tries, from K sequences down to 2, the single plan's context
and then shorter ones down to what one turn needs (thinking budget + answer + prompt); for the first count that
fits at all, the placement with the most layers on the GPU wins (then the longest context): a shorter context
per sequence costs nothing while a turn fits in it, a layer moved off the GPU slows every token.
When not even two fit, the plan stays at one sequence (the samples then run one after another), and the reason
says what K would have needed. Pure arithmetic over a placement callback.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vibelocal.placement.memory import CTX_FLOOR, CTX_LADDER, CTX_WANTED
from vibelocal.units import format_bytes

if TYPE_CHECKING:
    from vibelocal.placement.planner import Placement

PROMPT_ROOM = 2048
"""Tokens kept for the prompt when a turn's context is sized from its budgets."""

MAX_SEQUENCES = 64
"""The most sequences a plan asks for (llama.cpp's own limit is 256; `--votes` stops at 64)."""


@dataclass(frozen=True)
class SequenceFit:
    """The placement for the sequences that fit, and what the plan should say about them."""

    placement: Placement
    reason: str | None
    warning: str | None


def turn_ctx(thinking_tokens: int | None, answer_tokens: int, n_ctx_train: int) -> int:
    """The context one turn needs: its budgets and the prompt, rounded up to 4k; 16k when thinking is unlimited."""
    if thinking_tokens is None:
        need = CTX_WANTED
    else:
        need = -(-(thinking_tokens + answer_tokens + PROMPT_ROOM) // 4096) * 4096
    return min(max(need, CTX_FLOOR), n_ctx_train)


def fit_sequences(
    single: Placement,
    wanted: int,
    place: Callable[[int, int], Placement],
    *,
    floor_ctx: int,
    ctx_fixed: bool = False,
) -> SequenceFit:
    """`wanted` sequences if they fit, else as many as do (never fewer than one); `place(n_ctx, n_seq)` prices one
    candidate. `floor_ctx` is the shortest context per sequence worth having; `ctx_fixed` (the user set `ctx`)
    keeps the single plan's context."""
    wanted = max(1, min(wanted, MAX_SEQUENCES))
    if wanted == 1 or not single.fits:
        return SequenceFit(single, None, None)
    floor_ctx = min(floor_ctx, single.n_ctx)
    contexts = (
        [single.n_ctx]
        if ctx_fixed
        else [single.n_ctx] + [c for c in CTX_LADDER if floor_ctx <= c < single.n_ctx]
    )
    too_many = place(contexts[-1], wanted)
    for n_seq in range(wanted, 1, -1):
        fitting = [p for p in (place(n_ctx, n_seq) for n_ctx in contexts) if p.fits]
        if fitting:  # the most layers on the GPU (speed), then the longest context
            p = max(fitting, key=lambda q: (q.n_gpu, q.n_ctx))
            return SequenceFit(p, _reason(p, single, wanted), _warning(p, wanted, too_many))
    return SequenceFit(single, _reason(single, single, wanted, too_many), _warning(single, wanted, too_many))


def _need(p: Placement) -> str:
    need = f"{format_bytes(p.host.total_bytes - p.host.reclaimable_bytes + p.host.margin_bytes)} of RAM"
    if p.device.total_bytes:
        need += f" and {format_bytes(p.device.total_bytes + p.device.margin_bytes)} on the GPU"
    return need


def _reason(p: Placement, single: Placement, wanted: int, too_many: Placement | None = None) -> str:
    if p.n_seq == 1:
        assert too_many is not None
        return (
            f"1 sequence, not {wanted}: {wanted} x {too_many.n_ctx:,} tokens of KV cache need {_need(too_many)} "
            f"(margins included), more than this machine has; they run one after another"
        )
    head = (
        f"{p.n_seq} sequences side by side"
        if p.n_seq == wanted
        else f"{p.n_seq} sequences side by side, not {wanted}"
    )
    text = f"{head}, {p.n_ctx:,} tokens each: a KV cache of {p.n_ctx * p.n_seq:,} tokens"
    if p.n_ctx < single.n_ctx:
        text += f" (one sequence alone would get {single.n_ctx:,})"
    return text


def _warning(p: Placement, wanted: int, too_many: Placement) -> str | None:
    if p.n_seq == wanted:
        return None
    return (
        f"only {p.n_seq} of {wanted} sequences fit side by side ({wanted} x {too_many.n_ctx:,} tokens need "
        f"{_need(too_many)}): the rest wait for a free one"
    )
