"""The llama-server backend against a real llama-server (built from the pinned llama.cpp) with SmolLM2.

SmolLM2 never thinks on its own, so every turn starts inside `<think>` (prefill_think) to drive the thinking path.
"""

from __future__ import annotations

import threading

import pytest
from llama_server import llama_server
from testpaths import ROOT

from vibelocal.engine.control import TurnControl
from vibelocal.engine.remote import connect
from vibelocal.errors import BackendError, ExitCode
from vibelocal.types import ChatMessage, GenerationSettings

QUESTION = [ChatMessage("user", "Explain step by step why the sum of two even numbers is even.")]


def settings(**kw) -> GenerationSettings:
    base = dict(temperature=0.0, seed=7, prefill_think=True, max_thinking_tokens=48, max_answer_tokens=24)
    base.update(kw)
    return GenerationSettings(**base)


def run(engine, messages=QUESTION, control=None, **kw):
    events = list(engine.stream(messages, settings(**kw), control))
    done = events[-1]
    assert done.kind == "done"
    thinking = "".join(e.text for e in events if e.kind == "thinking")
    answer = "".join(e.text for e in events if e.kind == "answer")
    return events, done, thinking, answer


@pytest.fixture(scope="module")
def server(smollm2_path):
    with llama_server(smollm2_path, slots=2) as (url, proc):
        yield url


@pytest.fixture
def engine(server):
    eng = connect(server)
    yield eng
    eng.close()


def test_detected_as_llama_server(engine, server):
    assert engine.info.extra["server"] == "llama-server"
    assert engine.info.backend == "remote"
    assert engine.info.n_ctx == 2048
    assert engine.count_tokens("hello world") >= 2


def test_budget_caps_with_the_wrap_up_and_no_reprocessing(engine):
    events, done, thinking, answer = run(engine)
    stats = done.stats
    assert 48 <= stats.thinking_tokens <= 48 + 48 + 1  # the cap, then the grace to the sentence end
    assert stats.budget_hit
    assert "Considering the limited time" in thinking  # the wrap-up went through the model
    assert "<think>" not in answer and "</think>" not in answer
    assert answer.strip()
    assert stats.forced_tokens > 0
    assert stats.server_requests >= 2  # the injection continued in a second request
    # the server's own counters: beyond the injected tokens it evaluated at most the one in flight
    assert stats.reprocessed_tokens <= stats.server_requests - 1


def test_greedy_turns_are_reproducible(engine):
    first = run(engine)
    second = run(engine)
    assert first[2] == second[2] and first[3] == second[3]


def test_two_turn_chat_reuses_the_servers_cache(engine):
    _, done1, _, answer1 = run(engine)
    follow = [
        *QUESTION,
        ChatMessage("assistant", answer1),
        ChatMessage("user", "And the sum of two odd numbers?"),
    ]
    first = engine.prompt_tokens(QUESTION, settings())
    second = engine.prompt_tokens(follow, settings())
    common = next((i for i, (a, b) in enumerate(zip(first, second, strict=False)) if a != b), len(first))
    _, done2, _, _ = run(engine, follow)
    # the server's own counter: everything the two prompts share came from its cache (the first turn's
    # `<think>` prefill is not in the history, so the prefixes part there)
    assert done2.stats.cached_tokens == common > 10
    assert done2.stats.reprocessed_tokens == 0


def test_extend_and_wrap_up_mid_stream(engine):
    control = TurnControl()
    extended = wrapped = False
    thinking_seen = 0
    events = []
    for event in engine.stream(QUESTION, settings(max_thinking_tokens=24), control):
        events.append(event)
        if event.kind == "thinking":
            thinking_seen = event.thinking_tokens
            if thinking_seen >= 8 and not extended:
                control.extend(400)
                extended = True
            elif thinking_seen >= 60 and not wrapped:
                control.wrap_up()
                wrapped = True
    done = events[-1]
    assert extended and wrapped
    assert done.stats.budget_tokens == 424
    assert 60 <= done.stats.thinking_tokens < 424  # went past the old cap, stopped long before the new one
    assert any(e.kind == "budget" and e.note == "extended" for e in events)
    assert any(e.kind == "answer" and e.text.strip() for e in events)


def test_cancel_stops_within_a_token(engine):
    control = TurnControl()
    events = []
    for event in engine.stream(QUESTION, settings(max_thinking_tokens=None), control):
        events.append(event)
        if event.kind == "thinking" and event.thinking_tokens >= 5:
            control.cancel()
    assert events[-1].stop_reason == "cancelled"
    assert events[-1].stats.thinking_tokens <= 6


