"""Batched votes against sequential ones: K samples decoded as K sequences of one batch vs one after another.

Cases, each in a fresh process (one engine per process: two engines decoding on two threads of one process
would bring ggml's OpenMP team contention into the numbers), alternating A B A B so drift on a shared machine
hits both alike, medians reported:
- votes: the SmolLM2-135M GGUF, the same story prompt, K samples with seeds 1..K (temperature 0.7), each up to
  `--tokens` answer tokens. Sequential: a plain engine (n_parallel 1) runs them one after another. Batched: an
  engine loaded with n_parallel K runs them on K forks from K threads at once, as `solve --votes K` does
  (cli/parallel.py). Wall time from the first stream() to the last `done`, prompt evaluation included (the
  batched engine evaluates the prompt once). Target: batched <= 0.5 x sequential (floor 0.6).
- one turn: one sample on an n_parallel K engine (the batched path with one sequence) against the plain engine:
  the decode rate ratio is the batched path's own overhead (target about 1.0).

Run: python benchmarks/votes_speed.py [--k 4] [--threads 2] [--runs 3] [--tokens 128]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROMPT = "Write a long, detailed story about a dragon and a knight who become friends."


def one_case(case: str, k: int, threads: int, tokens: int) -> dict:
    """Runs in the child process: load, warm up, measure `case`, return its numbers."""
    from engine_speed import smollm2_path  # this folder: the script's own, first on sys.path

    from vibelocal.engine.llama import load
    from vibelocal.types import ChatMessage, GenerationSettings, InstalledModel, Plan

    path = smollm2_path()
    n_parallel = k if case in ("batched", "batched_one") else 1
    plan = Plan(
        fits=True, quant="bench", n_layers=0, n_ctx=2048, n_threads=threads, n_batch=512, n_ubatch=512,
        n_parallel=n_parallel,
    )  # fmt: skip
    model = InstalledModel(path=path, size_bytes=path.stat().st_size, name="smollm2")
    engine = load(model, plan, None, check_output=False)
    messages = [ChatMessage("user", PROMPT)]

    def settings(seed: int) -> GenerationSettings:
        return GenerationSettings(
            temperature=0.7, top_p=0.95, seed=seed, max_thinking_tokens=0, max_answer_tokens=tokens,
            reuse_prefix=False,
        )  # fmt: skip

    def sample(handle, seed: int, out: list, i: int) -> None:
        events = list(handle.stream(messages, settings(seed)))
        text = "".join(e.text or "" for e in events if e.kind == "answer")
        out[i] = (text, events[-1].stats)

    try:
        list(engine.stream(messages, settings(99)))  # warm-up: caches, the OpenMP team
        if case in ("plain_one", "batched_one"):
            out: list = [None]
            t0, c0 = time.perf_counter(), time.process_time()
            sample(engine, 1, out, 0)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            stats = out[0][1]
            return {
                "wall_s": wall, "cpu_s": cpu, "decode_tok_s": stats.decode_tok_s, "tokens": stats.answer_tokens
            }  # fmt: skip
        out = [None] * k
        t0, c0 = time.perf_counter(), time.process_time()
        if case == "plain_seq":
            for i in range(k):
                sample(engine, i + 1, out, i)
        else:
            handles = [engine] + [engine.fork() for _ in range(k - 1)]
            workers = [threading.Thread(target=sample, args=(handles[i], i + 1, out, i)) for i in range(k)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        return {
            "wall_s": wall,
            "cpu_s": cpu,
            "tokens": sum(s.answer_tokens for _, s in out),
            "texts": [t for t, _ in out],
        }
    finally:
        engine.close()


def spawn(case: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--child", case, "--k", str(args.k), "--threads", str(args.threads)]
    cmd += ["--tokens", str(args.tokens)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"{case} failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=4, help="votes (sequences of the batch)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3, help="alternating runs per case (median reported)")
    ap.add_argument("--tokens", type=int, default=128, help="answer tokens per sample at most")
    ap.add_argument("--skip-one", action="store_true", help="skip the one-turn overhead case")
    ap.add_argument("--skip-votes", action="store_true", help="only the one-turn overhead case")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(one_case(args.child, args.k, args.threads, args.tokens)))
        return 0
    pairs = [] if args.skip_votes else [("plain_seq", "batched")]
    pairs += [] if args.skip_one else [("plain_one", "batched_one")]
    got: dict[str, list[dict]] = {case: [] for pair in pairs for case in pair}
    for r in range(args.runs):
        for a, b in pairs:
            for case in (a, b) if r % 2 == 0 else (b, a):
                got[case].append(spawn(case, args))
                last = got[case][-1]
                print(
                    f"run {r + 1} {case}: {last['wall_s']:.2f} s, cpu {last['cpu_s']:.2f} s", file=sys.stderr
                )
    print(f"SmolLM2-135M Q4_1, {args.threads} threads, K={args.k}, up to {args.tokens} tokens per sample")
    if not args.skip_votes:
        seq = statistics.median(x["wall_s"] for x in got["plain_seq"])
        bat = statistics.median(x["wall_s"] for x in got["batched"])
        seq_cpu = statistics.median(x["cpu_s"] for x in got["plain_seq"])
        bat_cpu = statistics.median(x["cpu_s"] for x in got["batched"])
        same = sum(s["texts"] == b["texts"] for s, b in zip(got["plain_seq"], got["batched"], strict=True))
        print(f"votes sequential (plain engine): median {seq:.2f} s, tokens {got['plain_seq'][0]['tokens']}")
        print(f"votes batched ({args.k} forks): median {bat:.2f} s, tokens {got['batched'][0]['tokens']}")
        print(f"batched / sequential = {bat / seq:.2f} by the wall clock  (target <= 0.5, floor 0.6)")
        print(f"CPU time: sequential {seq_cpu:.2f} s, batched {bat_cpu:.2f} s, ratio {bat_cpu / seq_cpu:.2f}")
        print(f"runs whose {args.k} texts were identical batched and sequential: {same}/{args.runs}")
    if not args.skip_one:
        plain = statistics.median(x["decode_tok_s"] for x in got["plain_one"])
        one = statistics.median(x["decode_tok_s"] for x in got["batched_one"])
        print(
            f"one turn: plain engine {plain:.1f} tok/s, batched path {one:.1f} tok/s, ratio {one / plain:.2f}"
        )
        p_cpu = statistics.median(x["cpu_s"] / x["tokens"] for x in got["plain_one"]) * 1000
        o_cpu = statistics.median(x["cpu_s"] / x["tokens"] for x in got["batched_one"]) * 1000
        print(
            f"one turn CPU ms per token: plain {p_cpu:.2f}, batched path {o_cpu:.2f}, ratio {p_cpu / o_cpu:.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
