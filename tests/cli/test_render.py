"""Terminal rendering: what reaches stdout and stderr, on a TTY and on pipes, from scripted event streams."""

from __future__ import annotations

import io
from pathlib import Path

from vibelocal.cli.render import (
    CLEAR_LINE,
    DIM,
    StreamRenderer,
    counter_line,
    format_duration,
    notice_text,
    summary_line,
    terminal_options,
)
from vibelocal.engine.scripted import Script, ScriptedEngine
from vibelocal.types import ChatMessage, GenerationSettings, StreamEvent, TurnStats


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


THINKING = r"We need $x^2 = 4$, so $x = 2$. " * 3
ANSWER = "\n\nSo $x^2 = 4$ gives \\boxed{\\frac{1}{2}}."


def run(options, *, out=None, err=None, script=Script(THINKING, ANSWER), budget: int | None = 8192, **kw):
    out = out if out is not None else io.StringIO()
    err = err if err is not None else io.StringIO()
    engine = ScriptedEngine(script)
    renderer = StreamRenderer(options, out=out, err=err, **kw)
    settings = GenerationSettings(max_thinking_tokens=budget)
    for event in engine.stream([ChatMessage("user", "q")], settings):
        renderer.handle(event)
    renderer.finish()
    return out.getvalue(), err.getvalue(), renderer


def test_pipes_get_the_raw_answer_and_no_thinking():
    out, err = io.StringIO(), io.StringIO()
    options = terminal_options(out=out, err=err, environ={})
    assert not options.thinking_text and not options.live_counter and not options.unicode_answer
    stdout, stderr, renderer = run(options, out=out, err=err)
    assert stdout == "So $x^2 = 4$ gives \\boxed{\\frac{1}{2}}.\n"  # as generated
    assert stderr == ""
    assert renderer.stop_reason == "answered"


def test_show_thinking_on_a_pipe_gives_plain_thinking():
    out, err = io.StringIO(), io.StringIO()
    options = terminal_options(show_thinking=True, out=out, err=err, environ={})
    stdout, stderr, _ = run(options, out=out, err=err)
    assert stderr == THINKING + "\n"  # no escape codes, a newline before the answer
    assert stdout == "So $x^2 = 4$ gives \\boxed{\\frac{1}{2}}.\n"


def test_tty_shows_dimmed_unicode_thinking_and_unicode_answer():
    out, err = Tty(), Tty()
    options = terminal_options(out=out, err=err, environ={})
    assert options.thinking_text and options.unicode_answer and options.color_err
    stdout, stderr, _ = run(options, out=out, err=err)
    assert DIM in stderr and "x² = 4" in stderr and "$" not in stderr
    assert stdout == "So x² = 4 gives \x1b[1;32m½\x1b[0m.\n"
    assert "thought " in stderr.splitlines()[-1]  # the summary line


def test_no_color_and_raw():
    out, err = Tty(), Tty()
    options = terminal_options(raw=True, out=out, err=err, environ={"NO_COLOR": "1"})
    stdout, stderr, _ = run(options, out=out, err=err)
    assert "\x1b" not in stdout + stderr
    assert stdout == "So $x^2 = 4$ gives \\boxed{\\frac{1}{2}}.\n"
    assert "$x^2 = 4$" in stderr


def test_unicode_without_color_brackets_the_box():
    out, err = Tty(), Tty()
    options = terminal_options(out=out, err=err, environ={"NO_COLOR": "1"})
    stdout, _, _ = run(options, out=out, err=err)
    assert stdout == "So x² = 4 gives [½].\n"


def test_hide_thinking_on_a_tty_shows_a_live_counter():
    out, err = Tty(), Tty()
    options = terminal_options(hide_thinking=True, out=out, err=err, environ={"NO_COLOR": "1"})
    assert options.live_counter and not options.thinking_text
    _, stderr, _ = run(options, out=out, err=err)
    assert stderr.startswith(CLEAR_LINE + "thinking 1/8,192 tok")
    assert "We need" not in stderr
    assert stderr.count("\n") == 1  # only the summary line ends a line


def test_budget_notices_are_short_stderr_lines():
    out, err = io.StringIO(), io.StringIO()
    options = terminal_options(out=out, err=err, environ={})
    stdout, stderr, renderer = run(options, out=out, err=err, budget=10)
    lines = stderr.splitlines()
    assert "note: thinking at 9/10 tokens" in lines
    # past the cap the real budget lets the sentence finish: the script's first sentence end after 10 is token 18
    assert "note: thinking budget reached (18/10 tokens): wrapping up" in lines
    assert stdout.startswith("So $x^2")
    assert renderer.stats is not None and renderer.stats.budget_hit


def test_answer_is_not_printed_when_disabled():
    out, err = io.StringIO(), io.StringIO()
    options = terminal_options(answer=False, out=out, err=err, environ={})
    stdout, _, _ = run(options, out=out, err=err)
    assert stdout == ""


def test_answer_chunks_reach_stdout_as_they_arrive():
    out, err = io.StringIO(), io.StringIO()
    renderer = StreamRenderer(terminal_options(out=out, err=err, environ={}), out=out, err=err)
    shown = []
    for chunk in ["\n\nx <", " y and <", "b> so \\boxed{1}"]:
        renderer.handle(StreamEvent("answer", text=chunk))
        shown.append(out.getvalue())
    renderer.finish()
    assert shown == ["x <", "x < y and <", "x < y and <b> so \\boxed{1}"]  # nothing held back, not even `<`
    assert out.getvalue() == shown[-1] + "\n"


