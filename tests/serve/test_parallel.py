"""`serve --parallel N`: requests on the forks of an engine that decodes several sequences at once, one at a time
on any other engine (or with N = 1); and where serve finds its API key (flag > environment > config.toml)."""

from __future__ import annotations

import asyncio
import json

import httpx2 as httpx
import pytest
from forking import ForkingEngine

from vibelocal.cli import serve as serve_cli
from vibelocal.config import load_settings, parse_budget
from vibelocal.engine.scripted import Script, ScriptedEngine
from vibelocal.errors import UsageError
from vibelocal.paths import get_paths
from vibelocal.serve.app import build_app
from vibelocal.serve.requests import ServeDefaults
from vibelocal.serve.routes import ServerState
from vibelocal.types import GenerationSettings

SCRIPT = Script("two and two", "It is four.")


def state_for(engine, parallel: int) -> ServerState:
    defaults = ServeDefaults(GenerationSettings(), parse_budget("medium"))
    state = ServerState(defaults, "scripted", parallel=parallel)
    state.engine = engine
    return state


async def _chat(client: httpx.AsyncClient, *, stream: bool) -> httpx.Response:
    body = {"messages": [{"role": "user", "content": "What is 2+2?"}], "stream": stream}
    return await client.post("/v1/chat/completions", json=body, timeout=60)


async def _two_at_once(state: ServerState) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=build_app(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://serve.test") as client:
        return list(await asyncio.gather(_chat(client, stream=True), _chat(client, stream=False)))


def _streamed_content(resp: httpx.Response) -> str:
    text = ""
    for line in resp.text.splitlines():
        if line.startswith("data: {"):
            for choice in json.loads(line[6:])["choices"]:
                text += choice["delta"].get("content") or ""
    return text


@pytest.mark.anyio
async def test_two_overlapping_requests_stream_on_two_forks() -> None:
    engine = ForkingEngine(SCRIPT, parallel=2, overlap=2)  # each turn waits until both are streaming
    state = state_for(engine, parallel=2)
    try:
        streamed, whole = await _two_at_once(state)
        assert streamed.status_code == 200 and whole.status_code == 200
        assert _streamed_content(streamed) == "It is four."
        assert whole.json()["choices"][0]["message"]["content"] == "It is four."
        assert engine.shared.most_active == 2 and len(engine.shared.threads) == 2
        assert state.queue.slots == 2 and state.queue.served == 2
    finally:
        state.queue.close()
    assert engine.shared.handles_open == 1  # the fork is closed with the queue; the engine stays its owner's


@pytest.mark.anyio
@pytest.mark.parametrize("parallel", [1, 4])
async def test_one_at_a_time_without_parallel_or_without_fork(parallel: int) -> None:
    # --parallel 1 on an engine that forks, or --parallel 4 on one that cannot: the turns take turns
    engine = ForkingEngine(SCRIPT, parallel=4) if parallel == 1 else ScriptedEngine(SCRIPT)
    state = state_for(engine, parallel=parallel)
    try:
        streamed, whole = await _two_at_once(state)
        assert _streamed_content(streamed) == "It is four."
        assert whole.json()["choices"][0]["message"]["content"] == "It is four."
        assert state.queue.slots == 1
        if isinstance(engine, ForkingEngine):
            assert engine.shared.most_active == 1 and engine.shared.handles_open == 1
    finally:
        state.queue.close()


@pytest.mark.anyio
async def test_health_says_how_many_run_at_once() -> None:
    state = state_for(ForkingEngine(SCRIPT, parallel=3), parallel=3)
    try:
        await _two_at_once(state)
        transport = httpx.ASGITransport(app=build_app(state))
        async with httpx.AsyncClient(transport=transport, base_url="http://serve.test") as client:
            body = (await client.get("/health")).json()
        assert body["parallel"] == 3 and body["running"] == 0 and body["busy"] is False
        assert body["served"] == 2
    finally:
        state.queue.close()


# --------------------------------------------------------------------------- the API key


def _key(monkeypatch, *, flag=None, env=None, config=None, host="0.0.0.0"):
    if env is not None:
        monkeypatch.setenv("VIBELOCAL_API_KEY", env)
    if config is not None:
        path = get_paths().config_file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f'api_key = "{config}"\n')
    opts = serve_cli.ServeOptions(host=host, api_key=flag)
    return serve_cli._check(opts, load_settings({"api_key": flag}))


def test_the_key_comes_from_the_flag_then_the_environment_then_config(monkeypatch) -> None:
    assert _key(monkeypatch, flag="f", env="e", config="c") == "f"
    monkeypatch.delenv("VIBELOCAL_API_KEY")
    assert _key(monkeypatch, env="e") == "e"  # config.toml still says c
    monkeypatch.delenv("VIBELOCAL_API_KEY")
    assert _key(monkeypatch) == "c"


def test_no_key_anywhere_refuses_a_network_bind_but_not_loopback(monkeypatch) -> None:
    with pytest.raises(UsageError, match="config.toml"):
        _key(monkeypatch)
    assert _key(monkeypatch, host="127.0.0.1") is None


def test_two_requests_arriving_together_are_both_taken_with_one_slot() -> None:
    """Admission counts the slots, not what the dispatcher has marked running: the second of two requests that
    arrive before the first is picked up waits (max_waiting 1), and only a third is refused."""
    import threading

    from vibelocal.serve.budgets import BudgetChoice
    from vibelocal.serve.errors import ApiError
    from vibelocal.serve.requests import TurnRequest
    from vibelocal.serve.turns import Job, TurnQueue

    picked_up = threading.Event()
    engine = ScriptedEngine(Script("", "ok"))

    def slow_engine():  # the dispatcher holds the first job here, not yet marked running
        picked_up.wait(10)
        return engine

    turns = TurnQueue(slow_engine, max_waiting=1)
    loop = asyncio.new_event_loop()
    request = TurnRequest(settings=GenerationSettings(), budget=BudgetChoice(parse_budget("low"), "server"))
    try:
        turns.submit(Job("a", request, loop))
        turns.submit(Job("b", request, loop))
        with pytest.raises(ApiError) as refused:
            turns.submit(Job("c", request, loop))
        assert refused.value.status == 429
    finally:
        picked_up.set()
        turns.close()
        loop.close()
