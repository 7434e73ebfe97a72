"""Chat-completions backends (vLLM and any OpenAI-compatible server): request and response shapes.

vLLM has no CPU build here, so a loopback server answers in the shapes vLLM documents for its OpenAI server
(`/version`, `/v1/models` with `max_model_len`, streamed `delta.reasoning` / `delta.reasoning_content`,
`continue_final_message`, `add_generation_prompt`, `thinking_token_budget`) and records every request.
It checks what vibelocal sends; the model behind it is a script, so the budget logic is what is tested.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from vibelocal.engine.control import TurnControl
from vibelocal.engine.remote import connect
from vibelocal.engine.remote.detect import candidate_urls
from vibelocal.errors import BackendError, UsageError
from vibelocal.types import ChatMessage, GenerationSettings

THOUGHT = "First I add the numbers. Then I check the sum. The sum is five. " * 20


class FakeVllm(BaseHTTPRequestHandler):
    requests: list[dict] = []
    reasoning_field = "reasoning"
    split = True  # a reasoning parser is configured; False: `<think>` stays in content
    version = True

    def log_message(self, *args):
        pass

    def _json(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/version" and self.version:
            return self._json(200, {"version": "0.11.0"})
        if self.path == "/v1/models":
            return self._json(
                200, {"object": "list", "data": [{"id": "vibethinker", "max_model_len": 32768}]}
            )
        return self._json(404, {"error": {"message": "not found"}})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length))
        type(self).requests.append(body)
        if self.path != "/v1/chat/completions":
            return self._json(404, {"error": {"message": "not found"}})
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        try:
            for chunk in self._chunks(body):
                self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                self.wfile.flush()
            self.wfile.write(b"data: [DONE]\n\n")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _chunks(self, body):
        def delta(d, finish=None):
            return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": body["model"],
                    "choices": [{"index": 0, "delta": d, "finish_reason": finish}]}  # fmt: skip

        if not body.get("continue_final_message"):
            words = THOUGHT.split(" ")
            if self.split:
                for w in words:
                    yield delta({self.reasoning_field: w + " "})
            else:
                yield delta({"content": "<think>\n"})
                for w in words[:5]:
                    yield delta({"content": w + " "})
                yield delta({"content": "</think>\n\n"})
        for w in ["The", " answer", " is", " \\boxed{5}."]:
            yield delta({"content": w})
        yield delta({}, "stop")
        yield {"id": "chatcmpl-1", "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 30,
               "total_tokens": 42}}  # fmt: skip


@pytest.fixture
def vllm():
    FakeVllm.requests = []
    FakeVllm.split, FakeVllm.version, FakeVllm.reasoning_field = True, True, "reasoning"
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeVllm)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def gen(**kw) -> GenerationSettings:
    base = dict(temperature=0.6, seed=3, max_thinking_tokens=10, max_answer_tokens=64)
    base.update(kw)
    return GenerationSettings(**base)


def turn(engine, settings, control=None):
    events = list(engine.stream([ChatMessage("user", "2+3?")], settings, control))
    thinking = "".join(e.text for e in events if e.kind == "thinking")
    answer = "".join(e.text for e in events if e.kind == "answer")
    return events, thinking, answer


def test_vllm_budget_is_client_side_with_a_continued_final_message(vllm):
    engine = connect(vllm)
    assert engine.info.extra["server"] == "vllm" and engine.info.n_ctx == 32768
    events, thinking, answer = turn(engine, gen())
    first, second = FakeVllm.requests[0], FakeVllm.requests[1]
    assert first["thinking_token_budget"] == 10 and first["stream"] is True and first["seed"] == 3
    assert first["messages"][-1] == {"role": "user", "content": "2+3?"}
    assert second["continue_final_message"] is True and second["add_generation_prompt"] is False
    prefix = second["messages"][-1]
    assert prefix["role"] == "assistant"
    assert prefix["content"].startswith("<think>\n") and prefix["content"].endswith("</think>\n\n")
    assert "Considering the limited time" in prefix["content"]
    assert "thinking_token_budget" not in second
    done = events[-1]
    assert done.stop_reason == "answered" and done.stats.budget_hit and done.stats.server_requests == 2
    assert 10 <= done.stats.thinking_tokens <= 10 + 48  # the cap, then the grace to the sentence end
    assert thinking.rstrip().endswith("directly now.")
    assert answer == "The answer is \\boxed{5}."


def test_reasoning_content_field_and_no_budget(vllm):
    FakeVllm.reasoning_field = "reasoning_content"
    _, thinking, answer = turn(connect(vllm), gen(max_thinking_tokens=None))
    assert thinking.startswith("First I add") and len(FakeVllm.requests) == 1
    assert "thinking_token_budget" not in FakeVllm.requests[0]
    assert answer == "The answer is \\boxed{5}."


def test_think_tags_left_in_content_are_split_client_side(vllm):
    FakeVllm.split, FakeVllm.version = False, False  # a plain OpenAI-compatible server, no reasoning parser
    engine = connect(vllm)
    assert engine.info.extra["server"] == "openai"
    _, thinking, answer = turn(engine, gen(max_thinking_tokens=None))
    assert "<think>" not in answer + thinking and "</think>" not in answer + thinking
    assert thinking.strip().startswith("First I add") and answer.strip() == "The answer is \\boxed{5}."


def test_wrap_up_and_cancel_from_the_front_end(vllm):
    engine = connect(vllm)
    control = TurnControl()
    control.wrap_up()
    events, thinking, answer = turn(engine, gen(max_thinking_tokens=None), control)
    assert len(FakeVllm.requests) == 2 and answer.endswith("\\boxed{5}.")
    control = TurnControl()
    control.cancel()
    events, _, _ = turn(engine, gen(), control)
    assert events[-1].stop_reason == "cancelled"


def test_bad_urls_and_dead_servers_are_one_line():
    with pytest.raises(UsageError):
        candidate_urls("ftp://host")
    with pytest.raises(UsageError):
        candidate_urls("http://host:8080/v1/chat")
    assert candidate_urls("box") == ["http://box:8080", "http://box:8000"]
    assert candidate_urls("http://[::1]:9") == ["http://[::1]:9"]
    from llama_server import free_port

    with pytest.raises(BackendError) as info:
        connect(f"http://127.0.0.1:{free_port()}")
    assert "cannot be reached" in str(info.value) and "\n" not in str(info.value)
