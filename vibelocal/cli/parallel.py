"""`--votes K` side by side: each sample on a handle of its own (a server slot, or a sequence of the local batch).

An engine that can `fork()` decodes several turns at once (llama-server's slots, vLLM's continuous batching,
the local engine loaded with `n_parallel` sequences); solve samples any other engine in sequence. Each finished
sample is handed to `on_done`, which says when the vote is settled: the samples still running are then
cancelled and the rest never start (they are "cut"). Ctrl-C cancels every running sample and keeps what each
produced.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import threading
from collections.abc import Callable, Sequence
from typing import Any

from vibelocal.answers.extract import TurnRecord
from vibelocal.answers.votes import CUT, Equivalence, VoteTally
from vibelocal.engine.control import TurnControl
from vibelocal.types import ChatMessage, GenerationSettings

__all__ = ["CUT", "can_run_side_by_side", "sample_side_by_side", "sample_vote"]

CANCEL_WAIT_S = 10.0
"""After Ctrl-C or a settled vote, how long the running samples get to end their turns (each stops within a
token)."""


def can_run_side_by_side(engine: Any) -> bool:
    return callable(getattr(engine, "fork", None)) and getattr(engine, "parallel", 1) > 1


def sample_side_by_side(
    engine: Any,
    messages: Sequence[ChatMessage],
    generations: Sequence[GenerationSettings],
    *,
    on_done: Callable[[int, TurnRecord], bool | None],
    cancel: TurnControl | None = None,
) -> list[TurnRecord]:
    """One record per generation, in order; at most `engine.parallel` turns at a time. Once `on_done` returns
    True the vote is settled: the unfinished samples are cut (their records say `cut`). Cancelling `cancel`
    (the caller's control) cancels every sample, as Ctrl-C does."""
    workers = max(1, min(len(generations), engine.parallel))
    engines = [engine] + [engine.fork() for _ in range(workers - 1)]
    free = list(engines)
    free_lock = threading.Lock()
    controls = [TurnControl() for _ in generations]
    records = [TurnRecord() for _ in generations]
    settled = False

    def one(i: int) -> int:
        with free_lock:
            eng = free.pop()
        try:
            for event in eng.stream(messages, generations[i], controls[i]):
                records[i].add(event)
        finally:
            with free_lock:
                free.append(eng)
        return i

    # samples start from this thread only, as handles free up, so none starts once the vote is settled
    waiting = collections.deque(range(len(generations)))
    pool = cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vibelocal-vote")
    futures: dict[cf.Future[int], int] = {}
    pending: set[cf.Future[int]] = set()

    def start_more() -> None:
        while waiting and len(pending) < workers:
            i = waiting.popleft()
            future = pool.submit(one, i)
            futures[future] = i
            pending.add(future)

    try:
        start_more()
        while pending and not settled:
            if cancel is not None and cancel.cancelled:
                raise KeyboardInterrupt
            done, pending = cf.wait(pending, timeout=0.2, return_when=cf.FIRST_COMPLETED)
            for future in sorted(done, key=futures.__getitem__):
                future.result()
                i = futures[future]
                settled = bool(on_done(i, records[i])) or settled
            if settled:
                _cancel(controls, pending)
                cf.wait(pending, timeout=CANCEL_WAIT_S)
                reported = {futures[f] for f in futures if f not in pending}
                for i, record in enumerate(records):
                    if i not in reported:
                        record.stop_reason = CUT
            else:
                start_more()
    except KeyboardInterrupt:  # Ctrl-C, or the caller's control
        _cancel(controls, pending)
        cf.wait(pending, timeout=CANCEL_WAIT_S)
        for record in records:
            if record.stop_reason is None:
                record.stop_reason = "cancelled"
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        for eng in engines[1:]:
            eng.close()
    return records


def _cancel(controls: list[TurnControl], pending: set[cf.Future[int]]) -> None:
    """Stop every running sample (within a token) and every queued one before it starts."""
    for future in pending:
        future.cancel()
    for control in controls:
        control.cancel()


def sample_vote(
    engine: Any,
    messages: Sequence[ChatMessage],
    generations: Sequence[GenerationSettings],
    *,
    kind: str,
    equivalent: Equivalence,
    run_one: Callable[[GenerationSettings], TurnRecord],
    note: Callable[[str], None],
    cancel: TurnControl | None = None,
) -> list[TurnRecord]:
    """A vote's samples: side by side on an engine that decodes several turns at once (server slots, or the
    local engine's sequences), else one after another through `run_one`. Either way the vote stops once it is
    settled (the rest are cut) and `note` tells each sample's outcome."""
    n = len(generations)
    tally = VoteTally(n, equivalent)

    def report(i: int, record: TurnRecord) -> bool:
        final = record.final_answer(kind)
        note(f"sample {i + 1}/{n}: {final or 'no final answer'} ({record.stop_reason})")
        return record.stop_reason != "cancelled" and tally.add(i, final)

    if can_run_side_by_side(engine):
        note(f"{n} samples, {min(n, engine.parallel)} at a time on {engine.info.device}")
        return sample_side_by_side(engine, messages, generations, on_done=report, cancel=cancel)
    records: list[TurnRecord] = []
    for i, generation in enumerate(generations):
        note(f"sample {i + 1}/{n} (seed {generation.seed})")
        record = run_one(generation)
        records.append(record)
        if record.stop_reason == "cancelled" or (cancel is not None and cancel.cancelled):
            break
        if report(i, record):  # settled: the samples not started are cut
            records += [TurnRecord(stop_reason=CUT) for _ in range(n - len(records))]
            break
    return records
