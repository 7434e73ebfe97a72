"""`--votes K` on a server: the samples run side by side, each on a connection (and server slot) of its own.

A local engine decodes one turn at a time, so solve samples it in sequence; a remote engine that can `fork()`
serves several at once (llama-server's slots, vLLM's continuous batching). Ctrl-C cancels every running sample
and keeps what each produced.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable, Sequence
from typing import Any

from vibelocal.answers.extract import TurnRecord
from vibelocal.engine.control import TurnControl
from vibelocal.types import ChatMessage, GenerationSettings

CANCEL_WAIT_S = 10.0
"""After Ctrl-C, how long the running samples get to end their turns (each stops within a token)."""


def can_run_side_by_side(engine: Any) -> bool:
    return callable(getattr(engine, "fork", None)) and getattr(engine, "parallel", 1) > 1


def sample_side_by_side(
    engine: Any,
    messages: Sequence[ChatMessage],
    generations: Sequence[GenerationSettings],
    *,
    on_done: Callable[[int, TurnRecord], None],
) -> list[TurnRecord]:
    """One record per generation, in order; at most `engine.parallel` turns at a time."""
    workers = max(1, min(len(generations), engine.parallel))
    engines = [engine] + [engine.fork() for _ in range(workers - 1)]
    free = list(engines)
    controls = [TurnControl() for _ in generations]
    records = [TurnRecord() for _ in generations]

    def one(i: int) -> int:
        eng = free.pop()
        try:
            for event in eng.stream(messages, generations[i], controls[i]):
                records[i].add(event)
        finally:
            free.append(eng)
        return i

    pool = cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vibelocal-vote")
    futures = {pool.submit(one, i): i for i in range(len(generations))}
    pending = set(futures)
    try:
        while pending:
            done, pending = cf.wait(pending, timeout=0.2, return_when=cf.FIRST_COMPLETED)
            for future in done:
                future.result()
                on_done(futures[future], records[futures[future]])
    except KeyboardInterrupt:
        for c in controls:
            c.cancel()
        cf.wait(pending, timeout=CANCEL_WAIT_S)
        for i in range(len(records)):
            if records[i].stop_reason is None:
                records[i].stop_reason = "cancelled"
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        for eng in engines[1:]:
            eng.close()
    return records
