"""Does the chat app keep up with a fast model? A scripted engine streams at a set rate into the headless app.

Measures, per run: the real stream rate; how many batches reached the UI; message lag (posted by the worker ->
handled by the screen); frame pacing (a 60 Hz timer on the UI loop: late ticks mean dropped frames); key
latency while streaming (a key press until the input shows it); and how long after the stream ended the
reply was fully rendered (Markdown stream flushed, stats shown, history written).

Run: python benchmarks/tui_stream.py [--rate 2000] [--thinking 6000] [--answer 2000] [--size 120x40]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FRAME_S = 1 / 60

ANSWER_PARAGRAPH = (
    "We add the two fractions: $\\frac{1}{3} + \\frac{1}{6} = \\frac{1}{2}$, and then square: $x^2 = \\frac{1}{4}$. "
    "**Check:** every step is reversible, so nothing was lost.\n\n"
)
THINKING_SENTENCE = "Let me reconsider the second case, where n is odd and the sum has one term left over. "


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run_once(
    rate: float | None, thinking_tokens: int, answer_tokens: int, size: tuple[int, int]
) -> dict:
    from textual import events
    from textual._time import get_time

    from vibelocal.config import load_settings
    from vibelocal.engine.scripted import Script, ScriptedEngine, pieces
    from vibelocal.models.store import model_from_path
    from vibelocal.session import Session
    from vibelocal.tui.app import VibelocalApp
    from vibelocal.tui.screens.chat import ChatScreen
    from vibelocal.tui.widgets.prompt import PromptInput
    from vibelocal.types import HardwareProfile

    thinking = ""
    while len(pieces(thinking)) < thinking_tokens:
        thinking += THINKING_SENTENCE
    answer = ""
    while len(pieces(answer)) < answer_tokens:
        answer += ANSWER_PARAGRAPH
    n_think, n_answer = len(pieces(thinking)), len(pieces(answer))

    marks: dict[str, float] = {}

    class TimedEngine(ScriptedEngine):
        def stream(self, messages, settings, control=None):
            for event in super().stream(messages, settings, control):
                if "stream_start" not in marks:
                    marks["stream_start"] = get_time()
                if event.kind == "done":
                    marks["stream_end"] = get_time()
                yield event

    engine = TimedEngine(Script(thinking, answer), tokens_per_s=rate)
    hardware = HardwareProfile(
        os="linux", arch="x86_64", cpu_cores_physical=4, cpu_cores_logical=8,
        ram_total_bytes=16 << 30, ram_available_bytes=12 << 30,
    )  # fmt: skip
    model = model_from_path(_test_model())
    settings = load_settings(
        {"model": str(model.path), "budget": "unlimited", "answer_budget": n_answer + 16}
    )
    session = Session(settings, engine_loader=lambda *_: engine, hardware=hardware)

    lags: list[float] = []
    batches = {"thinking": 0, "answer": 0}
    originals = {name: getattr(ChatScreen, name) for name in ("on_thinking_delta", "on_answer_delta")}

    def on_thinking_delta(self, event):
        lags.append(get_time() - event.time)
        batches["thinking"] += 1
        return originals["on_thinking_delta"](self, event)

    async def on_answer_delta(self, event):
        lags.append(get_time() - event.time)
        batches["answer"] += 1
        return await originals["on_answer_delta"](self, event)

    ChatScreen.on_thinking_delta = on_thinking_delta  # type: ignore[method-assign]
    ChatScreen.on_answer_delta = on_answer_delta  # type: ignore[method-assign]
    ticks: list[float] = []
    key_latency: list[float] = []
    try:
        app = VibelocalApp(session)
        async with app.run_test(size=size) as pilot:
            while "on CPU" not in app.chat.model_label:
                await pilot.pause(0.01)
            app.set_interval(FRAME_S, lambda: ticks.append(get_time()))
            prompt = app.chat.query_one(PromptInput)
            prompt.focus()
            await pilot.press(*"go", "enter")
            while "stream_start" not in marks:
                await pilot.pause(0.001)
            typed = 0
            while app.chat.active is not None:
                if "stream_end" not in marks and typed < 40:
                    start = get_time()
                    prompt.post_message(events.Key("x", "x"))  # as a terminal would deliver it
                    while not prompt.text.endswith("x" * (typed + 1)):
                        await asyncio.sleep(0.001)
                    key_latency.append(get_time() - start)
                    typed += 1
                await asyncio.sleep(0.1)
            await pilot.pause()
            marks["rendered"] = get_time()
            reply = app.chat.last_reply()
            assert reply is not None and reply.answer == answer and reply.thinking == thinking
            rendered_ok = "\\frac" not in reply.markdown.source
    finally:
        for name, fn in originals.items():
            setattr(ChatScreen, name, fn)

    stream_s = marks["stream_end"] - marks["stream_start"]
    gaps = [
        b - a
        for a, b in zip(ticks, ticks[1:], strict=False)
        if a >= marks["stream_start"] and b <= marks["rendered"]
    ]
    return {
        "target_rate": rate or "max",
        "tokens": n_think + n_answer,
        "stream_s": stream_s,
        "real_rate": (n_think + n_answer) / stream_s,
        "batches": batches,
        "lag_p50_ms": percentile(lags, 0.5) * 1000,
        "lag_p99_ms": percentile(lags, 0.99) * 1000,
        "lag_max_ms": max(lags) * 1000 if lags else 0.0,
        "frames": len(gaps),
        "dropped_frames": sum(max(0, round(g / FRAME_S) - 1) for g in gaps),
        "frame_gap_max_ms": max(gaps) * 1000 if gaps else 0.0,
        "frame_gap_mean_ms": statistics.fmean(gaps) * 1000 if gaps else 0.0,
        "key_p50_ms": percentile(key_latency, 0.5) * 1000,
        "key_max_ms": max(key_latency) * 1000 if key_latency else 0.0,
        "render_after_stream_ms": (marks["rendered"] - marks["stream_end"]) * 1000,
        "latex_converted": rendered_ok,
    }


def _test_model() -> Path:
    """Any GGUF works (the engine is scripted); the SmolLM2 test model is the one every checkout has."""
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import _smollm2

    return _smollm2()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rate", type=float, default=2000.0, help="tokens/s of the scripted engine (0: no limit)"
    )
    parser.add_argument("--thinking", type=int, default=6000, help="thinking tokens")
    parser.add_argument("--answer", type=int, default=2000, help="answer tokens")
    parser.add_argument("--size", default="120x40", help="terminal size, COLSxROWS")
    args = parser.parse_args()
    cols, rows = (int(x) for x in args.size.lower().split("x"))
    os.environ.setdefault("VIBELOCAL_HOME", tempfile.mkdtemp(prefix="vibelocal-bench-"))
    result = asyncio.run(run_once(args.rate or None, args.thinking, args.answer, (cols, rows)))
    width = max(len(k) for k in result)
    for key, value in result.items():
        shown = f"{value:.1f}" if isinstance(value, float) else value
        print(f"{key:<{width}}  {shown}")


if __name__ == "__main__":
    main()
