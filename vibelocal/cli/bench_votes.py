"""`vibelocal bench`'s vote rows: K samples of one prompt decoded side by side, against one sample alone.

Each row times whole turns through the engine's own `stream()` (prompt, thinking to a fixed budget, a short
answer), K at once on the engine and K - 1 forks of it, and reports the decoded tokens of all K per second
of wall time. `vs_sequential` is the K-sample wall time over K times the one-sample wall time: below 1 the
batch pays, and issue 15 aims at 0.5 for K = 4. An engine that decodes one sequence at a time gets a row that
says so instead of a number.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from vibelocal.cli.parallel import can_run_side_by_side
from vibelocal.engine.control import TurnControl
from vibelocal.types import ChatMessage, GenerationSettings

NOT_MEASURED = "not measured: this engine decodes one sequence at a time"
BENCH_PROMPT = "Count slowly from one to one hundred, one number per line."


def bench_generation(n_gen: int) -> GenerationSettings:
    """Thinking capped at `n_gen` tokens, then a few answer tokens; no loop nudges, so every run is alike."""
    return GenerationSettings(
        temperature=0.6,
        max_thinking_tokens=n_gen,
        max_answer_tokens=8,
        prefill_think=True,
        loop_detection=False,
    )


def not_measured(ks: Sequence[int], at_once: int = 1) -> list[dict[str, Any]]:
    """Rows for K samples an engine cannot decode side by side (it decodes `at_once` sequences at a time)."""
    why = (
        NOT_MEASURED
        if at_once <= 1
        else f"not measured: this engine decodes at most {at_once} sequences at once"
    )
    return [{"test": f"votes K={k}", "n_seq": k, "not_measured": why} for k in ks]


def votes_rows(
    engine: Any,
    messages: Sequence[ChatMessage],
    generation: GenerationSettings,
    ks: Sequence[int],
    *,
    repetitions: int = 1,
    on_step: Callable[[str], None] = lambda _step: None,
) -> list[dict[str, Any]]:
    """One row per K (llama-bench fields plus `n_seq`, `wall_s`, `vs_sequential`); K > 1 needs an engine that forks
    at least K ways, otherwise its row is not measured."""
    most = max(ks, default=1)
    forks = (
        [engine.fork() for _ in range(min(most, engine.parallel) - 1)] if can_run_side_by_side(engine) else []
    )
    handles = [engine, *forks]
    rows: list[dict[str, Any]] = []
    one_wall: float | None = None
    try:
        for k in ks:
            if k > len(handles):
                rows += not_measured([k], len(handles))
                continue
            walls, rates, n_gen, n_prompt = [], [], 0, 0
            for r in range(repetitions):
                on_step(f"votes K={k} ({r + 1}/{repetitions})")
                wall, stats = _run_together(handles[:k], messages, generation, seed=1000 * r)
                n_gen = sum(s.thinking_tokens + s.answer_tokens for s in stats)
                n_prompt = stats[0].prompt_tokens
                walls.append(wall)
                rates.append(n_gen / wall if wall > 0 else 0.0)
            wall_s = statistics.median(walls)
            if k == 1:
                one_wall = wall_s
            rows.append(
                {
                    "test": f"votes K={k}",
                    "n_prompt": n_prompt,
                    "n_gen": n_gen,
                    "n_depth": 0,
                    "n_seq": k,
                    "avg_ts": round(statistics.fmean(rates), 2),
                    "stddev_ts": round(statistics.stdev(rates), 2) if len(rates) > 1 else 0.0,
                    "samples_ts": [round(x, 2) for x in rates],
                    "wall_s": round(wall_s, 3),
                    "vs_sequential": round(wall_s / (k * one_wall), 3) if one_wall and k > 1 else None,
                }
            )
    finally:
        for fork in forks:
            fork.close()
    return rows


def _run_together(
    handles: Sequence[Any], messages: Sequence[ChatMessage], generation: GenerationSettings, *, seed: int
) -> tuple[float, list[Any]]:
    """Wall seconds for one turn on every handle at once, and each turn's final stats."""
    stats: list[Any] = [None] * len(handles)
    failures: list[BaseException] = []

    def one(i: int) -> None:
        try:
            for event in handles[i].stream(messages, replace(generation, seed=seed + i), TurnControl()):
                if event.kind == "done":
                    stats[i] = event.stats
        except BaseException as exc:  # re-raised on the calling thread
            failures.append(exc)

    threads = [
        threading.Thread(target=one, args=(i,), name=f"vibelocal-bench-vote-{i}") for i in range(len(handles))
    ]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    if failures:
        raise failures[0]
    return wall, stats
