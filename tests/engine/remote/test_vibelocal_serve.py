"""A vibelocal front end on another `vibelocal serve` (the real server subprocess, SmolLM2): the server's own
budget, live extend and reasoning_end through its control endpoint, and solve --backend end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from serveproc import ServeProcess
from testpaths import ROOT

from vibelocal.engine.control import TurnControl
from vibelocal.engine.remote import connect
from vibelocal.types import ChatMessage, GenerationSettings

QUESTION = [ChatMessage("user", "Explain step by step why the sum of two even numbers is even.")]


@pytest.fixture(scope="module")
def server(smollm2_path, tmp_path_factory):
    home = tmp_path_factory.mktemp("serve-backend")
    proc = ServeProcess(["--model", str(smollm2_path), "--prefill-think", "--ctx", "2048"], home)
    proc.wait_ready()
    yield proc
    assert proc.stop() == 0


def gen(**kw) -> GenerationSettings:
    base = dict(temperature=0.0, seed=3, max_thinking_tokens=16, max_answer_tokens=16)
    base.update(kw)
    return GenerationSettings(**base)


def test_detected_and_the_servers_budget_caps(server):
    engine = connect(server.root)
    assert engine.info.extra["server"] == "vibelocal" and engine.info.n_ctx == 2048
    events = list(engine.stream(QUESTION, gen()))
    done = events[-1]
    thinking = "".join(e.text for e in events if e.kind == "thinking")
    answer = "".join(e.text for e in events if e.kind == "answer")
    assert done.stats.budget_tokens == 16 and done.stats.budget_hit
    assert 16 <= done.stats.thinking_tokens <= 16 + 48 + 1
    assert "Considering the limited time" in thinking  # the server's engine wrapped up
    assert "<think>" not in answer + thinking and "</think>" not in answer + thinking
    assert done.stats.evaluated_tokens > 0  # the server engine's own count, from its extension object
    engine.close()


def test_extend_and_wrap_up_go_through_the_control_endpoint(server):
    engine = connect(server.root)
    control = TurnControl()
    extended = wrapped = False
    events = []
    # extended at the first thinking batch: the cap of 24 leaves the request time to reach the server (events
    # come in ~40 ms batches, then over HTTP) even on a loaded machine
    for event in engine.stream(QUESTION, gen(max_thinking_tokens=24), control):
        events.append(event)
        if event.kind == "thinking" and event.thinking_tokens >= 1 and not extended:
            control.extend(200)
            extended = True
        elif event.kind == "thinking" and event.thinking_tokens >= 30 and not wrapped:
            control.wrap_up()
            wrapped = True
    done = events[-1]
    assert extended and wrapped
    assert 30 <= done.stats.thinking_tokens < 224  # past the old cap of 24, well short of the new one
    assert done.stats.budget_tokens == 224
    assert "extend" in server.log() or done.stats.budget_tokens == 224
    engine.close()


def test_solve_on_the_server(server):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "-m", "vibelocal", "solve", "-", "--backend", server.root, "--json", "--budget", "16",
         "--temperature", "0", "--seed", "3"],
        input=QUESTION[0].content, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert run.returncode in (0, 6), run.stderr
    data = json.loads(run.stdout)
    assert data["model"]["server"] == "vibelocal" and data["settings"]["budget"] == "16"
    thinking = data["usage"]["thinking_tokens"]
    assert 0 < thinking <= 16 + 48 + 1  # the server's cap of 16, then at most the grace to a sentence end
    assert thinking >= 16 if data["budget_hit"] else thinking < 16
    assert data["answer"] and "Traceback" not in run.stderr