def test_counter_and_notice_texts():
    assert counter_line(1234, 8192, 25.0, 10.0, None) == "thinking 1,234/8,192 tok · 25.0 tok/s · ETA 4m38s"
    assert counter_line(10, None, None, 1.0, None) == "thinking 10 tok"
    assert counter_line(100, None, 10.0, 30.0, 90.0) == "thinking 100 tok · 10.0 tok/s · 1m00s left"
    assert format_duration(3725) == "1h02m"
    assert notice_text(StreamEvent("loop", text="a repeated line")) == (
        "loop detected (a repeated line): nudging the model to wrap up"
    )
    assert (
        notice_text(StreamEvent("budget", note="forced_answer"))
        == "answer budget reached: forcing a final answer"
    )
    assert notice_text(StreamEvent("answer", text="x")) is None
    off = StreamEvent("budget", note="wrap_up", thinking_tokens=1, budget_tokens=0)
    assert notice_text(off) == "thinking is off (budget 0): closed after 1 tokens, answering"
    stats = TurnStats(thinking_tokens=1234, answer_tokens=56, decode_tok_s=25.25, total_s=48.21)
    assert summary_line(stats) == "thought 1,234 tok · answered 56 tok · 25.2 tok/s · 48.2s"


GOLDEN = Path(__file__).parent / "golden"
MATRIX_ANSWER = (
    "The rotation is $$R = \\begin{pmatrix} 0 & -1 \\\\ 1 & 0 \\end{pmatrix}$$ and the sign function is\n"
    "$$\\operatorname{sgn}(x) = \\begin{cases} 1 & x > 0 \\\\ 0 & x = 0 \\\\ -1 & x < 0 \\end{cases}$$\n"
    "so $R^4 = \\boxed{\\begin{bmatrix} 1 & 0 \\\\ 0 & 1 \\end{bmatrix}}$.\n"
)


def test_matrices_and_cases_on_a_terminal_match_the_golden_text():
    """solve on a TTY: the answer streamed token by token; matrices, cases and a framed boxed matrix."""
    out = Tty()
    options = terminal_options(out=out, err=Tty(), environ={"NO_COLOR": "1"})
    _, _, _ = run(options, out=out, err=io.StringIO(), script=Script("Rotate four times.", MATRIX_ANSWER))
    assert out.getvalue() == (GOLDEN / "matrices.txt").read_text(encoding="utf-8")


def test_a_note_never_splits_a_sentence_of_the_thinking():
    err, out = Tty(), Tty()
    renderer = StreamRenderer(terminal_options(out=out, err=err, environ={"NO_COLOR": "1"}), out=out, err=err)
    events = [
        StreamEvent("thinking", text="We need the sum of the first "),
        StreamEvent("budget", note="warning", thinking_tokens=90, budget_tokens=100),
        StreamEvent("thinking", text="ten squares, which is 385"),
        StreamEvent("loop", text="a repeated line"),
        StreamEvent("thinking", text=". Then we check it"),
        StreamEvent("status", text="retrying"),
        StreamEvent("thinking", text=" again\nby hand"),
        StreamEvent("budget", note="wrap_up", thinking_tokens=100, budget_tokens=100),
        StreamEvent("answer", text="It is \\boxed{385}."),
    ]
    for event in events:
        renderer.handle(event)
    renderer.finish()
    assert err.getvalue().split("\n") == [
        "We need the sum of the first ten squares, which is 385.",
        "note: thinking at 90/100 tokens",
        "note: loop detected (a repeated line): nudging the model to wrap up",
        "Then we check it again",
        "note: retrying",
        "by hand",
        "note: thinking budget reached (100/100 tokens): wrapping up",  # held to the end of the thinking
        "",
    ]
    assert out.getvalue() == "It is [385].\n"


def test_a_note_at_a_line_start_or_without_thinking_text_is_printed_at_once():
    err = Tty()
    renderer = StreamRenderer(terminal_options(out=Tty(), err=err, environ={"NO_COLOR": "1"}), err=err)
    renderer.handle(StreamEvent("thinking", text="One line.\n"))
    renderer.handle(StreamEvent("status", text="now"))
    assert err.getvalue() == "One line.\nnote: now\n"
    err = io.StringIO()  # a pipe: no thinking text, so nothing to wait for
    renderer = StreamRenderer(terminal_options(out=io.StringIO(), err=err), err=err)
    renderer.handle(StreamEvent("thinking", text="hidden "))
    renderer.handle(StreamEvent("status", text="now"))
    assert err.getvalue() == "note: now\n"


class CountingWrites(io.StringIO):
    """A stream that counts its writes (stderr writes straight through: each is a system call)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def test_a_batch_of_events_is_one_write_and_the_same_text():
    options = terminal_options(show_thinking=True, out=io.StringIO(), err=io.StringIO(), environ={})
    events = list(
        ScriptedEngine(Script(THINKING, ANSWER)).stream([ChatMessage("user", "q")], GenerationSettings())
    )
    thinking = [e for e in events if e.kind == "thinking"]
    assert len(thinking) > 10
    one_by_one, batched = CountingWrites(), CountingWrites()
    a = StreamRenderer(options, out=io.StringIO(), err=one_by_one)
    b = StreamRenderer(options, out=io.StringIO(), err=batched)
    for event in thinking:
        a.handle(event)
    b.handle_batch(thinking)
    assert batched.writes == 1 and one_by_one.writes == len(thinking)
    assert batched.getvalue() == one_by_one.getvalue() == THINKING
    for r in (a, b):
        r.handle_batch([e for e in events if e.kind != "thinking"])
        r.finish()
    assert batched.getvalue() == one_by_one.getvalue()
