"""Is streaming rendering linear? Feeds the same text token by token with and without one unbalanced `{` early on.

Three consumers, each timed on its own: solve's terminal renderer (thinking on a TTY-like stream, LaTeX as
Unicode), the chat app's answer conversion (`MathStream`, what the answer view does per token) and `TurnRecord`
(collects a turn for --json). A brace that never closes, a stray `$5` and an unclosed `\\[` are the cases that
used to make the converter rescan everything it held on every token; the ratio against the balanced text should
stay near 1 (goal: at most 1.5x) however long the text is.

Run: python benchmarks/render_speed.py [--chars 20000] [--token 4] [--repeat 3]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vibelocal.answers.extract import TurnRecord  # noqa: E402
from vibelocal.cli.render import RenderOptions, StreamRenderer  # noqa: E402
from vibelocal.tui.widgets.mathtext import MathStream  # noqa: E402
from vibelocal.types import StreamEvent  # noqa: E402

SENTENCE = (
    "We check the case $n = 2k+1$ where the sum $\\sum_{i=1}^{n} i^2$ has one term left over, so "
    "$\\frac{n(n+1)}{2}$ is an integer and the bound holds. "
)
OPENERS = {
    "balanced": "",
    "unbalanced {": "Let S = {1, 2, 3 and consider ",
    "\\textbf{ never closed": "\\textbf{note ",
    "stray $5": "It costs $5 and ",
    "unclosed \\[": "\\[ x = ",
}


def text_of(chars: int, opener: str) -> str:
    body = SENTENCE * (chars // len(SENTENCE) + 1)
    return (opener + body)[:chars]


def tokens_of(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def via_cli(tokens: list[str]) -> None:
    options = RenderOptions(thinking_text=True, unicode_thinking=True, unicode_answer=True, notices=False)
    renderer = StreamRenderer(options, out=io.StringIO(), err=io.StringIO())
    for token in tokens:
        renderer.handle(StreamEvent("thinking", text=token))
    for token in tokens:
        renderer.handle(StreamEvent("answer", text=token))
    renderer.finish()


def via_tui(tokens: list[str]) -> None:
    stream = MathStream()
    for token in tokens:
        stream.feed(token)
    stream.flush()


def via_record(tokens: list[str]) -> None:
    record = TurnRecord()
    for token in tokens:
        record.add(StreamEvent("thinking", text=token))
    for token in tokens:
        record.add(StreamEvent("answer", text=token))
    assert len(record.thinking) == len(record.answer)


def best_of(run: Callable[[list[str]], None], tokens: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run(tokens)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=20_000, help="characters of text fed")
    parser.add_argument("--token", type=int, default=4, help="characters per token")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (the best is kept)")
    args = parser.parse_args()
    consumers = {"solve renderer": via_cli, "chat answer view": via_tui, "TurnRecord": via_record}
    print(f"{args.chars:,} characters in tokens of {args.token}; best of {args.repeat} runs")
    print(f"{'consumer':<18} {'input':<24} {'seconds':>8} {'ratio':>6}")
    worst = 0.0
    for name, run in consumers.items():
        base = None
        for label, opener in OPENERS.items():
            tokens = tokens_of(text_of(args.chars, opener), args.token)
            seconds = best_of(run, tokens, args.repeat)
            base = seconds if base is None else base
            ratio = seconds / base if base else 1.0
            worst = max(worst, ratio)
            print(f"{name:<18} {label:<24} {seconds:>8.3f} {ratio:>5.2f}x")
    print(f"worst ratio against balanced text: {worst:.2f}x (goal: at most 1.5x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