def test_server_killed_mid_stream_keeps_the_partial(smollm2_path):
    with llama_server(smollm2_path) as (url, proc):
        eng = connect(url)
        events = []
        for event in eng.stream(QUESTION, settings(max_thinking_tokens=None, max_answer_tokens=2000)):
            events.append(event)
            if event.kind == "thinking" and event.thinking_tokens == 10:
                proc.kill()
        eng.close()
    done = events[-1]
    assert done.stop_reason == "error"
    thinking = [e for e in events if e.kind == "thinking"]
    assert thinking[-1].thinking_tokens >= 10 and "".join(e.text for e in thinking).strip()
    status = [e.text for e in events if e.kind == "status"]
    assert len(status) == 1 and "server" in status[0] and "\n" not in status[0]


def test_wrong_key_is_one_clear_error(smollm2_path):
    with llama_server(smollm2_path, api_key="sesame") as (url, _):
        with pytest.raises(BackendError) as info:
            connect(url, api_key="wrong")
        assert "refused the API key" in str(info.value)
        assert info.value.exit_code == ExitCode.MODEL_UNAVAILABLE
        eng = connect(url, api_key="sesame")
        _, done, _, answer = run(eng, max_thinking_tokens=16)
        eng.close()
    assert done.stop_reason in ("answered", "budget_exhausted") and answer.strip()


def test_two_clients_on_two_slots(server):
    engines = [connect(server), connect(server)]
    results: list = [None, None]

    def go(i):
        results[i] = run(engines[i], max_thinking_tokens=24)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for e in engines:
        e.close()
    assert all(r is not None and r[3].strip() for r in results)
    assert results[0][2] == results[1][2]  # greedy, same prompt: the same thinking on either slot


def _solve(args, stdin=QUESTION[0].content, timeout=180):
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "vibelocal", "solve", "-", *args],
        input=stdin, capture_output=True, text=True, timeout=timeout, env=env,
    )  # fmt: skip


def test_solve_runs_on_the_server_end_to_end(server):
    import json

    run = _solve(["--backend", server, "--json", "--prefill-think", "--budget", "32", "--temperature", "0"])
    assert run.returncode in (0, 6), run.stderr
    data = json.loads(run.stdout)
    assert data["model"]["server"] == "llama-server" and data["model"]["backend"] == server
    usage = data["usage"]
    assert data["budget_hit"] and usage["thinking_tokens"] >= 32 and usage["server_requests"] >= 2
    assert usage["reprocessed_tokens"] <= usage["server_requests"] - 1
    assert data["plan"] is None and "Traceback" not in run.stderr


def test_solve_with_a_dead_server_is_one_line_exit_4():
    from llama_server import free_port

    run = _solve(["--backend", f"http://127.0.0.1:{free_port()}"], timeout=60)
    assert run.returncode == ExitCode.MODEL_UNAVAILABLE
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert lines and lines[0].startswith("error:") and "cannot be reached" in lines[0]
    assert "Traceback" not in run.stderr


def test_votes_run_side_by_side_on_the_servers_slots(server):
    import json

    run = _solve(
        ["--backend", server, "--json", "--prefill-think", "--budget", "24", "--votes", "2", "--seed", "5"]
    )
    assert run.returncode in (0, 6), run.stderr
    assert "2 samples, 2 at a time" in run.stderr
    data = json.loads(run.stdout)
    assert [s["seed"] for s in data["samples"]] == [5, 6]
    assert all(s["usage"]["server_requests"] >= 1 for s in data["samples"])


def test_the_tutor_works_on_the_server(server):
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "-m", "vibelocal", "tutor", "-p", "What is 6 times 7?", "--key", "42",
         "--backend", server, "--prefill-think", "--budget", "16", "--hint-budget", "16"],
        input="41\nhint\n42\nquit\n", capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "Not yet." in run.stdout and "Correct!" in run.stdout
    assert "Hint 1" in run.stdout  # written by the model on the server, after its private solve there
    assert "Traceback" not in run.stderr


@pytest.mark.anyio
async def test_the_chat_app_says_which_server_it_uses_and_answers(server):
    from vibelocal.config import Settings
    from vibelocal.session import Session
    from vibelocal.tui.app import VibelocalApp
    from vibelocal.tui.widgets.prompt import PromptInput

    session = Session(Settings(backend=server, prefill_think=True, budget="16", temperature=0.0))
    app = VibelocalApp(session)

    async def until(check, timeout=120.0):
        for _ in range(int(timeout / 0.05)):
            if check():
                return
            await pilot.pause(0.05)
        raise AssertionError("timed out")

    async with app.run_test(size=(110, 36)) as pilot:
        await until(lambda: f"on llama-server at {server}" in app.chat.model_label)
        app.chat.query_one(PromptInput).focus()
        await pilot.press(*"why is 2+2 even?", "enter")
        await until(lambda: app.chat.last_reply() is not None and app.chat.last_reply().status != "streaming")
        reply = app.chat.last_reply()
        assert reply.thinking.strip() and reply.status == "complete"
