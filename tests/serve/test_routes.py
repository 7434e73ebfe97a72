"""The real server (`python -m vibelocal serve`, SmolLM2, `--prefill-think`) driven by the real openai client."""

from __future__ import annotations

import json
import threading

import openai
import pytest
from serveproc import ServeProcess

pytestmark = [pytest.mark.real_model, pytest.mark.slow]

SMALL = {"thinking_budget_tokens": 12}
"""A short turn: 12 thinking tokens (then at most 48 more to a sentence end), then the answer."""


@pytest.fixture(scope="module")
def server(smollm2_path, tmp_path_factory):
    home = tmp_path_factory.mktemp("serve-routes")
    args = ["--model", str(smollm2_path), "--prefill-think", "--ctx", "2048", "--effort", "low=10"]
    proc = ServeProcess([*args, "--answer-budget", "16", "--max-queue", "1"], home)
    proc.wait_ready()
    yield proc
    assert proc.stop() == 0


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=600)


def _chat(client, content="What is 2+2?", **kw):
    kw.setdefault("max_tokens", 12)
    return client.chat.completions.create(
        model="anything", messages=[{"role": "user", "content": content}], **kw
    )


def _ext(obj) -> dict:
    return obj.model_extra["vibelocal"]


def test_health_and_models(server, client) -> None:
    status, body = server.get("/health")
    assert status == 200 and body["status"] == "ok"
    assert body["model"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert [m.id for m in client.models.list().data] == [body["model"]]


def test_non_stream_splits_reasoning_from_content(client) -> None:
    resp = _chat(client, extra_body=SMALL)
    msg = resp.choices[0].message
    reasoning = msg.model_extra["reasoning_content"]
    assert reasoning and msg.model_extra["reasoning"] == reasoning
    assert msg.content and resp.choices[0].finish_reason in ("stop", "length")
    for text in (reasoning, msg.content):
        assert "<think>" not in text and "</think>" not in text
    ext = _ext(resp)
    assert resp.usage.completion_tokens_details.reasoning_tokens == ext["thinking_tokens"] > 0
    assert resp.usage.completion_tokens == ext["thinking_tokens"] + ext["answer_tokens"]
    assert ext["budget_tokens"] == 12 and ext["budget_source"] == "thinking_budget_tokens"
    assert ext["stop_reason"] in ("answered", "budget_exhausted")
    assert {"budget_hit", "forced_tokens", "evaluated_tokens"} <= set(ext)
    assert ext["thinking_tokens"] <= 12 + 48


def test_stream_sends_reasoning_then_content_and_usage(client) -> None:
    stream = _chat(client, stream=True, stream_options={"include_usage": True}, extra_body=SMALL)
    kinds, reasoning, content, finish, ext, usage = [], "", "", None, None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        delta = choice.delta.model_extra
        if delta.get("reasoning_content"):
            assert delta["reasoning"] == delta["reasoning_content"]
            reasoning += delta["reasoning_content"]
            kinds.append("r")
        if choice.delta.content:
            content += choice.delta.content
            kinds.append("c")
        if choice.finish_reason:
            finish, ext = choice.finish_reason, chunk.model_extra["vibelocal"]
    assert reasoning and content and "</think>" not in reasoning + content
    assert kinds == sorted(kinds, key=lambda k: k == "c"), "reasoning comes before the answer"
    assert finish in ("stop", "length") and ext is not None
    assert usage.completion_tokens_details.reasoning_tokens == ext["thinking_tokens"] > 0


def test_reasoning_effort_low_caps_thinking(client) -> None:
    resp = _chat(client, reasoning_effort="low")
    ext = _ext(resp)
    assert ext["budget_tokens"] == 10 and ext["budget_source"] == "reasoning_effort"
    assert 0 < ext["thinking_tokens"] <= 10 + 48
    assert resp.choices[0].message.content


def test_budget_none_skips_thinking(client) -> None:
    resp = _chat(client, reasoning_effort="none")
    assert _ext(resp)["thinking_tokens"] == 0
    assert resp.usage.completion_tokens_details.reasoning_tokens == 0
    assert resp.choices[0].message.content


def _control(server, body) -> tuple[int, dict]:
    return server.post("/v1/chat/completions/control", json.dumps(body).encode())


def test_extend_mid_stream_raises_the_budget(server, client) -> None:
    stream = _chat(client, stream=True, extra_body={"thinking_budget_tokens": 16})
    sent, ext = False, None
    for chunk in stream:
        if not sent:
            assert chunk.model_extra["vibelocal"]["budget_tokens"] == 16  # the first chunk echoes the budget
            status, body = _control(server, {"id": chunk.id, "action": "extend", "tokens": 24})
            assert status == 200 and body["ok"], body
            sent = True
        if chunk.choices and chunk.choices[0].finish_reason:
            ext = chunk.model_extra["vibelocal"]
    assert ext["budget_tokens"] == 16 + 24


def test_reasoning_end_mid_stream_makes_it_answer(server, client) -> None:
    stream = _chat(client, stream=True, extra_body={"thinking_budget_tokens": 4000})
    seen, at_request, content, ext = 0, None, "", None
    for chunk in stream:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        if delta.model_extra.get("reasoning_content"):
            seen += 1
            if seen == 3:
                status, _ = _control(server, {"id": chunk.id, "action": "reasoning_end"})
                assert status == 200
                at_request = seen
        content += delta.content or ""
        if chunk.choices[0].finish_reason:
            ext = chunk.model_extra["vibelocal"]
    assert at_request == 3
    assert content, "the wrap-up leads to an answer"
    assert not ext["budget_hit"], "the user ended the thinking, not the cap"
    assert ext["thinking_tokens"] < 3 + 48 + 16  # the sentence may finish (grace), far below 4000


def test_disconnect_cancels_decoding(server, client) -> None:
    stream = _chat(client, stream=True, max_tokens=100000, extra_body={"thinking_budget_tokens": 100000})
    first = None
    for i, chunk in enumerate(stream):
        first = first or chunk.id
        if i == 3:
            break
    stream.close()
    line = server.wait_log(f"id={first}")
    assert "stop=cancelled" in line
    # the engine is free again: a new turn is answered (it would wait behind 100k tokens otherwise)
    assert _chat(client, extra_body=SMALL).choices[0].message.content is not None


def test_second_turn_reuses_the_cached_prefix(client) -> None:
    history = [{"role": "user", "content": "Name a colour."}]
    first = client.chat.completions.create(model="m", messages=history, max_tokens=8, extra_body=SMALL)
    history += [
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "And another one?"},
    ]
    second = client.chat.completions.create(model="m", messages=history, max_tokens=8, extra_body=SMALL)
    ext, usage = _ext(second), second.usage
    assert usage.prompt_tokens_details.cached_tokens == ext["cached_tokens"] > 0
    assert usage.prompt_tokens_details.cached_tokens >= first.usage.prompt_tokens - 4
    fresh = usage.prompt_tokens - ext["cached_tokens"]
    assert (
        ext["evaluated_tokens"]
        == fresh + ext["thinking_tokens"] + ext["forced_tokens"] + ext["answer_tokens"]
    )


