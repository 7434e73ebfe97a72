"""Decode speed with and without n-gram speculative decoding, through the real engine on SmolLM2-135M.

Two traces, runs alternating without / with speculation so drift on a shared machine hits both alike:
- repetitive: SmolLM2 asked to copy a passage given in the prompt, greedy (drafts come from the prompt);
- non-repetitive: a story, sampled at temperature 0.6 with a fixed seed (few n-grams repeat).

For each run: the decode rate the turn reports (`TurnStats.decode_tok_s`: sampled tokens / decode time), the
drafted and accepted counts, and whether the text equals the run without speculation (it must, byte for byte).
Prints medians and the ratio with / without. Targets: >= 1.5x on the repetitive trace (floor 1.3x), >= 0.97x
on the non-repetitive one. Run: python benchmarks/speculation.py [--threads 2] [--runs 5] [--tokens 256]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from engine_speed import plan_for, smollm2_path  # noqa: E402

from vibelocal.engine.llama import load  # noqa: E402
from vibelocal.types import ChatMessage, GenerationSettings, InstalledModel  # noqa: E402

PASSAGE = (
    "The old lighthouse stood at the edge of the cliff for more than two hundred years. Every night its keeper "
    "climbed the one hundred and twelve steps, trimmed the wick, polished the great lens and watched the ships "
    "pass safely around the rocks below. When the storms came in winter, the waves rose higher than the roof "
    "of the keeper's cottage, and the light was the only thing the sailors could see for miles. The keeper "
    "wrote every ship, every storm and every repair in a thick leather book that still sits on the shelf."
)
TRACES = {
    "repetitive (copy, greedy)": (
        [ChatMessage("user", f"Copy this passage exactly, word for word, twice:\n\n{PASSAGE}")],
        GenerationSettings(temperature=0.0, seed=1),
    ),
    "non-repetitive (story, t=0.6)": (
        [ChatMessage("user", "Write a long, detailed story about a dragon and a knight who become friends.")],
        GenerationSettings(temperature=0.6, top_p=0.95, seed=7),
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=256)
    args = parser.parse_args()
    path = smollm2_path()
    model = InstalledModel(path=path, size_bytes=path.stat().st_size, name="smollm2")
    engine = load(model, plan_for(4096, args.threads), None, check_output=False)
    print(f"SmolLM2-135M Q4_1, {args.threads} threads, {args.tokens} answer tokens, {args.runs} runs each")
    try:
        for name, (messages, base) in TRACES.items():
            base = replace(
                base,
                max_thinking_tokens=0,
                max_answer_tokens=args.tokens,
                loop_detection=False,
                reuse_prefix=False,
            )
            rates: dict[bool, list[float]] = {False: [], True: []}
            texts: dict[bool, set[str]] = {False: set(), True: set()}
            drafted = accepted = 0
            for _ in range(args.runs):
                for speculate in (False, True):
                    events = list(engine.stream(messages, replace(base, speculate=speculate)))
                    stats = events[-1].stats
                    assert stats is not None and stats.decode_tok_s
                    rates[speculate].append(stats.decode_tok_s)
                    texts[speculate].add("".join(e.text for e in events if e.kind == "answer"))
                    if speculate:
                        drafted += stats.draft_tokens
                        accepted += stats.accepted_draft_tokens
            plain, spec = statistics.median(rates[False]), statistics.median(rates[True])
            same = texts[False] == texts[True] and len(texts[False]) == 1
            rate = accepted / drafted if drafted else 0.0
            print(
                f"{name:32} off {plain:6.1f} tok/s   on {spec:6.1f} tok/s   ratio {spec / plain:4.2f}x   "
                f"drafted {drafted // args.runs} accepted {accepted // args.runs} per run "
                f"({rate:.0%})   identical text: {'yes' if same else 'NO'}"
            )
    finally:
        engine.close()


if __name__ == "__main__":
    main()
