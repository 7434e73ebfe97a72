"""Pure parts of the chat app, as tables: token batching, meter and stats lines, titles, settings validation."""

from __future__ import annotations

import pytest

from vibelocal.config import Settings
from vibelocal.tui import messages as m
from vibelocal.tui.screens.chat import _slug
from vibelocal.tui.screens.settings import settings_changes
from vibelocal.tui.widgets.mathtext import MathStream, answer_markdown
from vibelocal.tui.widgets.meter import budget_line, record_footer, stats_line
from vibelocal.tui.widgets.thinking import thinking_title
from vibelocal.tui.workers import pump_turn
from vibelocal.types import EngineInfo, StreamEvent, TurnStats


class FakeClock:
    """Advances by `step` seconds on every reading."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def think(text: str, n: int, budget: int | None = 100) -> StreamEvent:
    return StreamEvent("thinking", text=text, thinking_tokens=n, budget_tokens=budget)


def kinds(posted) -> list[str]:
    return [type(p).__name__ for p in posted]


def test_pump_batches_fast_tokens_into_few_messages():
    events = [think("t", i + 1) for i in range(100)] + [StreamEvent("answer", text="a")] * 50
    events.append(StreamEvent("done", stop_reason="answered", stats=TurnStats(thinking_tokens=100)))
    posted: list = []
    pump_turn(events, posted.append, 1, interval=0.01, clock=FakeClock(0.001))  # 1 ms per token
    thinking = [p for p in posted if isinstance(p, m.ThinkingDelta)]
    answer = [p for p in posted if isinstance(p, m.AnswerDelta)]
    assert "".join(p.text for p in thinking) == "t" * 100 and "".join(p.text for p in answer) == "a" * 50
    assert len(thinking) <= 12 and len(answer) <= 7  # about one message per 10 ms, not one per token
    assert thinking[-1].tokens == 100 and answer[-1].tokens == 50
    assert kinds(posted)[-1] == "TurnFinished" and posted[-1].stop_reason == "answered"
    last_thinking = max(i for i, p in enumerate(posted) if isinstance(p, m.ThinkingDelta))
    first_answer = min(i for i, p in enumerate(posted) if isinstance(p, m.AnswerDelta))
    assert last_thinking < first_answer  # the panel gets its last words before the answer starts


def test_pump_posts_every_token_when_they_are_slow():
    events = [think("x", 1), think("y", 2), StreamEvent("done", stop_reason="answered")]
    posted: list = []
    pump_turn(events, posted.append, 3, interval=0.01, thinking_interval=0.01, clock=FakeClock(0.05))
    assert kinds(posted) == ["ThinkingDelta", "ThinkingDelta", "TurnFinished"]
    assert all(p.turn == 3 for p in posted)


def test_thinking_repaints_ten_times_a_second_and_the_answer_thirty():
    events = [think("t", i + 1) for i in range(100)] + [StreamEvent("answer", text="a")] * 100
    events.append(StreamEvent("done", stop_reason="answered"))
    posted: list = []
    pump_turn(events, posted.append, 1, clock=FakeClock(0.01))  # 100 tok/s: one second of each
    thinking = [p for p in posted if isinstance(p, m.ThinkingDelta)]
    answer = [p for p in posted if isinstance(p, m.AnswerDelta)]
    assert 8 <= len(thinking) <= 12 and 25 <= len(answer) <= 36
    assert "".join(p.text for p in thinking) == "t" * 100 and "".join(p.text for p in answer) == "a" * 100


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (StreamEvent("budget", note="extended", thinking_tokens=5, budget_tokens=2148), "BudgetNote"),
        (StreamEvent("loop", text="repeating"), "TurnNotice"),
        (StreamEvent("status", text="retrying"), "TurnNotice"),
    ],
)
def test_pump_flushes_text_before_other_events(event, expected):
    posted: list = []
    pump_turn([think("a", 1), event, StreamEvent("done")], posted.append, 1, clock=FakeClock(0.0))
    assert kinds(posted) == ["ThinkingDelta", expected, "TurnFinished"]


def test_pump_throttles_running_stats():
    events = [StreamEvent("stats", stats=TurnStats(thinking_tokens=i)) for i in range(40)]
    posted: list = []
    pump_turn(events, posted.append, 1, clock=FakeClock(0.01))  # ~1 s in all; stats at most every 0.25 s
    stats = [p.stats.thinking_tokens for p in posted if isinstance(p, m.TurnStatsUpdate)]
    assert stats[0] == 0 and 2 <= len(stats) <= 5


def test_pump_keeps_what_streamed_before_a_failure():
    def events():
        yield think("partial", 1)
        raise RuntimeError("boom")

    posted: list = []
    with pytest.raises(RuntimeError):
        pump_turn(events(), posted.append, 1, clock=FakeClock(0.0))
    assert kinds(posted) == ["ThinkingDelta"] and posted[0].text == "partial"


def test_pump_without_done_reports_an_error_end():
    posted: list = []
    pump_turn([StreamEvent("answer", text="x")], posted.append, 1, clock=FakeClock(0.0))
    assert kinds(posted) == ["AnswerDelta", "TurnFinished"] and posted[-1].stop_reason == "error"


@pytest.mark.parametrize(
    ("args", "kwargs", "line"),
    [
        ((0, 8192, None), {}, "Thinking ░░░░░░░░░░░░░░░░░░░░░░░░ 0 / 8,192 tokens"),
        ((4096, 8192, 100.0), {}, "Thinking ████████████░░░░░░░░░░░░ 4,096 / 8,192 tokens · ETA 0:41"),
        (
            (4096, 8192, 100.0),
            {"note": "answering", "answering": True},
            "Thought ████████████░░░░░░░░░░░░ 4,096 / 8,192 tokens · answering",
        ),
        (
            (9000, 8192, 100.0),
            {"note": "wrapping up"},
            "Thinking ████████████████████████ 9,000 / 8,192 tokens · wrapping up",
        ),
        ((120, None, 30.0), {}, "Thinking 120 tokens · no budget"),
        (
            (300, None, 30.0),
            {"time_budget_s": 90, "elapsed_s": 30},
            "Thinking ████████░░░░░░░░░░░░░░░░ 0:30 / 1:30 · 300 tokens",
        ),
    ],
)
def test_budget_line(args, kwargs, line):
    assert budget_line(*args, **kwargs) == line


def test_stats_line_and_record_footer():
    stats = TurnStats(thinking_tokens=700, answer_tokens=112, ttft_s=0.414, decode_tok_s=23.44)
    info = EngineInfo(model_path="m.gguf", quant="Q4_K_M", device="Apple M2 (Metal)")
    assert (
        stats_line(stats, info)
        == "23.4 tok/s · TTFT 0.41s · 812 tokens (700 thinking) · Apple M2 (Metal) · Q4_K_M"
    )
    assert stats_line(None, info, live=True) == "… Apple M2 (Metal) · Q4_K_M"
    record = {
        "tok_s": 31.5,
        "ttft_s": 0.42,
        "thinking_tokens": 64,
        "answer_tokens": 21,
        "device": "CPU",
        "quant": "Q8_0",
    }
    assert record_footer(record) == "31.5 tok/s · TTFT 0.42s · 85 tokens (64 thinking) · CPU · Q8_0"
    assert record_footer({}) == ""


@pytest.mark.parametrize(
    ("tokens", "live", "truncated", "title"),
    [
        (1, True, False, "Thinking… 1 token"),
        (1234, True, False, "Thinking… 1,234 tokens"),
        (1234, False, False, "Thought for 1,234 tokens"),
        (50, False, True, "Thought for 50 tokens (cut off)"),
        (0, False, False, "Thinking"),
    ],
)
def test_thinking_title(tokens, live, truncated, title):
    assert thinking_title(tokens, live=live, truncated=truncated) == title


@pytest.mark.parametrize(
    ("form", "changes"),
    [
        ({"budget": "medium", "temperature": "", "model": "vibethinker-3b", "show_thinking": True}, {}),
        ({"budget": "low", "temperature": "0.3", "model": "vibethinker-3b:Q8_0", "show_thinking": False},
         {"budget": "low", "temperature": 0.3, "model": "vibethinker-3b:Q8_0", "show_thinking": False}),
        ({"budget": "medium", "temperature": " ", "model": "", "show_thinking": True}, {}),
    ],
)  # fmt: skip
def test_settings_changes(form, changes):
    assert settings_changes(Settings(), **form) == changes


def test_settings_changes_clears_a_temperature():
    assert settings_changes(
        Settings(temperature=0.9), budget="medium", temperature="", model="", show_thinking=True
    ) == {"temperature": None}


@pytest.mark.parametrize(
    ("temperature", "message"), [("hot", "must be a number"), ("2.5", "between 0 and 2")]
)
def test_settings_changes_rejects_bad_temperature(temperature, message):
    with pytest.raises(ValueError, match=message):
        settings_changes(Settings(), budget="medium", temperature=temperature, model="", show_thinking=True)


@pytest.mark.parametrize(
    ("title", "slug"),
    [("What is 6*7?", "what-is-6-7"), ("  ", "conversation"), ("Ünïcode ∑ sums", "ünïcode-sums")],
)
def test_slug(title, slug):
    assert _slug(title) == slug


def test_streamed_math_equals_whole_math():
    text = "So $\\frac{1}{2} + x^2$ and then\n\\[ \\sqrt{2} \\]\nfinal: $\\boxed{42}$ done."
    stream = MathStream()
    parts = [stream.feed(text[i : i + 3]) for i in range(0, len(text), 3)] + [stream.flush()]
    assert "".join(parts) == answer_markdown(text)
    assert "\\frac" not in answer_markdown(text) and "**42**" in answer_markdown(text)