def test_tools_are_accepted_and_never_called(client) -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    resp = _chat(client, tools=tools, tool_choice="auto", extra_body=SMALL)
    assert resp.choices[0].message.tool_calls is None
    assert resp.choices[0].message.content
    assert _ext(resp)["tools_ignored"] is True


def test_stop_strings_end_the_answer(client) -> None:
    resp = _chat(client, content="Write a sentence.", stop=[" ", "\n", "."], max_tokens=16, extra_body=SMALL)
    content = resp.choices[0].message.content
    assert not any(s in content for s in (" ", "\n", "."))
    assert _ext(resp)["stop_reason"] == "stop_sequence"
    assert resp.choices[0].finish_reason == "stop"


@pytest.mark.parametrize(
    ("kw", "param"),
    [
        ({"reasoning_effort": "turbo"}, "reasoning_effort"),
        ({"extra_body": {"thinking_budget_tokens": -7}}, "thinking_budget_tokens"),
        ({"reasoning_effort": "low", "extra_body": {"thinking_budget_tokens": 99}}, "thinking_budget_tokens"),
        ({"temperature": 9}, "temperature"),
        ({"n": 3}, "n"),
        (
            {"tool_choice": "required", "tools": [{"type": "function", "function": {"name": "f"}}]},
            "tool_choice",
        ),
    ],
)
def test_bad_requests_are_openai_shaped_400s(client, kw, param) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        _chat(client, **kw)
    assert info.value.status_code == 400
    err = info.value.body
    assert err["type"] == "invalid_request_error" and err["param"] == param and err["message"]


def test_malformed_json_and_unknown_control_ids(server) -> None:
    status, body = server.post("/v1/chat/completions", b"{not json")
    assert status == 400 and body["error"]["code"] == "invalid_json"
    status, body = _control(server, {"id": "chatcmpl-nope", "action": "extend", "tokens": 5})
    assert status == 404 and body["error"]["param"] == "id"
    status, body = server.get("/v1/nothing-here")
    assert status == 404 and body["error"]["type"] == "not_found_error"


def test_two_concurrent_clients_are_both_answered(client) -> None:
    results: dict[int, object] = {}

    def ask(i: int) -> None:
        results[i] = _chat(client, content=f"Say {i}.", extra_body=SMALL)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert sorted(results) == [0, 1]
    assert results[0].id != results[1].id
    assert all(r.choices[0].message.content for r in results.values())


def test_raw_completions_stream_and_not(client) -> None:
    resp = client.completions.create(
        model="m", prompt="1, 2, 3, 4,", max_tokens=6, extra_body={"reasoning_effort": "none"}
    )
    assert resp.object == "text_completion"
    assert resp.choices[0].text and resp.usage.completion_tokens == 6
    assert resp.choices[0].finish_reason == "length"
    text = "".join(
        c.choices[0].text
        for c in client.completions.create(
            model="m",
            prompt="1, 2, 3, 4,",
            max_tokens=6,
            stream=True,
            extra_body={"reasoning_effort": "none"},
        )
        if c.choices
    )
    assert text


def test_a_full_queue_is_a_429_and_queued_turns_run_in_order(server, client) -> None:
    long = client.completions.create(  # greedy counting runs until the context fills: minutes
        model="m", prompt="1, 2, 3, 4,", max_tokens=100000, temperature=0, stream=True,
        extra_body={"reasoning_effort": "none"},
    )  # fmt: skip
    running = next(iter(long)).id
    waiting: dict[str, object] = {}
    behind = threading.Thread(target=lambda: waiting.update(r=_chat(client, extra_body=SMALL)))
    behind.start()
    server.wait_until(lambda h: h["waiting"] == 1)
    with pytest.raises(openai.RateLimitError) as info:
        _chat(client, extra_body=SMALL)
    assert info.value.body["code"] == "queue_full"
    status, _ = _control(server, {"id": running, "action": "cancel"})
    assert status == 200
    for _ in long:  # the cancelled stream still ends properly
        pass
    behind.join(600)
    assert waiting["r"].choices[0].message.content is not None
    assert "stop=cancelled" in server.wait_log(f"id={running}")
